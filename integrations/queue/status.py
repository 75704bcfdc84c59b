"""Where a report stands (queued, filed, delayed, failed), for the status API and receipts."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis import Redis

from integrations.queue.wire import Commands, CommandTemplate, Slot

State = Literal["queued", "filed", "delayed", "failed"]

# Status answers are for the app's "Ticket #123" screen; a month covers any offline queue.
STATUS_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class ReportStatus:
    """One report's state, as the mobile status endpoint and operators see it."""

    id: str
    state: State
    updated_at: float
    ticket_id: int | None = None
    ticket_url: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {k: v for k, v in asdict(self).items() if v is not None}


# SET <key> <status> NX EX <ttl>: encoded once, the key and the status filled in per report.
_SET_QUEUED = CommandTemplate("SET", Slot("key"), Slot("status"), "NX", "EX", STATUS_TTL)


def stored_json(status: ReportStatus) -> str:
    """A status as Redis keeps it (JSON)."""
    # Its fields are flat values: vars() is asdict() without the deep copy (on every intake).
    return json.dumps(vars(status))


# An address in a reason (`http://zendesk.internal:8080/api/v2/tickets.json`): for operators,
# who see it in logs and alerts, never for the apps that read a report's status.
_ADDRESS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s;,)]+", re.IGNORECASE)


def shown_reason(reason: str) -> str:
    """A reason as a report's status shows it: what happened, with no internal address."""
    return _ADDRESS.sub("Zendesk", reason)


class StatusStore:
    """Report states in Redis, keyed by the report's digest (Report.key_digest)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _key(self, report_id: str) -> str:
        return f"hub:report:{report_id}:status"

    def set(self, report_id: str, state: State, **details: Any) -> ReportStatus:
        """Record a state; `filed` is final and is never overwritten by a later attempt."""
        if isinstance(details.get("reason"), str):
            details["reason"] = shown_reason(details["reason"])
        status = ReportStatus(id=report_id, state=state, updated_at=time.time(), **details)
        data = stored_json(status)
        if state == "filed":
            self.redis.set(self._key(report_id), data, ex=STATUS_TTL)
        else:
            # Only move forward: a retry's "delayed" must not hide "filed".
            current = self.get(report_id)
            if current is not None and current.state == "filed":
                return current
            self.redis.set(self._key(report_id), data, ex=STATUS_TTL)
        return status

    def mark_queued(self, report_id: str, commands: Commands) -> None:
        """Record "queued" for a report just enqueued, with the caller's commands.

        SET NX: any state already recorded (a retry's "delayed", a final "filed")
        is newer than a fresh enqueue and stays; one write, no read before it.
        """
        # What stored_json(ReportStatus(id, "queued", now)) writes, without building the object
        # and a dict to encode (every intake request; tests/integrations/queue/test_status.py
        # compares them).
        stored = (
            f'{{"id": {json.dumps(report_id)}, "state": "queued", "updated_at": {time.time()!r}, '
            '"ticket_id": null, "ticket_url": null, "reason": null}'
        )
        commands.add_encoded(_SET_QUEUED.fill({"key": self._key(report_id), "status": stored}))

    def get(self, report_id: str) -> ReportStatus | None:
        """The report's state, or None when unknown (or expired)."""
        raw = self.redis.get(self._key(report_id))
        return ReportStatus(**json.loads(raw)) if raw else None
