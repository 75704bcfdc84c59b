"""The weekly tag digest: built from the tag counters, sent to DIGEST_CHANNEL once a week.

When: DIGEST_DAY at DIGEST_HOUR in DIGEST_TZ (default Monday 09:00 UTC). It reports on
the last ISO week (UTC) complete at that moment. Every worker's maintenance (about once
a minute, workers/worker.py) calls `tick`, which finds the latest due moment and the
week it reports on, and queues SEND_DIGEST for that week unless the week is claimed in
Redis: of any number of workers, ticks and restarts, one job is queued (rq's unique job
id) and it posts under a `once` mark per week (SET NX), so a retried job or `feedback-hub
digest --now` does not post a second time either. Workers that were all down at the due
moment send it at their first tick after (late, once); only the latest due week is sent,
never an older backlog.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry

from integrations import logs
from integrations.queue import enqueue_once, tag_counts
from integrations.queue.jobs import SEND_DIGEST
from integrations.queue.marks import once
from integrations.settings import Settings
from integrations.slack.digest import Digest, ExampleLine, TagLine, render
from rules.model import RuleSet
from rules.trends import (
    movers,
    new_tags,
    retire_candidates,
    sparkline,
    suggest_terms,
    top_tags,
)
from workers.context import context, installed_settings
from workers.retry import run_guarded

log = logging.getLogger(__name__)

CLAIM_TTL = 400 * 24 * 3600
TOP = 10
MOVERS = 10
RETIRE_SHOWN = 30


def _claim_key(week: str) -> str:
    return f"hub:digest:claimed:{week}"


def _posted_key(week: str) -> str:
    return f"hub:digest:posted:{week}"


def _now() -> datetime:
    """The clock of the schedule (tests move it)."""
    return datetime.now(UTC)


def last_due(settings: Settings, now: datetime) -> datetime:
    """The latest moment at or before `now` the digest was due (DIGEST_DAY/HOUR, DIGEST_TZ)."""
    local = now.astimezone(ZoneInfo(settings.digest_tz))
    day = local.date() - timedelta(days=(local.weekday() - settings.digest_day) % 7)
    for back in (0, 7):
        naive = datetime(day.year, day.month, day.day, settings.digest_hour) - timedelta(days=back)
        due = naive.replace(tzinfo=ZoneInfo(settings.digest_tz))
        if due <= local:
            return due.astimezone(UTC)
    raise AssertionError("a due moment a week back is always in the past")


def reported_week(due: datetime) -> str:
    """The ISO week (UTC) a digest due at `due` reports on: the last one complete by then."""
    return tag_counts.iso_week(tag_counts.week_start(tag_counts.iso_week(due)) - timedelta(days=1))


def tick(connection: Redis, settings: Settings, *, now: datetime | None = None) -> str | None:
    """Queue the digest of the latest due week if no one has (returns that week, else None)."""
    if not settings.digest_channel:
        return None
    due = last_due(settings, now or _now())
    week = reported_week(due)
    if connection.exists(_claim_key(week)):
        return None
    # The job is queued once per week however many workers get here at once (rq's unique
    # job id, kept a day after it ran), and it posts under a per-week mark: the claim,
    # written only once the job is in Redis, just spares the next ticks the enqueue.
    created = enqueue_once(connection, SEND_DIGEST, week, key=week).created
    connection.set(_claim_key(week), due.isoformat(), ex=CLAIM_TTL)
    if not created:
        return None
    logs.event(log, "digest.queued", week=week, due=due.isoformat())
    return week


def maintenance_tick(connection: Redis) -> str | None:
    """`tick` from a worker's maintenance: never stops the worker (a failure is logged)."""
    try:
        return tick(connection, installed_settings())
    except RedisError:
        raise
    except Exception as exc:  # the worker's loop must go on; the next minute tries again
        logs.event(log, "digest.tick_failed", logging.ERROR, error=type(exc).__name__)
        return None


# ---------------------------------------------------------------- what it says


def build(
    redis: Redis, settings: Settings, rules: RuleSet, week: str, *, weeks: int = 12
) -> Digest:
    """The digest of `week` from the counters (reads only)."""
    start = tag_counts.week_start(week)
    names = tag_counts.recent_weeks(weeks, start)
    read = tag_counts.read_weeks(redis, names)
    series: dict[str, list[int]] = {}
    for i, counts in enumerate(read):
        for tag, n in counts.tags.items():
            series.setdefault(tag, [0] * len(names))[i] = n
    this_week = read[-1]
    fresh = new_tags(tag_counts.first_seen(redis), week)
    base = (settings.zendesk_url or "").rstrip("/")

    def line(tag: str, **extra: Any) -> TagLine:
        history = series.get(tag, [0] * len(names))
        return TagLine(tag, history[-1], sparkline(history), **extra)

    def with_examples(tag: str, **extra: Any) -> TagLine:
        shown = tuple(
            ExampleLine(e.ticket, f"{base}/agent/tickets/{e.ticket}", e.subject)
            for e in tag_counts.examples(redis, week, tag, limit=2)
        )
        return line(tag, examples=shown, **extra)

    found = movers(series, exclude=fresh)[:MOVERS]
    taxonomy = [t.tag for t in rules.taxonomy]
    known = [k for t in rules.taxonomy for k in t.keywords] + taxonomy
    suggestions = suggest_terms(tag_counts.untagged_texts(redis, week), known=known, limit=10)
    end = (start + timedelta(weeks=1)).timestamp()
    since = tag_counts.counting_since(redis)
    retire = retire_candidates(
        taxonomy, tag_counts.last_matched(redis), since=since, now=min(end, time.time())
    )
    note = ""
    if not retire and (since is None or since > end - 90 * 24 * 3600):
        began = datetime.fromtimestamp(since, UTC).date().isoformat() if since else "not yet"
        note = (
            f"Tags to retire are listed once the counters are 90 days old (counting since {began})."
        )
    shown_retire = tuple(retire[:RETIRE_SHOWN]) + (
        (f"and {len(retire) - RETIRE_SHOWN} more",) if len(retire) > RETIRE_SHOWN else ()
    )
    return Digest(
        week=week,
        start=start,
        reports=this_week.reports,
        untagged=this_week.untagged,
        weeks=weeks,
        top=tuple(line(tag) for tag, _ in top_tags(this_week.tags, TOP)),
        movers=tuple(with_examples(m.tag, baseline=m.baseline, p_value=m.p_value) for m in found),
        new=tuple(with_examples(tag) for tag in fresh),
        suggestions=tuple((s.phrase, s.reports) for s in suggestions),
        retire=shown_retire,
        retire_note=note,
    )


# ---------------------------------------------------------------- the job


def send_digest(week: str) -> dict[str, Any] | Retry:
    """Job: post the digest of `week` to DIGEST_CHANNEL, once."""
    return run_guarded(_send_digest, week)


def _send_digest(week: str) -> dict[str, Any]:
    ctx = context()
    channel = ctx.settings.digest_channel
    if not channel:
        logs.event(log, "digest.no_channel", logging.WARNING, week=week)
        return {"week": week, "posted": False}
    with once(ctx.redis, _posted_key(week), ttl=CLAIM_TTL) as claim:
        if claim is None:
            return {"week": week, "posted": False}
        text = render(build(ctx.redis, ctx.settings, ctx.rules(), week))
        answer = ctx.slack.post_message(channel, {"text": text})
        claim.done(str(answer.get("ts", "sent")))
    logs.event(log, "digest.posted", week=week, channel=channel)
    return {"week": week, "posted": True}
