"""Ticket text: the wording of what the hub writes into Zendesk, in one place."""

from __future__ import annotations

from integrations.report import Report

# Zendesk's subject is a single line; long ones are cut on a word boundary.
SUBJECT_LIMIT = 150


def subject(report: Report) -> str:
    """The ticket subject: the report's subject on one line, shortened on a word boundary."""
    return shorten(" ".join(report.subject.split()) or "Feedback", SUBJECT_LIMIT)


def ticket_body(report: Report, *, missing_attachments: list[str] | None = None) -> str:
    """The first comment: the reporter's words, then the facts an agent needs."""
    parts = [report.description.strip() or report.subject.strip()]
    if report.context:
        width = max(len(label) for label in report.context)
        facts = "\n".join(
            f"{label.ljust(width)} : {value}" for label, value in report.context.items()
        )
        parts.append(f"---\n{facts}")
    if missing_attachments:
        names = ", ".join(missing_attachments)
        parts.append(f"(Attachments that expired before they could be uploaded: {names})")
    parts.append(f"Filed by feedback-hub from {SOURCES.get(report.source, report.source)}.")
    return "\n\n".join(parts)


SOURCES = {
    "slack_command": "Slack /feedback",
    "slack_modal": "the Slack feedback form",
    "slack_shortcut": "the Slack \u201cSend to support\u201d shortcut",
    "slack_reaction": "a Slack thread, filed with the ticket emoji",
    "mobile": "the mobile app",
}


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters on a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "\u2026"


# A problem ticket lists this many of its reports; the rest are its incidents.
MEMBERS_LISTED = 50


def problem_body(members: list[tuple[int, str]], total: int) -> str:
    """The problem ticket's first comment: the reports it stands for."""
    lines = [f"feedback-hub grouped {total} related reports into this problem:", ""]
    lines += [f"- #{tid} {subject}" for tid, subject in members[:MEMBERS_LISTED]]
    if total > len(members[:MEMBERS_LISTED]):
        lines.append(f"- and {total - MEMBERS_LISTED} more (see the incidents)")
    lines += [
        "",
        "They are linked as incidents. Solving this problem solves them, and each "
        "reporter gets the problem's public reply.",
    ]
    return "\n".join(lines)
