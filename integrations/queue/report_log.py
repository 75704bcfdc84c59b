"""The console's record of recent reports and their decisions: bounded, indexed, in Redis.

Begun when a report is accepted, in the same round trip as its job (`mark_accepted`,
staged by the web process's intake and by the reaction job): what is known then
(source, subject, text, reporter, fields, attachment names, tags), state "queued",
a timeline of one "accepted". The intake job makes it the full record (`record`:
decision, group, ticket, timeline), under the same key and the same index entries,
keeping the timeline. Read by the console.

One JSON string per report (`hub:console:report:<id>`, expiring after
CONSOLE_REPORTS_DAYS), a sorted set of ids by arrival time, and one sorted set per
filterable value (source, group, priority, tag) so a filtered page walks only the
reports that can match. The count is held at CONSOLE_REPORTS_MAX by trimming the
oldest on write (in batches: up to 1 % more are kept between trims). The live state
(queued, delayed, filed, failed) is read from the StatusStore, which the jobs already
keep current; the record keeps the last state it saw for reports older than the
status's 30 days.

Each record is JSON compressed with zlib (plain JSON until the intake job rewrites it).
Redis memory per report, indexes included, is printed by `python -m bench.console_bench`
(README's results table); multiply by CONSOLE_REPORTS_MAX for the budget, and lower it
on a small Redis.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from integrations.queue import wire
from integrations.queue.status import ReportStatus, StatusStore
from integrations.queue.wire import Commands
from integrations.report import Report

PREFIX = "hub:console"
INDEX = f"{PREFIX}:reports"
INDEXES = f"{PREFIX}:indexes"
# What a record keeps of a report's text: enough to read it, not a copy of every log.
SUBJECT_CHARS = 200
DESCRIPTION_CHARS = 4000
# The timeline of one report stays short (attempts are few; a loop would be a bug).
TIMELINE_EVENTS = 50
# How many stored reports one filtered page may look through before it says so.
SCAN_LIMIT = 20_000
TRIM_SLACK_SECONDS = 3600
_CHUNK = 250

FILTERS = ("source", "status", "group", "tag", "priority", "text")
_INDEXED = ("source", "group", "priority", "tag")

# An accepted report's record and index entries, only if it has no record yet: a repeated
# delivery, or an intake job that ran first, keeps what is there (its arrival time too).
# KEYS: the record, INDEXES, INDEX, then the report's value indexes (source, tags);
# ARGV: the record, its TTL, the arrival time, the report's id. One command, one reply.
_ACCEPT = wire.script(
    """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], 'NX', ARGV[3], ARGV[4])
end
redis.call('SADD', KEYS[2], unpack(KEYS, 4))
return 1
"""
)


def _dump(data: dict[str, Any]) -> bytes:
    # A decision's JSON repeats its field and rule names: zlib keeps a record at a third.
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _load(raw: bytes | str) -> dict[str, Any]:
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    # A record begun at acceptance is plain JSON (mark_accepted); a zlib stream starts 0x78.
    loaded: dict[str, Any] = json.loads(data if data[:1] == b"{" else zlib.decompress(data))
    return loaded


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _accepted(report: Report) -> dict[str, Any]:
    """The record of a report as it is accepted: what the intake knows, nothing secret.

    Not its reply context (a Slack response_url can post as the app), custom values
    or attachment storage keys: the same fields the intake job's record keeps.
    """
    reporter = report.reporter
    received = report.received_at.timestamp()
    return {
        "id": report.key_digest,
        "received_at": received,
        "source": report.source,
        "subject": report.subject[:SUBJECT_CHARS],
        "description": report.description[:DESCRIPTION_CHARS],
        "reporter_name": reporter.name,
        "reporter_email": reporter.email,
        "reporter_slack": reporter.slack_user_id,
        "tags": list(report.tags),
        "fields": {k: v for k, v in report.fields.model_dump().items() if v},
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in report.attachments
        ],
        "decision": None,
        "group": None,
        "priority": None,
        "state": "queued",
        "ticket_id": None,
        "ticket_url": None,
        "timeline": [[received, "accepted", report.source]],
    }


def _record_key(report_id: str) -> str:
    return f"{PREFIX}:report:{report_id}"


def _value_key(name: str, value: str) -> str:
    return f"{PREFIX}:by:{name}:{value.lower()}"


@dataclass(frozen=True)
class ReportFilter:
    """What the Reports page asks for; empty fields match everything."""

    source: str = ""
    status: str = ""
    group: str = ""
    tag: str = ""
    priority: str = ""
    text: str = ""

    @classmethod
    def from_args(cls, args: Any) -> ReportFilter:
        """From query arguments (a mapping); unknown names are ignored, values trimmed."""
        return cls(**{name: str(args.get(name, "") or "").strip()[:200] for name in FILTERS})

    def active(self) -> dict[str, str]:
        """The filters that are set."""
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def matches(self, row: ReportRow) -> bool:
        """Whether a stored report passes every filter that is set."""
        if self.source and row.source != self.source:
            return False
        if self.status and row.state != self.status:
            return False
        if self.group and (row.group or "").lower() != self.group.lower():
            return False
        if self.priority and (row.priority or "").lower() != self.priority.lower():
            return False
        if self.tag and self.tag.lower() not in (t.lower() for t in row.tags):
            return False
        if self.text:
            needle = self.text.lower()
            haystack = f"{row.subject}\n{row.description}\n{row.reporter_name or ''}".lower()
            if needle not in haystack:
                return False
        return True


@dataclass
class ReportRow:
    """One stored report as the console shows it."""

    id: str
    received_at: float
    source: str
    subject: str
    description: str
    reporter_name: str | None
    reporter_email: str | None
    reporter_slack: str | None
    tags: list[str]
    fields: dict[str, str]
    attachments: list[dict[str, Any]]
    decision: dict[str, Any] | None
    group: str | None
    priority: str | None
    state: str
    ticket_id: int | None = None
    ticket_url: str | None = None
    reason: str | None = None
    timeline: list[list[Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportRow:
        """From the stored JSON (fields added later default, unknown ones are ignored)."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_status(self, status: ReportStatus | None) -> ReportRow:
        """The row with the report's live state, when the status store still has it."""
        if status is not None:
            self.state = status.state
            self.ticket_id = status.ticket_id or self.ticket_id
            # The record's link is the agents' ticket page; the status's is the reporter's.
            self.ticket_url = self.ticket_url or status.ticket_url
            self.reason = status.reason
        return self


@dataclass(frozen=True)
class ReportPage:
    """A page of the Reports list: rows newest first, where the next page starts."""

    rows: list[ReportRow]
    next_before: float | None
    scanned: int
    truncated: bool


class ReportLog:
    """The bounded, indexed record of recent reports (see the module's docstring)."""

    def __init__(self, redis: Redis, *, max_reports: int = 200_000, days: int = 90) -> None:
        self.redis = redis
        self.max_reports = max_reports
        self.ttl = days * 24 * 3600

    # ------------------------------------------------------------ writing

    def mark_accepted(self, report: Report, commands: Commands) -> None:
        """Add a just-accepted report's record ("queued") to the caller's commands.

        Staged with the report's job (Hub.stage_report), so the web's intake still makes
        one round trip; a report that already has a record keeps it. Trimmed and expired
        as every record is: the same key, TTL and indexes (the count is held by the
        trim that the intake job's `record` runs).
        """
        data = _accepted(report)
        rid = data["id"]
        keys = [_record_key(rid), INDEXES, INDEX, _value_key("source", report.source)]
        keys += [_value_key("tag", t) for t in dict.fromkeys(data["tags"])]
        # Plain JSON: zlib sets up its state for every stream, level 0 included, which cost
        # more than the rest of this record (docs/slack.md). The intake job's `record`
        # rewrites it compressed; _load reads both.
        record = json.dumps(data, separators=(",", ":")).encode()
        commands.add(
            "EVALSHA", _ACCEPT, len(keys), *keys, record, self.ttl, data["received_at"], rid
        )

    def record(
        self,
        report: Report,
        *,
        decision: dict[str, Any] | None,
        state: str,
        event: str,
        ticket_id: int | None = None,
        ticket_url: str | None = None,
        now: float | None = None,
    ) -> None:
        """Keep (or update) a report's record and add `event` to its timeline."""
        now = time.time() if now is None else now
        key = _record_key(report.key_digest)
        raw = self.redis.get(key)
        data = _accepted(report)
        received = data["received_at"]
        timeline: list[list[Any]] = data["timeline"]
        if raw:
            # The record begun at acceptance (mark_accepted) or by an earlier attempt.
            old = _load(raw)
            timeline = old.get("timeline", [])
            ticket_id = ticket_id or old.get("ticket_id")
            ticket_url = ticket_url or old.get("ticket_url")
        timeline = [*timeline, [now, event, ""]][-TIMELINE_EVENTS:]
        tags = [str(t) for t in (decision or {}).get("tags") or report.tags]
        data.update(
            tags=tags,
            decision=decision,
            group=(decision or {}).get("group"),
            priority=(decision or {}).get("priority"),
            state=state,
            ticket_id=ticket_id,
            ticket_url=ticket_url,
            timeline=timeline,
        )
        values: list[tuple[str, str]] = [("source", report.source)]
        values += [(n, str(data[n])) for n in ("group", "priority") if data[n]]
        values += [("tag", str(t)) for t in tags]
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key, _dump(data), ex=self.ttl)
        pipe.zadd(INDEX, {report.key_digest: received})
        for name, value in values:
            index = _value_key(name, str(value))
            pipe.zadd(index, {report.key_digest: received})
            pipe.sadd(INDEXES, index)
        pipe.zcard(INDEX)
        pipe.zrange(INDEX, 0, 0, withscores=True)
        *_, count, oldest = pipe.execute()
        # Trimmed in batches (1 % over the count, an hour past the age), not on every write.
        over = count > self.max_reports + max(1, self.max_reports // 100)
        if over or (oldest and oldest[0][1] < now - self.ttl - TRIM_SLACK_SECONDS):
            self.trim(now)

    def add_event(self, report_id: str, event: str, detail: str = "") -> bool:
        """Add an event to a stored report's timeline; False when it is not stored."""
        key = _record_key(report_id)
        raw = self.redis.get(key)
        if not raw:
            return False
        data = _load(raw)
        data["timeline"] = [*data.get("timeline", []), [time.time(), event, detail]]
        data["timeline"] = data["timeline"][-TIMELINE_EVENTS:]
        self.redis.set(key, _dump(data), keepttl=True)
        return True

    def trim(self, now: float | None = None) -> int:
        """Drop what is past the age or over the count (oldest first); how many went."""
        now = time.time() if now is None else now
        cutoff = now - self.ttl
        old = [_str(m) for m in self.redis.zrangebyscore(INDEX, "-inf", f"({cutoff}")]
        excess = self.redis.zcard(INDEX) - len(old) - self.max_reports
        if excess > 0:
            extra = self.redis.zrange(INDEX, len(old), len(old) + excess - 1)
            old += [_str(m) for m in extra]
        if not old:
            return 0
        indexes = [_str(i) for i in self.redis.smembers(INDEXES)]
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(old), 1000):
            chunk = old[start : start + 1000]
            pipe.delete(*(_record_key(i) for i in chunk))
            pipe.zrem(INDEX, *chunk)
            for index in indexes:
                pipe.zrem(index, *chunk)
        pipe.execute()
        for index in indexes:
            if not self.redis.exists(index):
                self.redis.srem(INDEXES, index)
        return len(old)

    # ------------------------------------------------------------ reading (console)

    def count(self) -> int:
        """How many reports are stored."""
        return int(self.redis.zcard(INDEX))

    def get(self, report_id: str) -> ReportRow | None:
        """One stored report with its live state, or None."""
        rows = self._rows([report_id])
        return rows[0] if rows else None

    def page(
        self, wanted: ReportFilter, *, limit: int = 50, before: float | None = None
    ) -> ReportPage:
        """Reports newest first that pass `wanted`, arrived before `before` (exclusive)."""
        rows: list[ReportRow] = []
        scanned = 0
        last: float | None = None
        truncated = False
        for ids, low in self._candidates(wanted, before):
            scanned += len(ids)
            for row in self._rows(ids):
                if wanted.matches(row):
                    rows.append(row)
                    if len(rows) == limit:
                        return ReportPage(rows, row.received_at, scanned, False)
            last = low
            if scanned >= SCAN_LIMIT:
                truncated = True
                break
        return ReportPage(rows, last if truncated else None, scanned, truncated)

    def newer(self, wanted: ReportFilter, after: float, *, limit: int = 50) -> list[ReportRow]:
        """Reports that arrived after `after` and pass `wanted`, newest first."""
        ids = [
            _str(m)
            for m in self.redis.zrevrangebyscore(
                self._walk_key(wanted), "+inf", f"({after}", start=0, num=limit
            )
        ]
        return [row for row in self._rows(ids) if wanted.matches(row)]

    def _walk_key(self, wanted: ReportFilter) -> str:
        """The smallest sorted set every match is in: an index of a filter, or all reports."""
        keys = [_value_key(n, getattr(wanted, n)) for n in _INDEXED if getattr(wanted, n)]
        if not keys:
            return INDEX
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcard(key)
        sizes = pipe.execute()
        return min(zip(sizes, keys, strict=True))[1]

    def _candidates(
        self, wanted: ReportFilter, before: float | None
    ) -> Iterator[tuple[list[str], float]]:
        key = self._walk_key(wanted)
        high: str = f"({before}" if before is not None else "+inf"
        while True:
            found: list[Any] = self.redis.zrevrangebyscore(
                key, high, "-inf", start=0, num=_CHUNK, withscores=True
            )
            if not found:
                return
            ids = [_str(m) for m, _ in found]
            low = float(found[-1][1])
            yield ids, low
            if len(found) < _CHUNK:
                return
            # Reports arriving in the same microsecond are rare; excluding `low` may skip one.
            high = f"({low}"

    def _rows(self, ids: Iterable[str]) -> list[ReportRow]:
        ids = list(ids)
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget([_record_key(i) for i in ids])
        statuses_of = StatusStore(self.redis)
        pipe.mget([statuses_of._key(i) for i in ids])
        records, statuses = pipe.execute()
        rows = []
        for raw, status in zip(records, statuses, strict=True):
            if not raw:
                continue  # expired: the index entry goes at the next trim
            row = ReportRow.from_json(_load(raw))
            rows.append(row.with_status(ReportStatus(**json.loads(status)) if status else None))
        return rows


def report_log(redis: Redis, settings: Any) -> ReportLog:
    """The ReportLog with the limits from the settings (CONSOLE_REPORTS_MAX, _DAYS)."""
    return ReportLog(
        redis, max_reports=settings.console_reports_max, days=settings.console_reports_days
    )
