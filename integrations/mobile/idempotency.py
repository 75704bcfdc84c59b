"""Idempotency keys and report ownership, in Redis.

Mobile apps retry from offline queues. `Idempotency-Key` (per app) names one
report: a retry with the same key and the same content gets the same report;
the same key with other content is refused. Content is compared by a
fingerprint of the validated report and each file's name, type and SHA-256,
not the raw bytes: a multipart retry has a new boundary.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from redis import Redis

from integrations.mobile.payloads import BugReport
from integrations.queue.status import STATUS_TTL

# Kept as long as the report's status: a key is answered the same for as long
# as the app can still ask about the report.
RECORD_TTL = STATUS_TTL
# Visible ASCII, as HTTP header values are; UUIDs and ULIDs fit easily.
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Record:
    """What an idempotency key was first used for."""

    report_id: str
    fingerprint: str


def fingerprint(body: BugReport, files: list[str]) -> str:
    """A digest of the report's content and its files' fingerprints, in order."""
    h = hashlib.sha256()
    h.update(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode())
    for item in files:
        h.update(b"\x00")
        h.update(item.encode())
    return h.hexdigest()


class Idempotency:
    """Idempotency records per (app, key) and the app that owns each report id."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _record_key(self, app_id: str, key: str) -> str:
        digest = hashlib.sha256(f"{app_id}\x00{key}".encode()).hexdigest()[:32]
        return f"hub:mobile:idempotency:{digest}"

    def _owner_key(self, report_id: str) -> str:
        return f"hub:mobile:report:{report_id}:app"

    def get(self, app_id: str, key: str) -> Record | None:
        """The record of a key this app used before, or None."""
        raw = self.redis.get(self._record_key(app_id, key))
        if raw is None:
            return None
        data = json.loads(raw)
        return Record(report_id=data["report_id"], fingerprint=data["fingerprint"])

    def remember(self, app_id: str, key: str | None, record: Record) -> None:
        """Record the report's owner and, unless `key` is None, what the key was used for.

        The key's record is written only if it is new: when two requests with
        the same key race, the first one's content is what later ones are
        compared with.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._owner_key(record.report_id), app_id, ex=RECORD_TTL)
        if key is not None:
            data = json.dumps({"report_id": record.report_id, "fingerprint": record.fingerprint})
            pipe.set(self._record_key(app_id, key), data, ex=RECORD_TTL, nx=True)
        pipe.execute()

    def owner(self, report_id: str) -> str | None:
        """The app that filed this report, or None when unknown."""
        raw = self.redis.get(self._owner_key(report_id))
        return raw.decode() if isinstance(raw, bytes) else None
