"""Structured logs: one event name plus ids, as one JSON object a line, never a secret."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

_REDACTED = "[redacted]"


class Redactor:
    """Replaces every configured secret value in text with [redacted]."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, event and the fields given."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure(secrets: Iterable[str] = (), level: str = "INFO") -> None:
    """Send the hub's logs (and the libraries') to stderr as JSON lines, secrets scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_feedback_hub", False):
            root.removeHandler(old)
    handler._feedback_hub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def event(
    logger: logging.Logger, event_name: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one named event with its ids, e.g. event(log, "zendesk.ticket.created", ticket=1)."""
    logger.log(level, event_name, extra={"fields": fields})
