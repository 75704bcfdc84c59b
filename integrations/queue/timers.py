"""First-reply timers in Redis: one hash per ticket and one sorted set of what is due when.

`hub:timers:due` scores `<ticket>:nudge` and `<ticket>:breach` by their due time
(epoch seconds), so a scheduler tick reads what is due with one ZRANGEBYSCORE:
O(log n) per due timer, whatever the number of open ones. Every change of state
is one Lua script, atomic in Redis: a timer starts once (a second start keeps the
first clock), stops once (the first reply wins, and its time is counted in the
histogram at that moment), and each stage (nudge, breach) is claimed once, so
restarted workers and a restarted Redis (append-only file) never send one twice.

The web process reads the counts here for /metrics (`TimerCollector`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis import Redis
from redis.exceptions import RedisError

Stage = Literal["nudge", "breach"]
STAGES: tuple[Stage, ...] = ("nudge", "breach")

DUE = "hub:timers:due"
OPEN = "hub:timers:open"
FIRST_REPLY = "hub:timers:first-reply"
BREACHES = "hub:timers:breaches"
# A stopped timer is kept this long: a late reply still edits its breach message.
KEEP_SECONDS = 14 * 24 * 3600
# A breached clock nobody stops (the webhook lost, the ticket never answered) is looked
# at in Zendesk again after CHECK_FIRST_SECONDS, then twice as long each time up to
# CHECK_MAX_SECONDS, and let go GIVE_UP_SECONDS after its breach (state "expired").
CHECK_FIRST_SECONDS = 3600
CHECK_MAX_SECONDS = 24 * 3600
GIVE_UP_SECONDS = 14 * 24 * 3600
# First-reply time buckets (seconds): up to the one-hour goal finely, then coarser.
BUCKETS = (300.0, 600.0, 900.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 14400.0, 28800.0, 86400.0)


def timer_key(ticket_id: int) -> str:
    """The hash of one ticket's timer."""
    return f"hub:timer:{ticket_id}"


def nudged_key(channel: str) -> str:
    """The reports listed in a channel's nudge message (ticket -> breach time)."""
    return f"hub:timers:nudged:{channel}"


_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1] .. ':nudge') end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. ':breach')
return 1
"""

# KEYS: timer, due, open, histogram. ARGV: ticket, state, at, by, keep seconds, then for an
# answer the histogram's sum field, the counted seconds (kept as the timer's `counted`),
# and the fields to count one more in.
_STOP = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'stopped_at', ARGV[3], 'answered_by', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1] .. ':nudge', ARGV[1] .. ':breach')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if #ARGV >= 7 then
  redis.call('HSET', KEYS[1], 'counted', ARGV[7])
  redis.call('HINCRBYFLOAT', KEYS[4], ARGV[6], ARGV[7])
  for i = 8, #ARGV do redis.call('HINCRBY', KEYS[4], ARGV[i], 1) end
end
return 1
"""

# KEYS: timer, then the channel's nudge list or the breaches counter.
# ARGV: stage, ticket, now, counter field, breach time (the nudge list's order).
_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
local mark = ARGV[1] == 'nudge' and 'nudged' or 'breached'
if redis.call('HSETNX', KEYS[1], mark, ARGV[3]) == 0 then return 0 end
if ARGV[1] == 'nudge' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
else
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
end
return 1
"""

# KEYS: timer. ARGV: next look at, looks so far. Only while the clock runs.
_SET_CHECK = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'check_at', ARGV[1], 'checks', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Timer:
    """One report's first-reply clock, as stored."""

    ticket_id: int
    subject: str
    group: str
    target: str
    seconds: int
    accepted: float
    nudge_at: float | None
    breach_at: float
    nudge_channel: str | None
    breach_channel: str | None
    breach_tags: tuple[str, ...]
    url: str
    requester_id: int | None = None
    state: str = "open"
    stopped_at: float | None = None
    answered_by: str | None = None
    nudged: bool = False
    breached: bool = False
    breach_message: dict[str, str] | None = None
    # After the breach: when Zendesk is looked at next, and how many looks were made.
    check_at: float | None = None
    checks: int = 0
    # The target counts business hours only; and, once answered, the counted seconds.
    business: bool = False
    counted: float | None = None

    @property
    def open(self) -> bool:
        """Whether the clock still runs."""
        return self.state == "open"

    def _fields(self) -> dict[str, str]:
        return {
            "ticket": str(self.ticket_id),
            "subject": self.subject,
            "group": self.group,
            "target": self.target,
            "seconds": str(self.seconds),
            "accepted": repr(self.accepted),
            "nudge_at": "" if self.nudge_at is None else repr(self.nudge_at),
            "breach_at": repr(self.breach_at),
            "nudge_channel": self.nudge_channel or "",
            "breach_channel": self.breach_channel or "",
            "breach_tags": ",".join(self.breach_tags),
            "url": self.url,
            "requester_id": "" if self.requester_id is None else str(self.requester_id),
            "business": "1" if self.business else "",
            "state": "open",
        }

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> Timer:
        """Rebuild from HGETALL's answer (bytes or str)."""
        h = {_text(k): _text(v) for k, v in raw.items()}
        message = h.get("breach_message")
        return cls(
            ticket_id=int(h["ticket"]),
            subject=h.get("subject", ""),
            group=h.get("group", ""),
            target=h.get("target", ""),
            seconds=int(h.get("seconds") or 0),
            accepted=float(h["accepted"]),
            nudge_at=float(h["nudge_at"]) if h.get("nudge_at") else None,
            breach_at=float(h["breach_at"]),
            nudge_channel=h.get("nudge_channel") or None,
            breach_channel=h.get("breach_channel") or None,
            breach_tags=tuple(t for t in h.get("breach_tags", "").split(",") if t),
            url=h.get("url", ""),
            requester_id=int(h["requester_id"]) if h.get("requester_id") else None,
            state=h.get("state", "open"),
            stopped_at=float(h["stopped_at"]) if h.get("stopped_at") else None,
            answered_by=h.get("answered_by") or None,
            nudged=bool(h.get("nudged")),
            breached=bool(h.get("breached")),
            breach_message=json.loads(message) if message else None,
            check_at=float(h["check_at"]) if h.get("check_at") else None,
            checks=int(h.get("checks") or 0),
            business=bool(h.get("business")),
            counted=float(h["counted"]) if h.get("counted") else None,
        )


class TimerStore:
    """Start, read, claim and stop first-reply timers (every change atomic in Redis)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._start = redis.register_script(_START)
        self._stop = redis.register_script(_STOP)
        self._claim = redis.register_script(_CLAIM)
        self._set_check = redis.register_script(_SET_CHECK)

    def start(self, timer: Timer) -> bool:
        """Start the clock; False when this ticket's timer exists (its first start stands)."""
        flat: list[str] = []
        for name, value in timer._fields().items():
            flat += [name, value]
        nudge = "" if timer.nudge_at is None else repr(timer.nudge_at)
        args = [str(timer.ticket_id), nudge, repr(timer.breach_at), *flat]
        return bool(self._start(keys=[timer_key(timer.ticket_id), DUE, OPEN], args=args))

    def get(self, ticket_id: int) -> Timer | None:
        """The ticket's timer, open or stopped (None: none, or long gone)."""
        raw = self.redis.hgetall(timer_key(ticket_id))
        return Timer.from_hash(raw) if raw else None

    def get_many(self, ticket_ids: list[int]) -> list[Timer | None]:
        """Several timers in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for ticket_id in ticket_ids:
            pipe.hgetall(timer_key(ticket_id))
        return [Timer.from_hash(raw) if raw else None for raw in pipe.execute()]

    def due(self, now: float, limit: int = 1000) -> list[tuple[int, Stage, float]]:
        """(ticket, stage, due time) of what is due at `now`, earliest first."""
        found: list[tuple[Any, Any]] = self.redis.zrangebyscore(  # type: ignore[assignment]
            DUE, "-inf", now, start=0, num=limit, withscores=True
        )
        out: list[tuple[int, Stage, float]] = []
        for member, score in found:
            ticket, _, stage = _text(member).partition(":")
            if stage == "nudge":
                out.append((int(ticket), "nudge", float(score)))
            elif stage == "breach":
                out.append((int(ticket), "breach", float(score)))
        return out

    def taken(self, items: list[tuple[int, Stage, float]]) -> None:
        """Remove handed-over due entries (their jobs are queued)."""
        if items:
            self.redis.zrem(DUE, *(f"{t}:{s}" for t, s, _ in items))

    def claim(self, timer: Timer, stage: Stage, now: float) -> bool:
        """True once per timer and stage, while its clock runs: this caller does that stage."""
        second = nudged_key(timer.nudge_channel or "") if stage == "nudge" else BREACHES
        field = _label_field(timer.group, timer.target)
        return bool(
            self._claim(
                keys=[timer_key(timer.ticket_id), second],
                args=[stage, str(timer.ticket_id), repr(now), field, repr(timer.breach_at)],
            )
        )

    def stop(
        self,
        timer: Timer,
        *,
        state: str,
        at: float,
        by: str | None,
        counted: float | None = None,
    ) -> bool:
        """Stop the clock (answered or solved); True only for the first stop.

        An answer counts in the first-reply histogram (by group and target) in the
        same step, so a retried stop never counts twice. `counted`: the seconds that
        count against the target (its business hours); all of them when not given.
        """
        args = [str(timer.ticket_id), state, repr(at), by or "", str(KEEP_SECONDS)]
        if state == "answered":
            elapsed = max(0.0, at - timer.accepted if counted is None else counted)
            label = _label_field(timer.group, timer.target)
            buckets = [f"{label}\tle\t{_le(b)}" for b in (*BUCKETS, math.inf) if elapsed <= b]
            args += [f"{label}\tsum", repr(elapsed), f"{label}\tcount", *buckets]
        keys = [timer_key(timer.ticket_id), DUE, OPEN, FIRST_REPLY]
        return bool(self._stop(keys=keys, args=args))

    def set_breach_message(self, ticket_id: int, channel: str, ts: str) -> None:
        """Where the breach message is, for the edit when the answer comes."""
        self.redis.hset(
            timer_key(ticket_id), "breach_message", json.dumps({"channel": channel, "ts": ts})
        )

    def set_check(self, ticket_id: int, at: float, checks: int) -> bool:
        """When a running clock's next look at Zendesk is due, and how many came before
        (False when the clock stopped meanwhile: nothing is written)."""
        return bool(self._set_check(keys=[timer_key(ticket_id)], args=[repr(at), checks]))

    def nudged(self, channel: str) -> list[int]:
        """The tickets a channel's nudge message lists, closest to breach first."""
        return [int(_text(m)) for m in self.redis.zrange(nudged_key(channel), 0, -1)]

    def unlist(self, channel: str, ticket_ids: list[int]) -> None:
        """Take answered or breached reports off a channel's nudge list."""
        if ticket_ids:
            self.redis.zrem(nudged_key(channel), *ticket_ids)

    def open_timers(self) -> Iterator[Timer]:
        """Every running clock, the soonest breach first."""
        for member in self.redis.zrange(OPEN, 0, -1):
            timer = self.get(int(_text(member)))
            if timer is not None and timer.open:
                yield timer

    def open_count(self) -> int:
        """How many clocks run."""
        return int(self.redis.zcard(OPEN))


def _label_field(group: str, target: str) -> str:
    # Tabs cannot appear in a group or target name typed in YAML on one line.
    return f"{group or '-'}\t{target}".replace("\n", " ")


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class TimerCollector:
    """/metrics: first-reply time histogram, breaches counter and open timers gauge, from Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Any]:
        """Read the counts at scrape time (shared by every worker that wrote them)."""
        try:
            pipe = self.redis.pipeline()
            pipe.hgetall(FIRST_REPLY)
            pipe.hgetall(BREACHES)
            pipe.zcard(OPEN)
            histogram_raw, breaches_raw, open_count = pipe.execute()
        except RedisError:
            return
        histogram = HistogramMetricFamily(
            "feedback_hub_first_reply_seconds",
            "Time from a report's acceptance to the first public reply by support",
            labels=["group", "target"],
        )
        series: dict[tuple[str, str], dict[str, float]] = {}
        for key, value in histogram_raw.items():
            group, target, *rest = _text(key).split("\t")
            name = "\t".join(rest)
            series.setdefault((group, target), {})[name] = float(_text(value))
        for (group, target), values in sorted(series.items()):
            buckets = [(_le(b), values.get(f"le\t{_le(b)}", 0.0)) for b in (*BUCKETS, math.inf)]
            histogram.add_metric([group, target], buckets, values.get("sum", 0.0))
        yield histogram
        breaches = CounterMetricFamily(
            "feedback_hub_first_reply_breaches",
            "Reports whose first reply missed its target",
            labels=["group", "target"],
        )
        for key, value in sorted(breaches_raw.items()):
            group, target = _text(key).split("\t", 1)
            breaches.add_metric([group, target], float(_text(value)))
        yield breaches
        gauge = GaugeMetricFamily("feedback_hub_open_timers", "First-reply clocks still running")
        gauge.add_metric([], float(open_count))
        yield gauge
