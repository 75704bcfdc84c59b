"""`feedback-hub tags report|suggest` and `feedback-hub digest`: tag trends for people."""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click
from redis import Redis

from integrations.queue import connect, tag_counts
from integrations.settings import WEEKDAYS, ConfigError, Settings
from integrations.slack.digest import render
from rules.model import RuleSet
from rules.store import store_for
from rules.trends import movers, new_tags, retire_candidates, sparkline, suggest_terms
from workers import digest as weekly
from workers.cli import hub_redis_url


def _settings() -> Settings:
    settings = Settings.from_env("cli")
    return replace(settings, redis_url=hub_redis_url(settings))


def _redis(settings: Settings) -> Redis:
    assert settings.redis_url
    return connect(settings.redis_url)


def _rules(settings: Settings) -> RuleSet:
    return store_for(settings.rules_path).current()


@click.group("tags")
def tags() -> None:
    """Tag trends: counts per ISO week (UTC), movers, new tags, taxonomy candidates."""


@tags.command("report")
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(2, 53))
@click.option("--tag", help="Only this tag.")
@click.option("--group", help='Only reports routed to this group ("" for none).')
@click.option("--source", help="Only reports from this source (slack_command, mobile, ...).")
@click.option("--csv", "as_csv", is_flag=True, help="tag,week,... rows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def report_cmd(
    weeks: int,
    tag: str | None,
    group: str | None,
    source: str | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Reports per tag per ISO week, this week last; then the movers and the new tags."""
    if as_csv and as_json:
        raise click.UsageError("give --csv or --json, not both")
    redis = _redis(_settings())
    names = tag_counts.recent_weeks(weeks)
    counts = tag_counts.weekly_counts(redis, weeks=weeks, tag=tag, group=group, source=source)
    totals = tag_counts.weekly_totals(redis, weeks=weeks, group=group, source=source)
    fresh = [t for t in new_tags(tag_counts.first_seen(redis), names[-1]) if t in counts]
    found = movers(counts, exclude=fresh)
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(["tag", *names])
        for name, series in counts.items():
            out.writerow([name, *series])
        return
    if as_json:
        data: dict[str, Any] = {
            "weeks": names,
            "filters": {"tag": tag, "group": group, "source": source},
            "reports": totals["reports"],
            "untagged": totals["untagged"],
            "tags": counts,
            "movers": [
                {"tag": m.tag, "count": m.count, "baseline": m.baseline, "p_value": m.p_value}
                for m in found
            ],
            "new": fresh,
        }
        click.echo(json.dumps(data, indent=2))
        return
    width = max([len(t) for t in counts] + [10])
    click.echo(f"{'tag':<{width}}  " + " ".join(w[-3:].rjust(4) for w in names) + "  trend")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][-1], -sum(kv[1]), kv[0]))
    for name, series in ranked:
        row = " ".join(str(n).rjust(4) for n in series)
        click.echo(f"{name:<{width}}  {row}  {sparkline(series)}")
    click.echo(f"{'(reports)':<{width}}  " + " ".join(str(n).rjust(4) for n in totals["reports"]))
    click.echo(f"{'(untagged)':<{width}}  " + " ".join(str(n).rjust(4) for n in totals["untagged"]))
    click.echo("")
    click.echo(
        "movers (this week vs the mean of up to 8 weeks before; Poisson tail p < 0.01):"
        if found
        else "movers: none this week"
    )
    for m in found:
        click.echo(f"  {m.tag}: {m.count} (usually {m.baseline:.1f}), p={m.p_value:.2g}")
    click.echo(f"new tags: {', '.join(fresh) if fresh else 'none this week'}")


@tags.command("suggest")
@click.option("--week", help="ISO week, e.g. 2026-W49 (default: this week, UTC).")
@click.option("--limit", default=15, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def suggest_cmd(week: str | None, limit: int, as_json: bool) -> None:
    """Candidates for new tags (words common in untagged reports) and tags to retire."""
    settings = _settings()
    redis = _redis(settings)
    week = _week(week)
    rules = _rules(settings)
    taxonomy = [t.tag for t in rules.taxonomy]
    known = [k for t in rules.taxonomy for k in t.keywords] + taxonomy
    texts = tag_counts.untagged_texts(redis, week)
    found = suggest_terms(texts, known=known, limit=limit)
    since = tag_counts.counting_since(redis)
    retire = retire_candidates(
        taxonomy, tag_counts.last_matched(redis), since=since, now=time.time()
    )
    if as_json:
        data = {
            "week": week,
            "untagged_reports": len(texts),
            "suggestions": [
                {"phrase": s.phrase, "reports": s.reports, "example": s.example} for s in found
            ],
            "retire": retire,
            "counting_since": since,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{len(texts)} untagged report(s) in {week}; common words and phrases:")
    for s in found:
        click.echo(f"  {s.phrase!r}: {s.reports} reports, e.g. {s.example!r}")
    if not found:
        click.echo("  nothing stands out")
    if retire:
        click.echo(f"taxonomy tags that matched no report in 90 days: {', '.join(retire)}")
    elif since is None or since > time.time() - 90 * 24 * 3600:
        click.echo("tags to retire are listed once the counters are 90 days old")
    else:
        click.echo("every taxonomy tag matched a report in the last 90 days")


def _week(week: str | None) -> str:
    if week is None:
        return tag_counts.iso_week()
    try:
        tag_counts.week_start(week)
    except ValueError:
        raise click.BadParameter(f"{week!r} is not an ISO week like 2026-W49") from None
    return week


@click.command("digest")
@click.option("--now", "send_now", is_flag=True, help="Build it now instead of on schedule.")
@click.option("--dry-run", is_flag=True, help="Print it; post nothing.")
@click.option("--week", help="ISO week to report on (default: the last complete one).")
def digest_cmd(send_now: bool, dry_run: bool, week: str | None) -> None:
    """The weekly tag digest: when it is due, or (--now) build it and post or print it."""
    settings = _settings()
    due = weekly.last_due(settings, datetime.now(UTC))
    week = _week(week) if week else weekly.reported_week(due)
    if not send_now:
        day = WEEKDAYS[settings.digest_day].capitalize()
        click.echo(
            f"the digest goes to {settings.digest_channel or '(DIGEST_CHANNEL is not set)'} "
            f"on {day}s at {settings.digest_hour:02d}:00 {settings.digest_tz}; the last one "
            f"was due {due:%Y-%m-%d %H:%M} UTC for {week}. --now --dry-run prints it."
        )
        return
    redis = _redis(settings)
    if dry_run:
        click.echo(render(weekly.build(redis, settings, _rules(settings), week)))
        return
    if not settings.digest_channel:
        raise ConfigError("DIGEST_CHANNEL", "is not set: expected the digest's Slack channel")
    result = weekly.send_digest(week)
    if isinstance(result, dict) and result.get("posted"):
        click.echo(f"posted the digest of {week} to {settings.digest_channel}")
    else:
        click.echo(f"the digest of {week} was posted already; nothing sent")
