"""The wording of what a mobile report puts into its ticket, in one place."""

from __future__ import annotations

from integrations.zendesk.messages import shorten

# Subjects made from a description's first line stay short enough to scan in a view.
SUBJECT_CHARS = 100
# The top of a crash stack the ticket shows; the signature uses more.
STACK_LINES = 15
STACK_LINE_CHARS = 300
LOGS_FILENAME = "logs.txt"


def subject(title: str | None, description: str) -> str:
    """The title, or the description's first non-blank line, on one line and shortened."""
    if title and title.strip():
        return shorten(" ".join(title.split()), SUBJECT_CHARS)
    first = next((line for line in description.splitlines() if line.strip()), description)
    return shorten(" ".join(first.split()), SUBJECT_CHARS)


def steps(text: str) -> str:
    """The reporter's steps to reproduce."""
    return f"Steps to reproduce:\n{text.strip()}"


def crash(kind: str | None, message: str | None, stack: str | None) -> str:
    """The crash: type and message, then the top of the stack."""
    head = ": ".join(part.strip() for part in (kind, message) if part and part.strip())
    lines = [f"Crash: {head or 'details below'}"]
    if stack and stack.strip():
        frames = [line.rstrip()[:STACK_LINE_CHARS] for line in stack.strip().splitlines()]
        lines += frames[:STACK_LINES]
        if len(frames) > STACK_LINES:
            lines.append(f"\u2026 ({len(frames) - STACK_LINES} more lines)")
    return "\n".join(lines)


def logs(excerpt: str, *, attached: bool) -> str:
    """The end of the logs, saying where the rest is when they were cut."""
    if attached:
        return f"Logs (the last lines; the full log is attached as {LOGS_FILENAME}):\n{excerpt}"
    return f"Logs:\n{excerpt}"


def other_fields(fields: dict[str, str]) -> str:
    """Fields a newer app sent that the hub does not know yet, kept as they came."""
    lines = [f"- {path}: {value}" for path, value in fields.items()]
    return "Other fields (sent by the app, not known to the hub yet):\n" + "\n".join(lines)


def version(app_version: str | None, build: str | None) -> str | None:
    """'5.2.1 (build 742)', '5.2.1', 'build 742' or None."""
    if app_version and build:
        return f"{app_version} (build {build})"
    if app_version:
        return app_version
    return f"build {build}" if build else None


def reporter(name: str | None, email: str | None, user_id: str | None) -> str | None:
    """'Ana Lima <ana@example.com>', 'Ana Lima (user 42)', 'user 42' or None."""
    who = name or ""
    if email:
        who = f"{who} <{email}>" if who else email
    elif user_id:
        who = f"{who} (user {user_id})" if who else f"user {user_id}"
    return who or None


PLATFORM_NAMES = {"ios": "iOS", "android": "Android", "macos": "macOS", "web": "Web"}
