"""Parsed Slack payloads turned into Reports: subject, description, tags, context, reply context."""

from __future__ import annotations

import html
import re

from integrations.report import ReplyContext, Report, Reporter, ReportFields, digest
from integrations.slack import messages
from integrations.slack.payloads import MessageShortcut, SlashCommand, ViewSubmission
from integrations.zendesk.messages import shorten

# The subject of a one-message report: its first line, cut on a word boundary.
SUBJECT_LIMIT = 80
BASE_TAGS = ("slack", "feedback")

# Slack's message formatting: <@U123|name>, <#C123|general>, <!here>, <https://x|label>.
_LINK = re.compile(r"<([^<>]+)>")
# A #hashtag: a letter first (so "#123" issue numbers are not tags), not inside a word or an
# HTML entity (Slack escapes & < > as &amp; &lt; &gt;).
_HASHTAG = re.compile(r"(?<![\w&#/])#([A-Za-z][\w-]{0,39})")


def plain_text(slack_text: str) -> str:
    """Slack's formatted text as a person reads it: mentions and links spelled out, unescaped."""

    def spell(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return f"@{label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"
        return f"{label} ({target})" if label and label != target else target

    return html.unescape(_LINK.sub(spell, slack_text))


def hashtags(slack_text: str) -> list[str]:
    """Every #hashtag a person typed, lowercased, as Zendesk tags (not channel mentions)."""
    # Channel mentions and links arrive inside <...>; they are not hashtags.
    outside = _LINK.sub(" ", slack_text)
    return [tag.lower() for tag in _HASHTAG.findall(outside)]


def subject_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """The first non-empty line, on one line, shortened on a word boundary."""
    for line in text.splitlines():
        if line.strip():
            return shorten(" ".join(line.split()), limit)
    return ""


def _tags(*groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    # Order kept, duplicates dropped: "slack, feedback, then what the person wrote".
    return tuple(dict.fromkeys(tag for group in groups for tag in group))


def command_report(command: SlashCommand) -> Report:
    """`/feedback <text>` as a report."""
    text = plain_text(command.text).strip()
    # Slack sends a trigger_id per invocation; a retried delivery of the same
    # request carries the same one, so it maps to the same key (and ticket).
    invocation = command.trigger_id or command.response_url or digest(command.text)
    key = f"slack:command:{command.team_id}:{command.user_id}:{command.channel_id}:{invocation}"
    return Report(
        source="slack_command",
        idempotency_key=key,
        reporter=_reporter(command.team_id, command.user_id, command.user_name),
        subject=subject_line(text) or "Feedback",
        description=text,
        tags=_tags(BASE_TAGS, hashtags(command.text)),
        context=_context(
            command.team_domain,
            command.channel_name,
            command.channel_id,
            command.user_name,
            command.user_id,
        ),
        reply=ReplyContext(
            team_id=command.team_id,
            channel_id=command.channel_id,
            user_id=command.user_id,
            response_url=command.response_url or None,
        ),
    )


def form_errors(submission: ViewSubmission) -> dict[str, str]:
    """The feedback form's problems, by block id (empty when it can be filed)."""
    errors = {}
    summary = (submission.value("summary", "summary") or "").strip()
    if not summary:
        errors["summary"] = messages.SUMMARY_EMPTY
    elif len(summary) > messages.SUMMARY_MAX:
        errors["summary"] = messages.SUMMARY_TOO_LONG
    if len(submission.value("details", "details") or "") > messages.DETAILS_MAX:
        errors["details"] = messages.DETAILS_TOO_LONG
    if submission.value("category", "category") not in messages.CATEGORIES:
        errors["category"] = messages.CATEGORY_MISSING
    if submission.value("severity", "severity") not in messages.SEVERITIES:
        errors["severity"] = messages.SEVERITY_MISSING
    return errors


def modal_report(submission: ViewSubmission) -> Report:
    """A valid feedback form as a report (check `form_errors` first)."""
    summary = " ".join((submission.value("summary", "summary") or "").split())
    details = (submission.value("details", "details") or "").strip()
    category = submission.value("category", "category") or "other"
    severity = submission.value("severity", "severity") or "normal"
    origin = messages.read_modal_metadata(submission.private_metadata)
    context = _context(
        submission.team_domain or origin["team_domain"],
        origin["channel_name"],
        origin["channel_id"],
        submission.user_name,
        submission.user_id,
    )
    context[messages.LABEL_CATEGORY] = messages.CATEGORIES[category].split(":")[0]
    context[messages.LABEL_SEVERITY] = messages.SEVERITIES[severity].split(":")[0]
    return Report(
        source="slack_modal",
        # One opened form is one report, however often Submit is pressed.
        idempotency_key=f"slack:modal:{submission.team_id}:{submission.user_id}:{submission.view_id}",
        reporter=_reporter(submission.team_id, submission.user_id, submission.user_name),
        subject=summary,
        description=f"{summary}\n\n{details}" if details else summary,
        tags=_tags(
            BASE_TAGS,
            [f"category_{category}", f"severity_{severity}"],
            hashtags(summary),
            hashtags(details),
        ),
        fields=ReportFields(category=category, severity=severity),
        context=context,
        reply=ReplyContext(
            team_id=submission.team_id,
            channel_id=origin["channel_id"] or None,
            user_id=submission.user_id,
            response_url=origin["response_url"] or None,
        ),
    )


def shortcut_report(shortcut: MessageShortcut) -> Report:
    """A message sent to support with the shortcut, requested by the person who used it."""
    message = shortcut.message
    text = plain_text(message.text).strip()
    files = [f.label for f in message.files]
    description = text
    if files:
        description = f"{text}\n\nAttached files: {messages.files_label(files)}".strip()
    context = _context(
        shortcut.team_domain,
        shortcut.channel_name,
        shortcut.channel_id,
        shortcut.user_name,
        shortcut.user_id,
    )
    author = message.user or message.bot_id or ""
    if author or message.username:
        context[messages.LABEL_AUTHOR] = messages.person_label(message.username or "", author)
    if files:
        context[messages.LABEL_FILES] = messages.files_label(files)
    return Report(
        source="slack_shortcut",
        # The same person sending the same message again is the same report.
        idempotency_key=(
            f"slack:shortcut:{shortcut.team_id}:{shortcut.user_id}:"
            f"{shortcut.channel_id}:{message.ts}"
        ),
        reporter=_reporter(shortcut.team_id, shortcut.user_id, shortcut.user_name),
        subject=messages.shortcut_subject(subject_line(text), len(files)),
        description=description or messages.shortcut_subject("", len(files)),
        tags=_tags(BASE_TAGS, hashtags(message.text)),
        context=context,
        # The permalink needs chat.getPermalink: a worker adds it (jobs.with_permalink).
        reply=ReplyContext(
            team_id=shortcut.team_id,
            channel_id=shortcut.channel_id,
            user_id=shortcut.user_id,
            thread_ts=message.thread_ts or message.ts,
            message_ts=message.ts,
            response_url=shortcut.response_url or None,
        ),
    )


def _reporter(team_id: str, user_id: str, user_name: str) -> Reporter:
    # No email here: Slack does not send it; the worker asks users.info.
    return Reporter(name=user_name or None, slack_team_id=team_id, slack_user_id=user_id)


def _context(
    team_domain: str, channel_name: str, channel_id: str, user_name: str, user_id: str
) -> dict[str, str]:
    context = {}
    if team_domain:
        context[messages.LABEL_WORKSPACE] = team_domain
    if channel_id or channel_name:
        context[messages.LABEL_CHANNEL] = messages.channel_label(channel_name, channel_id)
    context[messages.LABEL_REPORTER] = messages.person_label(user_name, user_id)
    return context
