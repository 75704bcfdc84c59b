"""Tag trends in the jobs: a filed report is counted, an agent's tag change moves the counts.

The counters and their read API are in integrations/queue/tag_counts.py.
"""

from __future__ import annotations

from redis import Redis

from integrations.queue import tag_counts
from integrations.report import Report
from integrations.zendesk.gateway import Ticket
from rules.decision import Decision


def taxonomy_tags(decision: Decision) -> set[str]:
    """The tags the taxonomy's keywords or patterns gave (none: the report is 'untagged')."""
    return {c.tag for c in decision.tag_changes if c.cause.by == "taxonomy" and c.change == "added"}


def count_filed(redis: Redis, report: Report, ticket: Ticket, decision: Decision) -> bool:
    """Count a filed report under its tags, group and source (once per ticket)."""
    return tag_counts.count_report(
        redis,
        ticket_id=ticket.id,
        received_at=report.received_at,
        tags=decision.tags,
        taxonomy_tags=taxonomy_tags(decision),
        group=decision.group,
        source=report.source,
        subject=report.subject,
        text=report.text,
    )


def tags_changed(redis: Redis, ticket_id: int, removed: list[str], added: list[str]) -> bool:
    """An agent's tag change (the tags_changed webhook) moves the ticket's counts."""
    return tag_counts.move_tags(redis, ticket_id, removed=removed or [], added=added or [])
