"""What support reads about the one-hour promise: the nudge list and the breach message.

All the wording of first-reply timers is here; when they are posted and edited is
workers/timers.py. Subjects, groups and agent names come from outside and are escaped.
These go to support's own channels only, never to the person who reported.
"""

from __future__ import annotations

import math
from typing import Any

from integrations.queue.timers import Timer
from integrations.slack.mrkdwn import escape_mrkdwn

SUBJECT_CHARS = 120
# Slack caps a section's text at 3,000 characters: ten lines a section, at most three.
LINES_PER_SECTION = 10
MAX_LINES = 30


def _subject(timer: Timer) -> str:
    subject = " ".join((timer.subject or "(no subject)").split())
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1].rstrip() + "…"
    return escape_mrkdwn(subject)


def _link(timer: Timer) -> str:
    return f"<{timer.url}|#{timer.ticket_id}>"


def minutes_left(timer: Timer, now: float) -> int:
    """Whole minutes until the breach, rounded up (0 when due)."""
    return max(0, math.ceil((timer.breach_at - now) / 60))


def nudge_line(timer: Timer, now: float) -> str:
    """One report close to its target: link, subject, group, minutes left."""
    left = minutes_left(timer, now)
    group = escape_mrkdwn(timer.group or "no group")
    return f"• {_link(timer)} {_subject(timer)} · {group} · *{left} min left*"


def nudge_message(timers: list[Timer], now: float) -> dict[str, Any]:
    """The channel's one nudge message: every report close to its target, soonest first."""
    if not timers:
        # Not "nothing is waiting": a report past its target has left this list, unanswered.
        text = (
            ":white_check_mark: No report is close to its first-reply target now: each was "
            "answered or has passed it (`feedback-hub watch` lists those still waiting)."
        )
        return {"text": text, "blocks": [_section(text)]}
    count = len(timers)
    head = (
        f":hourglass_flowing_sand: *{count} report{'s' if count != 1 else ''} close to "
        "the first-reply target*, no reply yet"
    )
    ordered = sorted(timers, key=lambda t: t.breach_at)
    lines = [nudge_line(t, now) for t in ordered[:MAX_LINES]]
    if count > MAX_LINES:
        lines.append(f"…and {count - MAX_LINES} more (`feedback-hub watch` lists them all)")
    sections = [
        _section("\n".join(lines[i : i + LINES_PER_SECTION]))
        for i in range(0, len(lines), LINES_PER_SECTION)
    ]
    numbers = ", ".join(f"#{t.ticket_id}" for t in ordered[:MAX_LINES])
    return {
        "text": f"{count} report{'s' if count != 1 else ''} close to the first-reply target: "
        f"{numbers}",
        "blocks": [_section(head), *sections],
    }


def breach_message(timer: Timer) -> dict[str, Any]:
    """The breach channel's message for one report; says who answered once someone did."""
    target = escape_mrkdwn(timer.target)
    group = escape_mrkdwn(timer.group or "no group")
    head = f"{_link(timer)} {_subject(timer)} · {group}"
    if timer.state == "answered" and timer.stopped_at is not None:
        counted = timer.stopped_at - timer.accepted if timer.counted is None else timer.counted
        minutes = max(0, round(counted / 60))
        who = escape_mrkdwn(timer.answered_by or "an agent")
        within = " of business hours" if timer.business and timer.counted is not None else ""
        status = (
            f":white_check_mark: Answered after {minutes} min{within} by {who} (target: {target})"
        )
    elif timer.state == "solved":
        status = f":white_check_mark: Solved without a public reply (target: {target})"
    elif timer.state == "expired":
        status = (
            f":hourglass: No public reply two weeks after the target ({target}): "
            "the hub no longer watches this report"
        )
    else:
        status = f":rotating_light: No first reply within the target: {target}"
    return {"text": f"{status}: #{timer.ticket_id}", "blocks": [_section(status), _section(head)]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}
