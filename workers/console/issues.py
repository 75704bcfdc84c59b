"""The console's Issues page: related-report groups, and the people's corrections to them.

Reads what workers/grouping.py keeps (its docstring lists the keys: `hub:grouping:group:*`
per group, `hub:grouping:ticket:*` per grouped ticket) and the related index's members.
Merge, split and not-related are workers/grouping_actions.py's own jobs, queued the way
the Slack buttons queue them (one job per press key; the action itself is idempotent),
so the web process never talks to Zendesk or Slack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from integrations.queue import enqueue_once
from integrations.queue.jobs import MARK_NOT_RELATED, MERGE_REPORTS, SPLIT_REPORT, JobSpec
from rules.related.index import RelatedIndex

# How many groups the page looks at (newest keys first is not knowable from SCAN: the
# biggest of those seen are shown).
SCAN_GROUPS = 2000
SHOWN = 100

ACTIONS: dict[str, JobSpec] = {
    "merge": MERGE_REPORTS,
    "not-related": MARK_NOT_RELATED,
    "split": SPLIT_REPORT,
}


@dataclass
class Member:
    """A ticket in a group."""

    ticket_id: int
    subject: str
    url: str


@dataclass
class Issue:
    """A related-report group: its subject, tags, members, problem ticket, engineering card."""

    group_id: str
    subject: str
    tags: list[str]
    problem_id: int | None
    problem_url: str | None
    card: str | None
    members: list[Member] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def issues(redis: Redis, *, min_size: int = 2) -> list[Issue]:
    """The groups with at least `min_size` reports, biggest first (at most SHOWN)."""
    index = RelatedIndex(redis)
    keys = []
    for key in redis.scan_iter("hub:grouping:group:*", count=500):
        keys.append(_text(key))
        if len(keys) >= SCAN_GROUPS:
            break
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    found = []
    for key, raw in zip(keys, pipe.execute(), strict=True):
        group_id = key.removeprefix("hub:grouping:group:")
        members = index.group_members(group_id)
        if len(members) < min_size:
            continue
        data = {_text(k): _text(v) for k, v in raw.items()}
        try:
            tags = [str(t) for t in json.loads(data.get("tags") or "[]")]
        except ValueError:
            tags = []
        problem = data.get("problem")
        found.append(
            Issue(
                group_id=group_id,
                subject=data.get("subject", ""),
                tags=tags,
                problem_id=int(problem) if problem and problem.isdigit() else None,
                problem_url=data.get("problem_url") or None,
                card=data.get("issue") or None,
                members=_members(redis, members),
            )
        )
    found.sort(key=lambda i: (-len(i.members), i.group_id))
    return found[:SHOWN]


def _members(redis: Redis, doc_ids: list[str]) -> list[Member]:
    ids = [int(d) for d in doc_ids if d.isdigit()]
    pipe = redis.pipeline(transaction=False)
    for ticket_id in ids:
        pipe.hmget(f"hub:grouping:ticket:{ticket_id}", "subject", "url")
    return [
        Member(ticket_id, _text(subject), _text(url))
        for ticket_id, (subject, url) in zip(ids, pipe.execute(), strict=True)
    ]


def queue_action(
    redis: Redis, action: str, ticket_id: int, other_id: int | None, user_id: str, name: str
) -> bool:
    """Queue a merge / not-related / split as the Slack buttons do; False if already queued."""
    spec = ACTIONS[action]
    enqueued = enqueue_once(
        redis, spec, ticket_id, other_id, user_id, name, key=f"{ticket_id}:{other_id or ''}"
    )
    return enqueued.created


@dataclass
class Related:
    """A report's place among related reports: its group, how it got there, the candidates."""

    group_id: str
    joined: bool
    members: list[Member]
    suggestions: list[dict[str, Any]]


def related_of(redis: Redis, ticket_id: int) -> Related | None:
    """What grouping decided for a filed report's ticket, or None before it ran."""
    raw = redis.hgetall(f"hub:grouping:ticket:{ticket_id}")
    data = {_text(k): _text(v) for k, v in raw.items()}
    if not data.get("group"):
        return None
    try:
        suggestions = [
            s for s in json.loads(data.get("suggestions") or "[]") if isinstance(s, dict)
        ]
    except ValueError:
        suggestions = []
    members = RelatedIndex(redis).group_members(data["group"])
    others = [m for m in members if m != str(ticket_id)]
    return Related(
        group_id=data["group"],
        joined=data.get("joined") == "1",
        members=_members(redis, others),
        suggestions=suggestions,
    )
