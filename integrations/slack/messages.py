"""Every word the hub shows in Slack, and its Block Kit views, in one place.

A receipt is allowed to say a ticket number; nothing here pretends to be a
person answering (the support team's rule).
"""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]

FEEDBACK_COMMAND = "/feedback"
SHORTCUT_CALLBACK_ID = "send_to_support"
MODAL_CALLBACK_ID = "feedback_modal"

# ---------------------------------------------------------------- slash command answers


def _ephemeral(text: str) -> Message:
    # Only the person who typed the command sees it.
    return {"response_type": "ephemeral", "text": text}


def usage(command: str = FEEDBACK_COMMAND) -> Message:
    """How to use the command (unknown commands and `/feedback help`)."""
    return _ephemeral(
        f"*{FEEDBACK_COMMAND}* sends feedback to the support team as a ticket.\n"
        f"\u2022 `{FEEDBACK_COMMAND} the export button does nothing #export` files it at once "
        "(words after `#` become tags)\n"
        f"\u2022 `{FEEDBACK_COMMAND}` on its own opens a form with a category and a severity\n"
        "\u2022 on any message: *More actions* \u2192 *Send to support*"
        + ("" if command == FEEDBACK_COMMAND else f"\n(`{command}` is not a command I know.)")
    )


def receipt() -> Message:
    """The answer to `/feedback <text>` once the report is safely queued."""
    return _ephemeral(
        "Thanks, filing this now\u2026 I will post the ticket number here in a moment."
    )


def could_not_file() -> Message:
    """The answer when the report could not be queued (Redis down, or no answer in time).

    It does not say that nothing was kept: after a timeout the report may have been.
    """
    return _ephemeral(
        ":warning: Sorry, I could not file this: the support inbox is not answering right now. "
        "Please try again in a minute."
    )


def could_not_open_form() -> Message:
    """The answer when views.open failed or timed out."""
    return _ephemeral(
        ":warning: Sorry, I could not open the feedback form. "
        f"Try `{FEEDBACK_COMMAND} your feedback in one message` instead."
    )


# ---------------------------------------------------------------- the feedback modal

SUMMARY_MAX = 150
DETAILS_MAX = 3000

CATEGORIES: dict[str, str] = {
    "bug": "Bug: something is broken",
    "feature_request": "Feature request",
    "question": "Question",
    "billing": "Billing",
    "other": "Other",
}
SEVERITIES: dict[str, str] = {
    "low": "Low: an annoyance",
    "normal": "Normal: slows me down",
    "high": "High: blocks part of my work",
    "urgent": "Urgent: blocks me or many people",
}

SUMMARY_EMPTY = "Please write a short summary."
SUMMARY_TOO_LONG = (
    f"Please keep the summary under {SUMMARY_MAX} characters; put the rest in Details."
)
DETAILS_TOO_LONG = f"Please keep the details under {DETAILS_MAX} characters."
CATEGORY_MISSING = "Please pick a category."
SEVERITY_MISSING = "Please pick a severity."
FORM_NOT_FILED = (
    "Sorry, this could not be filed: the support inbox is not answering right now. "
    "Press Submit again in a minute."
)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _options(choices: dict[str, str]) -> list[dict[str, Any]]:
    return [{"text": _plain(label), "value": value} for value, label in choices.items()]


def feedback_modal(private_metadata: str) -> dict[str, Any]:
    """The form `/feedback` opens: summary, details, category and severity."""
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK_ID,
        "private_metadata": private_metadata,
        "title": _plain("Send feedback"),
        "submit": _plain("Send"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "summary",
                "label": _plain("Summary"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "summary",
                    "max_length": SUMMARY_MAX,
                    "placeholder": _plain("The export button does nothing"),
                },
            },
            {
                "type": "input",
                "block_id": "details",
                "optional": True,
                "label": _plain("Details"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "details",
                    "multiline": True,
                    "max_length": DETAILS_MAX,
                    "placeholder": _plain("What did you do, what happened, what did you expect?"),
                },
            },
            {
                "type": "input",
                "block_id": "category",
                "label": _plain("Category"),
                "element": {
                    "type": "static_select",
                    "action_id": "category",
                    "options": _options(CATEGORIES),
                },
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": _plain("Severity"),
                "element": {
                    "type": "static_select",
                    "action_id": "severity",
                    "options": _options(SEVERITIES),
                    "initial_option": _options(SEVERITIES)[1],
                },
            },
        ],
    }


def modal_receipt() -> dict[str, Any]:
    """What the modal turns into after a valid submit (`response_action: update`)."""
    return {
        "type": "modal",
        "title": _plain("Send feedback"),
        "close": _plain("Done"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Thanks, filing this now\u2026 I will send you the ticket number "
                    "in Slack in a moment.",
                },
            }
        ],
    }


def not_filed_notice() -> dict[str, Any]:
    """A small modal for the shortcut when the report could not be queued (it has no reply body)."""
    return {
        "type": "modal",
        "title": _plain("Send to support"),
        "close": _plain("OK"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": could_not_file()["text"]}}
        ],
    }


def modal_errors(errors: dict[str, str]) -> dict[str, Any]:
    """Inline errors next to the modal's inputs, by block id."""
    return {"response_action": "errors", "errors": errors}


def modal_metadata(
    *, channel_id: str, channel_name: str, team_domain: str, response_url: str
) -> str:
    """Where the modal was opened from, kept in the view so the receipt can find the person."""
    # Slack caps private_metadata at 3,000 characters; these four fields are far below.
    return json.dumps(
        {"c": channel_id, "cn": channel_name, "d": team_domain, "r": response_url},
        separators=(",", ":"),
    )


def read_modal_metadata(text: str) -> dict[str, str]:
    """The fields `modal_metadata` stored: channel_id, channel_name, team_domain, response_url."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    keys = {"c": "channel_id", "cn": "channel_name", "d": "team_domain", "r": "response_url"}
    return {name: str(data.get(short) or "") for short, name in keys.items()}


# ---------------------------------------------------------------- the shortcut


def shortcut_receipt() -> Message:
    """Told (through the response_url, from a worker) after "Send to support" was queued."""
    return {
        **_ephemeral(
            "Thanks, sending this message to support now\u2026 "
            "I will post the ticket number here in a moment."
        ),
        "replace_original": False,
    }


def shortcut_already_sent() -> Message:
    """Told when the same person sends the same message to support again."""
    return {
        **_ephemeral(
            "You already sent this message to support; it is one ticket, "
            "and its number comes (or came) here."
        ),
        "replace_original": False,
    }


# ---------------------------------------------------------------- follow-ups from workers


def ticket_filed(ticket_id: int, url: str) -> Message:
    """The follow-up once the ticket exists: its number, linked."""
    text = f"Ticket #{ticket_id} filed: {url}"
    return {
        **_ephemeral(text),
        "replace_original": False,
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":white_check_mark: <{url}|Ticket #{ticket_id}> filed. "
                    "The support team will answer you there.",
                },
            }
        ],
    }


def report_delayed() -> Message:
    """Told when filing failed for good for now: the report is kept and an operator is on it."""
    return {
        **_ephemeral(
            ":hourglass: Your feedback is taking longer than usual to reach the support inbox. "
            "It is saved, and the team has been alerted; you will not need to send it again."
        ),
        "replace_original": False,
    }


# ---------------------------------------------------------------- the ticket's Slack facts

LABEL_WORKSPACE = "Workspace"
LABEL_CHANNEL = "Channel"
LABEL_REPORTER = "Reporter"
LABEL_AUTHOR = "Message author"
LABEL_FILES = "Files"
LABEL_PERMALINK = "Permalink"
LABEL_CATEGORY = "Category"
LABEL_SEVERITY = "Severity"

_PRIVATE_CHANNELS = {"directmessage": "a direct message", "privategroup": "a private channel"}


def channel_label(channel_name: str, channel_id: str) -> str:
    """How a channel reads in a ticket: "#general (C123)", or "a direct message (D123)"."""
    name = _PRIVATE_CHANNELS.get(channel_name)
    if name is None:
        name = f"#{channel_name}" if channel_name else "a channel"
    return f"{name} ({channel_id})" if channel_id else name


def person_label(user_name: str, user_id: str) -> str:
    """How a Slack user reads in a ticket: "@steve (U123)"."""
    if user_name and user_id:
        return f"@{user_name} ({user_id})"
    return f"@{user_name}" if user_name else user_id


def files_label(names: list[str]) -> str:
    """The attached files' names, for the ticket."""
    return ", ".join(names)


def shortcut_subject(first_line: str, file_count: int) -> str:
    """The subject of a shortcut's ticket when the message has no text."""
    if first_line:
        return first_line
    return f"Slack message with {file_count} file{'s' if file_count != 1 else ''}"


def ops_alert_skipped() -> str:
    """Why an operator alert was only logged."""
    return "SLACK_OPS_CHANNEL is not set; the alert is only in the logs"


# ---------------------------------------------------------------- the ticket emoji

LABEL_FILED_BY = "Filed by"
LABEL_ORGANIZATION = "Organization"


def thread_filed(ticket_id: int, url: str) -> Message:
    """The one visible reply in a thread filed with the ticket emoji."""
    return {
        "text": f"Ticket #{ticket_id} filed: {url}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":ticket: <{url}|Ticket #{ticket_id}> filed. Replies in this "
                    "thread are added to it, and the support team answers here.",
                },
            }
        ],
    }


def invite_me(channel_id: str) -> Message:
    """To the person who reacted, when the bot cannot read the message."""
    return {
        "text": f"I cannot read messages in <#{channel_id}>, so nothing was filed. "
        "Invite me to this channel (`/invite @feedback-hub`) and react again."
    }


def reaction_subject(first_line: str, author: str) -> str:
    """The subject of a thread's ticket when the reacted-to message has no text."""
    return first_line or f"Slack thread started by {author}"


def thread_more(count: int, permalink: str | None) -> str:
    """Said under a transcript that was cut."""
    where = f": {permalink}" if permalink else ""
    return f"({count} more message{'s' if count != 1 else ''} in Slack{where})"


def thread_incomplete(permalink: str | None) -> str:
    """Said when Slack's rate limit stopped the reading part way."""
    where = f" ({permalink})" if permalink else ""
    return (
        f"(Slack limited reading this thread{where}; the rest is added as a comment "
        "when Slack allows.)"
    )


def thread_rest(count: int) -> str:
    """The heading of the comment that completes a transcript."""
    return f"The rest of the Slack thread ({count} message{'s' if count != 1 else ''}):"


def message_deleted(reactor: str) -> str:
    """The description when the reacted-to message was deleted before it was read."""
    return (
        f"{reactor} reacted with the ticket emoji to a Slack message that was deleted before "
        "feedback-hub could read it: no text could be kept. Ask the requester what it said."
    )


def files_not_attached(items: list[tuple[str, str]]) -> str:
    """Files of the thread that are linked rather than attached, each with why."""
    lines = [f"- {name}: {why}" for name, why in items]
    return "Files not attached:\n" + "\n".join(lines)


def thread_note(author: str, text: str) -> str:
    """An internal note for a reply by someone other than the requester in a filed thread."""
    return f"{author} in the Slack thread:\n{text}"
