"""Outside text shown as itself in Slack: the one escaping function every message uses."""

from __future__ import annotations


def escape_mrkdwn(text: str) -> str:
    """Text shown as itself in mrkdwn and in a message's `text`: &, < and > escaped.

    Slack's "Formatting text for app surfaces": these three are the control characters.
    Unescaped, a reporter's `<!channel>` pings a channel, `<@U123>` a person, and
    `<https://evil.example|Open ticket>` disguises a link. Slash-command text arrives
    escaped and is unescaped for the ticket (slack/reports.py), so it is escaped again
    here, where it enters a message.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
