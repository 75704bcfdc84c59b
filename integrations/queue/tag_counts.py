"""Tag counters: how often each tag, group and source came up, per ISO week (UTC).

What is kept (all in Redis, the hub's only state):

- `hub:tags:week:<YYYY-Www>`, one hash per ISO week (UTC) of the report's arrival, kept
  `WEEK_TTL` (400 days) after its last write. Fields, with `\\x1f` between the parts:
  `t<tag><group><source>` reports with that tag routed to that group from that source;
  `r<group><source>` reports; `u<group><source>` reports the taxonomy gave no tag. Any
  filter (tag, group, source) is a sum over these fields, so one HGETALL per week
  answers every question. The group of an unrouted report is "".
- `hub:tags:ticket:<id>`: what a filed ticket was counted as (week, group, source,
  tags), so an agent's tag change (`tags_changed`) moves that report's counts; kept
  `TICKET_TTL` (120 days: later changes no longer move counts). It is also the
  per-report marker: a retried job whose record exists does not count again.
- `hub:tags:first-seen` (tag -> week it was first counted), `hub:tags:last-matched`
  (taxonomy tag -> Unix time of the last report its keywords or patterns matched),
  `hub:tags:since` (when counting began): new tags and tags to retire.
- Per week, for the digest (kept `SIDE_TTL`, 5 weeks): `hub:tags:examples:<week>:<tag>`
  the newest `EXAMPLES` (ticket id, subject) of each tag, never a reporter's name or
  e-mail; `hub:tags:untagged:<week>` the text of up to `UNTAGGED_KEPT` reports the
  taxonomy left untagged (candidates for new tags).

Counting a report is one Lua script: one round trip, atomic, idempotent per ticket.
Reads of N weeks are one pipelined round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from redis import Redis

PREFIX = "hub:tags"
FIRST_SEEN = f"{PREFIX}:first-seen"
LAST_MATCHED = f"{PREFIX}:last-matched"
SINCE = f"{PREFIX}:since"
WEEK_TTL = 400 * 24 * 3600
TICKET_TTL = 120 * 24 * 3600
SIDE_TTL = 5 * 7 * 24 * 3600
EXAMPLES = 3
UNTAGGED_KEPT = 2000
UNTAGGED_CHARS = 1000
SUBJECT_CHARS = 150
_SEP = "\x1f"

# KEYS: 1 ticket record, 2 week hash, 3 first-seen, 4 last-matched, 5 untagged list,
#       6 since, 7.. one example list per tag (in ARGV's order)
# ARGV: 1 record json, 2 record ttl, 3 week, 4 group, 5 source, 6 week ttl, 7 side ttl,
#       8 received (Unix time), 9 example json, 10 untagged text ("" when the taxonomy
#       tagged it), 11 examples kept, 12 untagged kept, then (tag, "1" if the taxonomy
#       matched it else "0") pairs
_COUNT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
local sep = '\\31'
local suffix = sep .. ARGV[4] .. sep .. ARGV[5]
redis.call('HINCRBY', KEYS[2], 'r' .. suffix, 1)
if ARGV[10] ~= '' then
  redis.call('HINCRBY', KEYS[2], 'u' .. suffix, 1)
  redis.call('LPUSH', KEYS[5], ARGV[10])
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[12]) - 1)
  redis.call('EXPIRE', KEYS[5], ARGV[7])
end
local n = 0
for i = 13, #ARGV, 2 do
  n = n + 1
  local tag = ARGV[i]
  redis.call('HINCRBY', KEYS[2], 't' .. sep .. tag .. suffix, 1)
  redis.call('HSETNX', KEYS[3], tag, ARGV[3])
  if ARGV[i + 1] == '1' then
    local last = tonumber(redis.call('HGET', KEYS[4], tag) or '0')
    if tonumber(ARGV[8]) > last then redis.call('HSET', KEYS[4], tag, ARGV[8]) end
  end
  local ex = KEYS[6 + n]
  redis.call('LPUSH', ex, ARGV[9])
  redis.call('LTRIM', ex, 0, tonumber(ARGV[11]) - 1)
  redis.call('EXPIRE', ex, ARGV[7])
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[6], ARGV[8], 'NX')
return 1
"""

# Compare-and-set of a ticket's record with its week's counts.
# KEYS: 1 ticket record, 2 week hash, 3 first-seen
# ARGV: 1 the record as read, 2 the new record, 3 week, 4 week ttl, then (field, delta) pairs
_MOVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
local sep = '\\31'
for i = 5, #ARGV, 2 do
  local left = redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  if left <= 0 then redis.call('HDEL', KEYS[2], ARGV[i]) end
  if tonumber(ARGV[i + 1]) > 0 then
    local tag = string.sub(ARGV[i], 3, string.find(ARGV[i], sep, 3, true) - 1)
    redis.call('HSETNX', KEYS[3], tag, ARGV[3])
  end
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


# ---------------------------------------------------------------- weeks


def iso_week(ts: datetime | float | None = None) -> str:
    """The ISO week (UTC) of a moment, as "2026-W49"; naive datetimes are taken as UTC."""
    if ts is None:
        moment = datetime.now(UTC)
    elif isinstance(ts, datetime):
        moment = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(ts, UTC)
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> datetime:
    """Monday 00:00 UTC of an ISO week named as iso_week names it."""
    year, _, number = week.partition("-W")
    return datetime.combine(
        date.fromisocalendar(int(year), int(number), 1), datetime.min.time(), UTC
    )


def recent_weeks(weeks: int = 12, now: datetime | float | None = None) -> list[str]:
    """The last `weeks` ISO weeks, oldest first, ending with the week of `now`."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    last = week_start(iso_week(now))
    return [iso_week(last - timedelta(weeks=i)) for i in range(weeks - 1, -1, -1)]


def _week_key(week: str) -> str:
    return f"{PREFIX}:week:{week}"


def _ticket_key(ticket_id: int) -> str:
    return f"{PREFIX}:ticket:{ticket_id}"


def _examples_key(week: str, tag: str) -> str:
    return f"{PREFIX}:examples:{week}:{tag}"


def _untagged_key(week: str) -> str:
    return f"{PREFIX}:untagged:{week}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _tag(tag: str) -> str:
    # Zendesk stores tags lower-cased, without spaces.
    return tag.strip().lower().replace(" ", "_").replace(_SEP, "")


def _part(value: str | None) -> str:
    return (value or "").replace(_SEP, " ")


# ---------------------------------------------------------------- writes


def count_report(
    redis: Redis,
    *,
    ticket_id: int,
    received_at: datetime,
    tags: Iterable[str],
    taxonomy_tags: Iterable[str],
    group: str | None,
    source: str,
    subject: str,
    text: str,
) -> bool:
    """Count one filed report in its ISO week; False when this ticket was counted already.

    `tags`: the ticket's tags; `taxonomy_tags`: those the taxonomy matched (none means
    the report counts as untagged and its `text` is kept for `tags suggest`). One round
    trip; a retried job counts nothing twice.
    """
    week = iso_week(received_at)
    tag_list = sorted({t for t in (_tag(x) for x in tags) if t})
    matched = {_tag(x) for x in taxonomy_tags}
    group_part, source_part = _part(group), _part(source)
    record = json.dumps({"w": week, "g": group_part, "s": source_part, "t": tag_list})
    example = json.dumps({"ticket": ticket_id, "subject": subject.strip()[:SUBJECT_CHARS]})
    untagged = "" if matched else (text.strip()[:UNTAGGED_CHARS] or " ")
    keys = [
        _ticket_key(ticket_id),
        _week_key(week),
        FIRST_SEEN,
        LAST_MATCHED,
        _untagged_key(week),
        SINCE,
        *(_examples_key(week, t) for t in tag_list),
    ]
    args: list[str | int] = [
        record, TICKET_TTL, week, group_part, source_part, WEEK_TTL, SIDE_TTL,
        int(received_at.timestamp()), example, untagged, EXAMPLES, UNTAGGED_KEPT,
    ]  # fmt: skip
    for t in tag_list:
        args += [t, "1" if t in matched else "0"]
    return bool(redis.register_script(_COUNT)(keys=keys, args=args))


def move_tags(
    redis: Redis, ticket_id: int, *, removed: Iterable[str], added: Iterable[str]
) -> bool:
    """An agent changed a counted ticket's tags: its report now counts under the new ones.

    The counts move in the week the report was counted in. False when the hub did not
    count this ticket (not filed by the hub, or longer ago than TICKET_TTL) or nothing
    changed. Repeating the same change moves nothing (the record already has it).
    """
    gone = {_tag(t) for t in removed} - {""}
    new = {_tag(t) for t in added} - {""}
    script = redis.register_script(_MOVE)
    key = _ticket_key(ticket_id)
    for _ in range(5):
        raw = redis.get(key)
        if raw is None:
            return False
        before = _text(raw)
        record = json.loads(before)
        tags = set(record["t"])
        minus, plus = sorted((gone & tags) - new), sorted(new - tags)
        if not minus and not plus:
            return False
        record["t"] = sorted((tags - set(minus)) | set(plus))
        suffix = f"{_SEP}{record['g']}{_SEP}{record['s']}"
        args: list[str | int] = [before, json.dumps(record), record["w"], WEEK_TTL]
        for t in minus:
            args += [f"t{_SEP}{t}{suffix}", -1]
        for t in plus:
            args += [f"t{_SEP}{t}{suffix}", 1]
        if script(keys=[key, _week_key(record["w"]), FIRST_SEEN], args=args) == 1:
            return True
    return False


# ---------------------------------------------------------------- reads


@dataclass
class WeekCounts:
    """One ISO week's counts under a filter: reports per tag, reports, untagged reports."""

    week: str
    tags: dict[str, int] = field(default_factory=dict)
    reports: int = 0
    untagged: int = 0


def _matches(value: str, wanted: str | None) -> bool:
    return wanted is None or value.casefold() == wanted.casefold()


def read_weeks(
    redis: Redis, weeks: Sequence[str], *, group: str | None = None, source: str | None = None
) -> list[WeekCounts]:
    """The counts of these weeks (one round trip), only reports of `group` / `source` if given.

    `group=""` selects the reports no rule routed.
    """
    pipe = redis.pipeline(transaction=False)
    for week in weeks:
        pipe.hgetall(_week_key(week))
    out = []
    for week, raw in zip(weeks, pipe.execute(), strict=True):
        counts = WeekCounts(week)
        for key, value in raw.items():
            kind, *parts = _text(key).split(_SEP)
            n = int(value)
            if len(parts) < 2 or not (_matches(parts[-2], group) and _matches(parts[-1], source)):
                continue
            if kind == "t" and len(parts) == 3:
                counts.tags[parts[0]] = counts.tags.get(parts[0], 0) + n
            elif kind == "r":
                counts.reports += n
            elif kind == "u":
                counts.untagged += n
        out.append(counts)
    return out


def weekly_counts(
    redis: Redis,
    *,
    weeks: int = 12,
    now: datetime | float | None = None,
    tag: str | None = None,
    group: str | None = None,
    source: str | None = None,
) -> dict[str, list[int]]:
    """Tag -> reports per week over the last `weeks` ISO weeks (oldest first, the week of
    `now` last), for every tag counted in them (or just `tag`), filtered by group / source.
    """
    names = recent_weeks(weeks, now)
    read = read_weeks(redis, names, group=group, source=source)
    wanted = _tag(tag) if tag is not None else None
    out: dict[str, list[int]] = {}
    for i, counts in enumerate(read):
        for name, n in counts.tags.items():
            if wanted is None or name == wanted:
                out.setdefault(name, [0] * len(names))[i] = n
    if wanted is not None and wanted not in out:
        out[wanted] = [0] * len(names)
    return dict(sorted(out.items()))


def weekly_totals(
    redis: Redis,
    *,
    weeks: int = 12,
    now: datetime | float | None = None,
    group: str | None = None,
    source: str | None = None,
) -> dict[str, list[int]]:
    """{"reports": [...], "untagged": [...]} per week, as weekly_counts orders them."""
    read = read_weeks(redis, recent_weeks(weeks, now), group=group, source=source)
    return {"reports": [c.reports for c in read], "untagged": [c.untagged for c in read]}


def first_seen(redis: Redis) -> dict[str, str]:
    """Tag -> the ISO week it was first counted in."""
    raw = redis.hgetall(FIRST_SEEN)
    return {_text(k): _text(v) for k, v in raw.items()}


def last_matched(redis: Redis) -> dict[str, float]:
    """Taxonomy tag -> Unix time of the newest report its keywords or patterns matched."""
    raw = redis.hgetall(LAST_MATCHED)
    return {_text(k): float(v) for k, v in raw.items()}


def counting_since(redis: Redis) -> float | None:
    """Unix time of the first report counted (when the counters began), or None."""
    raw = redis.get(SINCE)
    return float(_text(raw)) if raw is not None else None


@dataclass(frozen=True)
class Example:
    """A report that carried a tag: its ticket and subject (never who sent it)."""

    ticket: int
    subject: str


def examples(redis: Redis, week: str, tag: str, *, limit: int = 2) -> list[Example]:
    """The newest reports counted under `tag` in `week` (at most EXAMPLES are kept)."""
    raw = redis.lrange(_examples_key(week, _tag(tag)), 0, limit - 1)
    out = []
    for item in raw:
        data = json.loads(_text(item))
        out.append(Example(int(data["ticket"]), str(data["subject"])))
    return out


def untagged_texts(redis: Redis, week: str) -> list[str]:
    """The text of this week's reports the taxonomy gave no tag (newest first, capped)."""
    raw = redis.lrange(_untagged_key(week), 0, -1)
    return [_text(t) for t in raw]


def counted(redis: Redis, ticket_id: int) -> dict[str, object] | None:
    """What a ticket was counted as: {"w": week, "g": group, "s": source, "t": tags}."""
    raw = redis.get(_ticket_key(ticket_id))
    return json.loads(_text(raw)) if raw is not None else None
