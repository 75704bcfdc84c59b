"""First-reply timers: the clock each report starts, the nudge before its target, the breach at it.

- `start_timer` (the intake job, once the ticket exists): the first target of the
  rules' `response_time:` that matches starts a clock at the moment the report was
  **accepted**; starting again keeps the first clock.
- `on_ticket_event` (the ticket-event job): the first public comment by someone on
  the support side (not the requester, not a comment the hub wrote) stops it, and so
  does a solve. Internal notes do not.
- `tick` (a job every TICK_SECONDS while clocks run): hands what is due to a
  `timer_due` job per ticket and stage. That job first asks Zendesk for the ticket's
  comments (a lost webhook is not a false alarm), then adds the report to its
  channel's one nudge message (edited in place), or posts the breach and tags the
  ticket. A later answer edits both.
- `recheck` (a `timer_due` job with stage "check", scheduled in rq): a breached clock
  that no answer or solve has stopped (its webhook lost, or nobody answers) is looked
  at in Zendesk an hour after the breach, then twice as long each time up to a day,
  and let go two weeks after the breach ("expired": no longer open, nor in `watch`).
  `sweep_checks` (worker maintenance, once a day) gives a look to any breached clock
  that has none coming (clocks breached before this existed, a scheduled job lost).

Nothing here ever writes to the person who reported: every message goes to a
support channel, through the wall (integrations/slack/api.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Retry

from integrations import logs
from integrations.errors import Permanent
from integrations.queue import EVENTS, enqueue_once, queue
from integrations.queue.jobs import TIMER_DUE, TIMER_TICK
from integrations.queue.marks import once
from integrations.queue.timers import (
    CHECK_FIRST_SECONDS,
    CHECK_MAX_SECONDS,
    DUE,
    GIVE_UP_SECONDS,
    KEEP_SECONDS,
    OPEN,
    Stage,
    Timer,
    TimerStore,
)
from integrations.report import Report
from integrations.slack import first_reply
from integrations.zendesk.gateway import Ticket
from integrations.zendesk.own_comments import is_own_comment
from integrations.zendesk.payloads import CommentAdded, ZendeskEvent
from rules.decision import Decision
from rules.model import RuleSet
from rules.targets import counted_seconds, deadlines, target_for
from workers.context import JobContext, context
from workers.retry import run_guarded

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# How often the scheduler looks at what is due: nudges and breaches come out at most
# this much late (plus the queue's wait), well inside the 30 s goal.
TICK_SECONDS = 5
# Set while a tick chain runs; a chain that died (its worker killed) lets it lapse,
# and the next worker maintenance (every minute) or worker start begins a new one.
TICKING = "hub:timers:ticking"
TICKING_SECONDS = 30
# At most this many due timers are handed over per tick; the rest go next tick.
BATCH = 2000
NUDGE_MESSAGES = "hub:timers:nudge-messages"
# Held for a day by the worker that sweeps breached clocks for missing looks.
CHECK_SWEEP = "hub:timers:check-sweep"
CHECK_SWEEP_SECONDS = 24 * 3600

# Continue the chain while clocks run; stop it (atomically with that look) when none do,
# so a timer started at that moment always finds either a live chain or none to restart.
_CONTINUE = """
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""
_BEGIN = """
if redis.call('ZCARD', KEYS[1]) == 0 then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""


# ---------------------------------------------------------------- starting the clock


def start_timer(
    redis: Redis,
    report: Report,
    ticket: Ticket,
    decision: Decision,
    ruleset: RuleSet,
    *,
    clock: Clock = time.time,
) -> Timer | None:
    """Start the report's first-reply clock (from when it was accepted); None: no target."""
    target = target_for(report, decision, ruleset)
    if target is None:
        return None
    accepted = report.received_at
    due = deadlines(target, accepted, ruleset)
    timer = Timer(
        ticket_id=ticket.id,
        subject=ticket.subject or report.subject,
        group=decision.group or "",
        target=target.name,
        seconds=target.seconds,
        accepted=accepted.timestamp(),
        nudge_at=due.nudge.timestamp() if due.nudge else None,
        breach_at=due.breach.timestamp(),
        nudge_channel=target.nudge_channel if due.nudge else None,
        breach_channel=target.breach_channel,
        breach_tags=target.breach_tags,
        url=ticket.url,
        requester_id=ticket.requester_id,
        business=target.business,
    )
    started = TimerStore(redis).start(timer)
    if started:
        logs.event(
            log,
            "timer.started",
            ticket=ticket.id,
            target=target.name,
            breach_at=due.breach.isoformat(timespec="seconds"),
        )
    ensure_tick(redis, clock=clock)
    return timer


# ---------------------------------------------------------------- the tick


def ensure_tick(redis: Redis, *, clock: Clock = time.time) -> bool:
    """Begin a tick chain when clocks run and no chain does; True when one was begun."""
    now = clock()
    if not redis.eval(_BEGIN, 2, DUE, TICKING, repr(now), TICKING_SECONDS):
        return False
    _schedule_tick(redis, now)
    return True


def _schedule_tick(redis: Redis, now: float) -> None:
    slot = int(now // TICK_SECONDS) + 1
    # One job id per slot: chains that meet (a restarted one and a slow one) merge.
    q = queue(redis, EVENTS)
    q.enqueue_at(
        datetime.fromtimestamp(slot * TICK_SECONDS, UTC),
        TIMER_TICK.func,
        job_id=f"{TIMER_TICK.kind}-{slot}",
        description=f"{TIMER_TICK.name} {slot}",
        result_ttl=60,
        failure_ttl=24 * 3600,
        at_front=True,
    )


def tick() -> dict[str, Any]:
    """Job: hand what is due to `timer_due` jobs, then schedule the next tick while clocks run."""
    redis = context().redis
    return run_tick(redis)


def run_tick(redis: Redis, *, clock: Clock = time.time) -> dict[str, Any]:
    """One tick: O(log n) per due timer (a range of the due set), whatever runs."""
    now = clock()
    store = TimerStore(redis)
    items = store.due(now, limit=BATCH)
    for ticket_id, stage, _ in items:
        # One job per ticket and stage, ever: a tick repeated after a crash is refused.
        enqueue_once(redis, TIMER_DUE, ticket_id, stage, key=f"{ticket_id}:{stage}")
    store.taken(items)
    lateness = [now - due for _, _, due in items]
    if redis.eval(_CONTINUE, 2, DUE, TICKING, repr(now), TICKING_SECONDS):
        _schedule_tick(redis, now)
    if items:
        logs.event(log, "timer.tick", due=len(items), late_max=round(max(lateness), 1))
    return {"due": len(items)}


# ---------------------------------------------------------------- a due timer


def timer_due(ticket_id: int, stage: str, checks: int = 0) -> str | Retry:
    """Job: a timer's nudge or breach, unless Zendesk shows an answer already; or ("check")
    a breached timer's look at Zendesk (`checks` made before this one)."""
    return run_guarded(handle_due, context(), ticket_id, stage, checks)


def handle_due(
    ctx: JobContext, ticket_id: int, stage: str, checks: int = 0, *, clock: Clock = time.time
) -> str:
    """The nudge, breach or later look of one timer; returns what happened."""
    assert stage in ("nudge", "breach", "check"), stage
    store = TimerStore(ctx.redis)
    timer = store.get(ticket_id)
    if timer is None:
        return "gone"
    if stage == "check":
        return recheck(ctx, timer, checks, clock=clock)
    if timer.open:
        try:
            reply = find_reply(ctx, timer)
        except Permanent as exc:
            if exc.status != 404:
                raise
            # Deleted in Zendesk: nobody can answer it; the clock stops without a count.
            clock_stopped(ctx, timer, state="deleted", at=clock(), by=None, clock=clock)
            return "deleted"
        if reply is not None:
            at, by = reply
            clock_stopped(ctx, timer, state="answered", at=at, by=by, clock=clock)
            logs.event(log, "timer.answered_found", ticket=ticket_id, stage=stage)
            return "answered"
        # Atomic with the clock's state: an answer that stopped it since the look above wins.
        store.claim(timer, _stage(stage), clock())
    timer = store.get(ticket_id)
    if timer is None:
        return "gone"
    if stage == "nudge":
        if not timer.nudged or not timer.nudge_channel:
            return "stopped"
        refresh_nudges(ctx, timer.nudge_channel, clock=clock)
        logs.event(log, "timer.nudged", ticket=ticket_id, channel=timer.nudge_channel)
        return "nudged"
    if not timer.breached:
        return "stopped"
    _breach(ctx, timer, clock=clock)
    if timer.open:
        schedule_check(ctx.redis, timer, 0, clock())
    return "breached"


# ---------------------------------------------------------------- after the breach


def check_delay(checks: int) -> float:
    """How long after a look (the breach for the first) the next one comes."""
    return float(min(CHECK_FIRST_SECONDS * 2**checks, CHECK_MAX_SECONDS))


def schedule_check(redis: Redis, timer: Timer, checks: int, now: float) -> bool:
    """Schedule the look after `checks` looks (rq's scheduler; one job id per look)."""
    at = now + check_delay(checks)
    if not TimerStore(redis).set_check(timer.ticket_id, at, checks):
        return False  # stopped meanwhile
    queue(redis, EVENTS).enqueue_at(
        datetime.fromtimestamp(at, UTC),
        TIMER_DUE.func,
        timer.ticket_id,
        "check",
        checks,
        job_id=f"{TIMER_DUE.kind}-{timer.ticket_id}-check-{checks}",
        description=f"{TIMER_DUE.name} {timer.ticket_id} check {checks + 1}",
        failure_ttl=KEEP_SECONDS,
    )
    return True


def recheck(ctx: JobContext, timer: Timer, checks: int, *, clock: Clock = time.time) -> str:
    """A breached clock still running: answered or solved in Zendesk, or still waiting?"""
    if not timer.open:
        return "stopped"
    now = clock()
    try:
        reply = find_reply(ctx, timer)
        status = ctx.zendesk.get_ticket(timer.ticket_id).status if reply is None else ""
    except Permanent as exc:
        if exc.status != 404:
            raise
        clock_stopped(ctx, timer, state="deleted", at=now, by=None, clock=clock)
        return "deleted"
    if reply is not None:
        at, by = reply
        clock_stopped(ctx, timer, state="answered", at=at, by=by, clock=clock)
        logs.event(log, "timer.answered_found", ticket=timer.ticket_id, stage="check")
        return "answered"
    if status in ("solved", "closed"):
        clock_stopped(ctx, timer, state="solved", at=now, by=None, clock=clock)
        return "solved"
    if now - timer.breach_at >= GIVE_UP_SECONDS:
        clock_stopped(ctx, timer, state="expired", at=now, by=None, clock=clock)
        return "expired"
    schedule_check(ctx.redis, timer, checks + 1, now)
    return "waiting"


def sweep_checks(redis: Redis, *, clock: Clock = time.time) -> int | None:
    """Once a day (whoever comes first): a look for every breached clock that has none
    coming. Returns how many were scheduled (None: another worker swept today)."""
    now = clock()
    if not redis.set(CHECK_SWEEP, repr(now), nx=True, ex=CHECK_SWEEP_SECONDS):
        return None
    store = TimerStore(redis)
    scheduled = 0
    for member in redis.zrangebyscore(OPEN, "-inf", now):  # breach time passed
        timer = store.get(int(member.decode() if isinstance(member, bytes) else str(member)))
        if timer is None or not timer.open or not timer.breached:
            continue
        if timer.check_at is not None and timer.check_at > now - CHECK_FIRST_SECONDS:
            continue  # one is coming (or has just been due)
        scheduled += schedule_check(redis, timer, timer.checks, now)
    if scheduled:
        logs.event(log, "timer.checks_swept", scheduled=scheduled)
    return scheduled


def _stage(stage: str) -> Stage:
    return "nudge" if stage == "nudge" else "breach"


def find_reply(ctx: JobContext, timer: Timer) -> tuple[float, str] | None:
    """The first public reply by support in Zendesk's comments: (when, who), or None."""
    comments = ctx.zendesk.comments(timer.ticket_id)
    if not comments:
        return None
    requester = timer.requester_id or comments[0].author_id
    for comment in comments[1:]:  # the first is the report itself
        if not comment.public or comment.author_id is None or comment.author_id == requester:
            continue
        if _own(ctx.redis, timer.ticket_id, comment.body):
            continue
        name = ctx.zendesk.user_name(comment.author_id) or "an agent"
        return _timestamp(comment.created_at), name
    return None


def _own(redis: Redis, ticket_id: int, body: str) -> bool:
    return is_own_comment(redis, ticket_id, body)


def _timestamp(value: str | None, default: float | None = None) -> float:
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time() if default is None else default


# ---------------------------------------------------------------- Slack


def refresh_nudges(ctx: JobContext, channel: str, *, clock: Clock = time.time) -> int | None:
    """Make the channel's nudge message list the reports still waiting; returns how many.

    One message per channel, edited in place. Changes coalesce: a job marks the channel
    to be redrawn; whoever holds the channel's lock redraws until no mark is left, and a
    job that finds the lock taken leaves its mark to the holder (None). So a burst of
    nudges costs a few edits, not one each (chat.update is a 50-a-minute method).
    Once its list is empty the message says so, and the next nudge starts a new message
    (at the bottom of the channel, where people look).
    """
    redis = ctx.redis
    dirty = f"hub:timers:nudge-dirty:{channel}"
    redis.set(dirty, 1, ex=KEEP_SECONDS)
    count: int | None = None
    while True:
        lock = redis.lock(f"hub:timers:nudge-lock:{channel}", timeout=60)
        if not lock.acquire(blocking=False):
            return count
        try:
            while redis.delete(dirty):
                count = _draw_nudges(ctx, channel, clock())
        except BaseException:
            # Not drawn: the mark stays for this job's retry, or the next holder.
            redis.set(dirty, 1, ex=KEEP_SECONDS)
            raise
        finally:
            lock.release()
        # A mark left between the last look and the release has no holder to see it.
        if not redis.exists(dirty):
            return count


def _draw_nudges(ctx: JobContext, channel: str, now: float) -> int:
    redis = ctx.redis
    store = TimerStore(redis)
    ids = store.nudged(channel)
    found = store.get_many(ids)
    waiting = [t for t in found if t is not None and t.open and not t.breached]
    listed = {t.ticket_id for t in waiting}
    store.unlist(channel, [i for i in ids if i not in listed])
    raw = redis.hget(NUDGE_MESSAGES, channel)
    posted = json.loads(raw) if raw else None
    message = first_reply.nudge_message(waiting, now)
    if posted is not None and posted.get("active"):
        ctx.slack.call(
            "chat.update",
            channel=posted["channel"],
            ts=posted["ts"],
            text=message["text"],
            blocks=message["blocks"],
        )
        posted["active"] = bool(waiting)
    elif waiting:
        data = ctx.slack.post_message(channel, message)
        posted = {"channel": str(data.get("channel") or channel), "ts": str(data["ts"])}
        posted["active"] = True
    if posted is not None:
        redis.hset(NUDGE_MESSAGES, channel, json.dumps(posted))
    return len(waiting)


def _breach(ctx: JobContext, timer: Timer, *, clock: Clock = time.time) -> None:
    """Post the breach (once), tag the ticket, and take the report off the nudge list."""
    if timer.breach_channel and timer.breach_message is None:
        with once(ctx.redis, f"hub:timers:breach-post:{timer.ticket_id}", ttl=KEEP_SECONDS) as c:
            if c is not None:
                data = ctx.slack.post_message(
                    timer.breach_channel, first_reply.breach_message(timer)
                )
                channel = str(data.get("channel") or timer.breach_channel)
                TimerStore(ctx.redis).set_breach_message(timer.ticket_id, channel, str(data["ts"]))
                c.done()
                logs.event(log, "timer.breached", ticket=timer.ticket_id, target=timer.target)
    if timer.breach_tags:
        ctx.zendesk.add_tags(timer.ticket_id, timer.breach_tags)
    if timer.nudged and timer.nudge_channel:
        refresh_nudges(ctx, timer.nudge_channel, clock=clock)
    # An answer that came while the message was posted: show it now.
    latest = TimerStore(ctx.redis).get(timer.ticket_id)
    if latest is not None and not latest.open:
        _edit_breach(ctx, latest)


def _edit_breach(ctx: JobContext, timer: Timer) -> None:
    if timer.breach_message is None:
        return
    message = first_reply.breach_message(timer)
    ctx.slack.call(
        "chat.update",
        channel=timer.breach_message["channel"],
        ts=timer.breach_message["ts"],
        text=message["text"],
        blocks=message["blocks"],
    )


# ---------------------------------------------------------------- stopping the clock


def clock_stopped(
    ctx: JobContext,
    timer: Timer,
    *,
    state: str,
    at: float,
    by: str | None,
    clock: Clock = time.time,
) -> bool:
    """Stop the clock (first stop only), then bring the nudge and breach messages up to date.

    A business-hours target counts the time to the answer in its open hours (the
    histogram, the breach message's "answered after"), as its deadline was set.
    """
    store = TimerStore(ctx.redis)
    counted = None
    if state == "answered" and timer.business:
        hours = ctx.rules().business_hours
        start, end = datetime.fromtimestamp(timer.accepted, UTC), datetime.fromtimestamp(at, UTC)
        counted = counted_seconds(start, end, hours)
    stopped = store.stop(timer, state=state, at=at, by=by, counted=counted)
    if stopped:
        logs.event(
            log,
            "timer.stopped",
            ticket=timer.ticket_id,
            state=state,
            seconds=round(at - timer.accepted),
            breached=timer.breached,
        )
    latest = store.get(timer.ticket_id) or timer
    if latest.nudged and latest.nudge_channel:
        refresh_nudges(ctx, latest.nudge_channel, clock=clock)
    if latest.breached:
        _edit_breach(ctx, latest)
    return stopped


def on_ticket_event(ctx: JobContext, event: ZendeskEvent, kinds: list[str]) -> str | None:
    """Stop the ticket's clock on support's first public reply, or on a solve."""
    timer = TimerStore(ctx.redis).get(event.ticket.id)
    if timer is None:
        return None
    at = _timestamp(event.occurred_at)
    comment = event.comment if "comment_added" in kinds else None
    if comment is not None and is_support_reply(ctx.redis, event, comment):
        by = comment.author_name or (
            ctx.zendesk.user_name(comment.author_id) if comment.author_id else None
        )
        clock_stopped(ctx, timer, state="answered", at=at, by=by)
        return "answered"
    if event.ticket.status in ("solved", "closed") and (
        "status_changed" in kinds or event.kind == "status_changed"
    ):
        clock_stopped(ctx, timer, state="solved", at=at, by=None)
        return "solved"
    return None


def is_support_reply(redis: Redis, event: ZendeskEvent, comment: CommentAdded) -> bool:
    """A public comment by someone on the support side that the hub did not write itself."""
    if not comment.public or not comment.body.strip():
        return False
    requester = event.ticket.requester_id
    if comment.author_id is not None and comment.author_id == requester:
        return False
    if comment.author_is_staff is False:
        return False
    if comment.author_is_staff is None and comment.author_id is None:
        return False
    if _own(redis, event.ticket.id, comment.body):
        return False
    description = event.ticket.description
    return not (description and " ".join(description.split()) == " ".join(comment.body.split()))


# ---------------------------------------------------------------- `feedback-hub watch`


def open_timers(redis: Redis) -> list[Timer]:
    """Every running clock, the soonest breach first."""
    return sorted(TimerStore(redis).open_timers(), key=lambda t: t.breach_at)


def _minutes_from(seconds: float) -> str:
    """How far a breach is, as `watch` says it: never "0 min" ("due in under a minute")."""
    if 0 <= seconds < 60:
        return "due in < 1 min"
    if -60 < seconds < 0:
        return "overdue < 1 min"
    minutes = round(abs(seconds) / 60)
    return f"due in {minutes} min" if seconds >= 0 else f"overdue {minutes} min"


def watch_lines(redis: Redis, *, now: float | None = None) -> list[str]:
    """`feedback-hub watch`: one line per running clock, the soonest breach first."""
    now = time.time() if now is None else now
    lines = []
    for timer in open_timers(redis):
        when = _minutes_from(timer.breach_at - now)
        stage = "breached" if timer.breached else "nudged" if timer.nudged else "running"
        subject = " ".join(timer.subject.split())[:60]
        lines.append(
            f"#{timer.ticket_id:<8} {when:<16} {stage:<9} {timer.group or '-':<12} "
            f"{timer.target}: {subject}"
        )
    return lines
