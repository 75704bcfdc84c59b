"""What engineers read in Slack: an issue's card (Block Kit) and the notes in its thread.

All the wording of engineering messages is here; posting them once and editing them in
place is integrations/slack/engineering.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from integrations.report import Report
from integrations.slack.mrkdwn import escape_mrkdwn
from integrations.zendesk.gateway import Ticket

ACKNOWLEDGE_ACTION = "eng_acknowledge"
OPEN_ACTION = "eng_open_zendesk"
# A suggested related issue's buttons (value "<issue>:<candidate ticket>"), and the
# button that splits a merged report out again (value "<ticket>").
SAME_ISSUE_ACTION = "eng_same_issue"
NOT_RELATED_ACTION = "eng_not_related"
SPLIT_ACTION = "eng_split"
# The card shows at most this many suggestions.
SUGGESTIONS_SHOWN = 3

STATUS_EMOJI = {
    "new": ":new:",
    "open": ":large_orange_circle:",
    "pending": ":hourglass_flowing_sand:",
    "hold": ":double_vertical_bar:",
    "solved": ":white_check_mark:",
    "closed": ":lock:",
}


@dataclass(frozen=True)
class Suggestion:
    """An earlier issue that may be the same as the card's: people decide with two buttons."""

    ticket_id: int
    subject: str
    url: str
    # One line of why (shared words, same crash, platform, version).
    evidence: str


@dataclass(frozen=True)
class Card:
    """What an issue's engineering message shows."""

    issue_id: int
    subject: str
    url: str
    status: str = "new"
    priority: str | None = None
    tags: tuple[str, ...] = ()
    platform: str | None = None
    app_version: str | None = None
    assignee: str | None = None
    reporters: int = 1
    acknowledged_by: str | None = None
    # Why the message exists (the rule that asked for it), shown small.
    reason: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()
    # Set when people merged this issue into another: the card then says only that.
    merged_into: int | None = None
    merged_url: str | None = None
    merged_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe data for Redis and jobs."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Card:
        """Rebuild from to_json() data."""
        suggestions = tuple(Suggestion(**s) for s in data.get("suggestions") or ())
        return cls(**{**data, "tags": tuple(data.get("tags") or ()), "suggestions": suggestions})

    @classmethod
    def for_report(
        cls,
        report: Report,
        ticket: Ticket,
        *,
        priority: str | None = None,
        reason: str | None = None,
    ) -> Card:
        """The card of a report just filed as `ticket` (for the intake Decision's channels)."""
        return cls(
            issue_id=ticket.problem_id or ticket.id,
            subject=ticket.subject or report.subject,
            url=ticket.url,
            status=ticket.status,
            priority=priority or ticket.priority,
            tags=ticket.tags or report.tags,
            platform=report.fields.platform,
            app_version=report.fields.app_version,
            reason=reason,
        )


# ---------------------------------------------------------------- wording


def _field(label: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _suggestion_blocks(card: Card) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for s in card.suggestions[:SUGGESTIONS_SHOWN]:
        subject = escape_mrkdwn(s.subject or "(no subject)")
        line = f":mag: Possibly the same as <{s.url}|#{s.ticket_id}>: {subject}"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{line}\n_{escape_mrkdwn(s.evidence)}_"},
            }
        )
        value = f"{card.issue_id}:{s.ticket_id}"
        blocks.append(
            {
                "type": "actions",
                "block_id": f"suggest:{card.issue_id}:{s.ticket_id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": SAME_ISSUE_ACTION,
                        "text": {"type": "plain_text", "text": "Same issue"},
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": NOT_RELATED_ACTION,
                        "text": {"type": "plain_text", "text": "Not related"},
                        "value": value,
                    },
                ],
            }
        )
    return blocks


def merged_message(card: Card) -> dict[str, Any]:
    """What a merged issue's message becomes: where it went, who merged it, a way back."""
    title = escape_mrkdwn(f"#{card.issue_id} {card.subject or '(no subject)'}")
    into = f"<{card.merged_url}|#{card.merged_into}>" if card.merged_url else f"#{card.merged_into}"
    # A Slack mention the hub built (Actor.mention), not text from outside.
    by = f" by {card.merged_by}" if card.merged_by else ""
    text = f":twisted_rightwards_arrows: {title} was merged into {into}{by}."
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"merged:{card.issue_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": SPLIT_ACTION,
                    "text": {"type": "plain_text", "text": "Split out again"},
                    "value": str(card.issue_id),
                },
                {
                    "type": "button",
                    "action_id": OPEN_ACTION,
                    "text": {"type": "plain_text", "text": "Open in Zendesk"},
                    "url": card.url,
                },
            ],
        },
    ]
    return {"text": f"#{card.issue_id} merged into #{card.merged_into}", "blocks": blocks}


def card_message(card: Card) -> dict[str, Any]:
    """The Block Kit message for an issue (text is the notification fallback)."""
    if card.merged_into is not None:
        return merged_message(card)
    status = card.status or "new"
    # Everything from a reporter or an agent is escaped once, here (mrkdwn.py).
    title = escape_mrkdwn(f"#{card.issue_id} {card.subject or '(no subject)'}")
    version = escape_mrkdwn(" ".join(v for v in (card.platform, card.app_version) if v) or "-")
    fields = [
        _field("Status", f"{STATUS_EMOJI.get(status, '')} {status}".strip()),
        _field("Priority", card.priority or "-"),
        _field("Platform / version", version),
        _field("Reporters", str(card.reporters)),
        _field("Assignee", escape_mrkdwn(card.assignee or "unassigned")),
        _field("Tags", ", ".join(f"`{escape_mrkdwn(t)}`" for t in card.tags[:15]) or "-"),
    ]
    link = f"*<{card.url}|{title}>*"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": link}},
        {"type": "section", "fields": fields},
    ]
    notes = []
    if card.acknowledged_by:
        notes.append(f":eyes: Acknowledged by {card.acknowledged_by}")
    if card.reason:
        notes.append(card.reason)
    if notes:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(notes)}]}
        )
    buttons: list[dict[str, Any]] = []
    if not card.acknowledged_by:
        buttons.append(
            {
                "type": "button",
                "action_id": ACKNOWLEDGE_ACTION,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "style": "primary",
                "value": str(card.issue_id),
            }
        )
    buttons.append(
        {
            "type": "button",
            "action_id": OPEN_ACTION,
            "text": {"type": "plain_text", "text": "Open in Zendesk"},
            "url": card.url,
        }
    )
    blocks.append({"type": "actions", "block_id": f"eng:{card.issue_id}", "elements": buttons})
    blocks.extend(_suggestion_blocks(card))
    text = f"[{status}] {title} ({card.priority or 'no priority'}, {card.reporters} reporter"
    text += "s)" if card.reporters != 1 else ")"
    return {"text": text, "blocks": blocks}


def change_note(what: str, before: Any, after: Any, by: str | None = None) -> str:
    """A thread reply saying what changed on the ticket (the values escaped)."""
    who = f" by {escape_mrkdwn(by)}" if by else ""
    if before in (None, "", ()):
        return f"{what.capitalize()} set to *{escape_mrkdwn(str(after))}*{who}."
    if after in (None, "", ()):
        return f"{what.capitalize()} cleared (was {escape_mrkdwn(str(before))}){who}."
    shown = escape_mrkdwn(str(before)), escape_mrkdwn(str(after))
    return f"{what.capitalize()}: {shown[0]} \u2192 *{shown[1]}*{who}."


def reply_note(author: str | None) -> str:
    """A thread reply when an agent answers the reporter publicly (no text: it may be private)."""
    return f":speech_balloon: {escape_mrkdwn(author or 'An agent')} replied to the reporter."


def acknowledged_note(name: str) -> str:
    """The thread reply and internal note when someone acknowledges."""
    return f"Acknowledged by {name} in Slack (engineering)."


def joined_note(subject: str, ticket_id: int, url: str) -> str:
    """The thread reply when another report joins a group."""
    subject = escape_mrkdwn(subject)
    return f":heavy_plus_sign: Another report: {subject} \u2014 ticket <{url}|#{ticket_id}>"


def joined_blocks(text: str, ticket_id: int) -> list[dict[str, Any]]:
    """The joined note with a way out: people can split a report the hub joined."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"joined:{ticket_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": SPLIT_ACTION,
                    "text": {"type": "plain_text", "text": "Not the same issue: split out"},
                    "value": str(ticket_id),
                }
            ],
        },
    ]


def problem_opened_note(problem_id: int, url: str, incidents: int) -> str:
    """The thread reply when the group gets its problem ticket."""
    return (
        f":link: Problem ticket <{url}|#{problem_id}> opened; "
        f"{incidents} reports linked to it as incidents."
    )


def problem_solved_note(problem_id: int) -> str:
    """The thread reply when the group's problem is solved."""
    return (
        f":white_check_mark: Problem #{problem_id} solved: its incidents are solved "
        "and their reporters told."
    )


def merged_note(subject: str, ticket_id: int, url: str, by: str) -> str:
    """The thread reply on the remaining issue when people merge another into it."""
    return (
        f":twisted_rightwards_arrows: {escape_mrkdwn(subject)} \u2014 ticket <{url}|#{ticket_id}> "
        f"merged into this issue by {by}."
    )


def merged_away_note(into: int, url: str, by: str) -> str:
    """The thread reply on the merged issue's own message."""
    return f":twisted_rightwards_arrows: Merged into <{url}|#{into}> by {by}."


def not_related_note(candidate: int, by: str) -> str:
    """The thread reply when people say a suggestion is not the same issue."""
    return f":heavy_multiplication_x: Not related to #{candidate}, said {by}; not suggested again."


def split_note(ticket_id: int, by: str) -> str:
    """The thread reply on the group's message when people split a report out of it."""
    return f":scissors: Ticket #{ticket_id} split out of this issue by {by}."


def split_away_note(group_issue: int, by: str) -> str:
    """The thread reply on the split report's own message."""
    return f":scissors: Split out of #{group_issue} by {by}: its own issue again."


def zendesk_merge_note(into: int, by: str) -> str:
    """The internal note on a merged ticket (agents only; the reporter sees nothing)."""
    return f"Grouped with #{into} as the same issue by {by} in Slack (engineering)."


def zendesk_not_related_note(candidate: int, by: str) -> str:
    """The internal note when people say a suggested ticket is not the same issue."""
    return f"Marked not related to #{candidate} by {by} in Slack (engineering)."


def zendesk_split_note(group_issue: int, by: str) -> str:
    """The internal note on a ticket split out of a group."""
    return f"Split out of #{group_issue} (no longer the same issue) by {by} in Slack (engineering)."
