"""Engineering-channel jobs: show an issue in its channels, and the "Acknowledge" button.

The message itself (post once, edit in place, thread replies) is
integrations/slack/engineering.py; these jobs run it with the worker's clients.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from integrations import logs
from integrations.slack.cards import Card, acknowledged_note
from integrations.slack.engineering import ACKNOWLEDGED_TAG, EngineeringChannels
from workers.context import context
from workers.retry import run_guarded
from workers.ticket_events import mark_own_comment

log = logging.getLogger(__name__)


def notify_engineering(card: dict[str, Any], channels: list[str], ticket_id: int) -> Any:
    """Job: show the issue in each channel (post once, then edit), counting `ticket_id`."""
    return run_guarded(_notify_engineering, card, channels, ticket_id)


def _notify_engineering(card_data: dict[str, Any], channels: list[str], ticket_id: int) -> int:
    ctx = context()
    eng = EngineeringChannels(ctx.slack, ctx.redis)
    card = Card.from_json(card_data)
    count = eng.add_reporter(card.issue_id, ticket_id)
    known = eng.card(card.issue_id)
    if known is not None:
        # What was learnt since (acknowledgement, assignee) is kept.
        card = replace(card, acknowledged_by=known.acknowledged_by or card.acknowledged_by)
        card = replace(card, assignee=card.assignee or known.assignee)
    card = replace(card, reporters=max(count, card.reporters))
    for channel in dict.fromkeys(channels):
        eng.notify(channel, card)
    # Channels notified earlier for this issue show the new count too.
    eng.refresh(card)
    return len(channels)


def acknowledge(issue_id: int, user_id: str, user_name: str) -> Any:
    """Job: note and tag the ticket, and show who acknowledged on the issue's messages."""
    return run_guarded(_acknowledge, issue_id, user_id, user_name)


def _acknowledge(issue_id: int, user_id: str, user_name: str) -> str:
    ctx = context()
    eng = EngineeringChannels(ctx.slack, ctx.redis)
    name = user_name or user_id
    ticket = ctx.zendesk.get_ticket(issue_id)
    # A retried job finds the tag already there and does not add a second note.
    if ACKNOWLEDGED_TAG not in ticket.tags:
        note = acknowledged_note(name)
        mark_own_comment(ctx.redis, issue_id, note)
        ctx.zendesk.add_note(issue_id, note, add_tags=(ACKNOWLEDGED_TAG,))
    card = eng.card(issue_id)
    if card is not None:
        eng.refresh(replace(card, acknowledged_by=f"<@{user_id}>"))
    eng.thread(issue_id, f":eyes: {acknowledged_note(f'<@{user_id}>')}", once_key=f"ack:{issue_id}")
    logs.event(log, "eng.acknowledged", issue=issue_id, user=user_id)
    return name
