"""A validated bug report (plus its stored files) becomes the hub's `Report`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from integrations.mobile import messages, payloads
from integrations.mobile.crash import signature
from integrations.mobile.payloads import BugReport
from integrations.report import AttachmentRef, Report, Reporter, ReportFields
from integrations.zendesk.messages import shorten

# Zendesk tags: lowercase words of letters, digits and underscores.
_TAG_JUNK = re.compile(r"[^a-z0-9_]+")
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")
# Control characters other than tab and newline break ticket text (and Zendesk's JSON).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
CONTEXT_VALUE_CHARS = 200
TAG_CHARS = 80


def tag(text: str) -> str:
    """A Zendesk-safe tag: lowercase, [a-z0-9_], no leading/trailing underscores."""
    return _TAG_JUNK.sub("_", text.lower()).strip("_")[:TAG_CHARS]


def platform(os_name: str | None) -> str | None:
    """The platform an OS name belongs to: ios, android, macos, or the OS name as a tag."""
    if not os_name or not tag(os_name):
        return None
    name = os_name.lower().replace(" ", "")
    if "ios" in name or "ipados" in name or "iphone" in name:
        return "ios"
    if "android" in name:
        return "android"
    if "macos" in name or "osx" in name:
        return "macos"
    return tag(os_name)


def version_tag(app_version: str | None) -> str | None:
    """`app_5_2` for 5.2.1: major and minor, the granularity releases are triaged at."""
    match = _VERSION.search(app_version or "")
    if not match:
        return None
    return "app_" + "_".join(part for part in match.groups() if part)


def text(value: str) -> str:
    """User text without control characters (tabs and newlines kept)."""
    return _CONTROL.sub("", value)


def line(value: str) -> str:
    """A one-line context value, shortened."""
    flat = " ".join(text(value).split())
    return shorten(flat, CONTEXT_VALUE_CHARS)


def logs_excerpt(logs: str, chars: int) -> tuple[str, bool]:
    """The end of the logs (cut at a line start) and whether anything was cut."""
    logs = text(logs).strip("\n")
    if len(logs) <= chars:
        return logs, False
    tail = logs[-chars:]
    if "\n" in tail:
        tail = tail.split("\n", 1)[1]
    return tail, True


def to_report(
    body: BugReport,
    *,
    app_id: str,
    idempotency_key: str,
    attachments: Iterable[AttachmentRef] = (),
    log_excerpt_chars: int = 4000,
) -> Report:
    """The Report for this request: subject, readable description, context block, tags, fields."""
    app = body.app or payloads.App()
    device = body.device or payloads.Device()
    who = body.reporter or payloads.Reporter()
    plat = platform(device.os)
    crash_sig = (
        signature(body.crash.type, body.crash.stack, body.crash.message) if body.crash else None
    )

    parts = [text(body.description).strip()]
    if body.steps_to_reproduce and body.steps_to_reproduce.strip():
        parts.append(messages.steps(text(body.steps_to_reproduce)))
    if body.crash and (body.crash.type or body.crash.message or body.crash.stack):
        crash = body.crash
        parts.append(
            messages.crash(
                crash.type and line(crash.type),
                crash.message and text(crash.message),
                crash.stack and text(crash.stack),
            )
        )
    if body.logs and body.logs.strip():
        excerpt, cut = logs_excerpt(body.logs, log_excerpt_chars)
        parts.append(messages.logs(excerpt, attached=cut))

    if other := payloads.other_fields(body):
        parts.append(messages.other_fields({line(k): text(v) for k, v in other.items()}))
    device_name = None
    if device.manufacturer or device.model:
        device_name = " ".join(p for p in (device.manufacturer, device.model) if p)
    os_name = None
    if device.os or device.os_version:
        os_name = " ".join(p for p in (device.os, device.os_version) if p)
    app_name = app_id if not app.id else f"{app_id} ({app.id})"

    context: dict[str, str | None] = {
        "App": app_name,
        "Version": messages.version(app.version, app.build),
        "Platform": messages.PLATFORM_NAMES.get(plat, plat) if plat else None,
        "OS": os_name,
        "Device": device_name,
        "Locale": device.locale,
        "Time zone": device.timezone,
        "Reporter": messages.reporter(who.name, who.email, who.id),
        "Category": body.category,
        "Severity": body.severity,
        "Crash signature": crash_sig.digest if crash_sig else None,
    }
    custom = {key: _custom_text(value) for key, value in body.custom.items()}
    for key, value in custom.items():
        # The app's own keys become labels too, after the hub's (which they never replace).
        if label := line(key):
            context.setdefault(label, value)

    tags = [
        "mobile",
        "bug_report",
        f"platform_{plat}" if plat else "",
        version_tag(app.version) or "",
        f"category_{tag(body.category)}" if body.category and tag(body.category) else "",
        f"severity_{body.severity}" if body.severity else "",
        "crash" if body.crash else "",
        f"crash_{crash_sig.digest[:10]}" if crash_sig else "",
        *(tag(t) for t in body.tags),
    ]

    reporter = Reporter(
        name=who.name and line(who.name),
        email=who.email,
        external_id=f"mobile:{app_id}:{who.id}" if who.id and not who.email else None,
    )

    return Report(
        source="mobile",
        idempotency_key=idempotency_key,
        reporter=reporter,
        subject=messages.subject(body.title and text(body.title), text(body.description)),
        description="\n\n".join(parts),
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        fields=ReportFields(
            platform=plat,
            app_id=app_id,
            app_version=app.version,
            build=app.build,
            os=device.os,
            os_version=device.os_version,
            device=device_name,
            locale=device.locale,
            category=body.category,
            severity=body.severity,
        ),
        custom=custom,
        context={label: line(value) for label, value in context.items() if value},
        attachments=tuple(attachments),
        crash_signature=crash_sig.digest if crash_sig else None,
    )


def _custom_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return text(str(value))
