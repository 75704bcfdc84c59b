"""The report status the intake records in its one write ("queued", SET NX)."""

from __future__ import annotations

import json
import time
from dataclasses import fields

from redis import Redis

from integrations.queue import wire
from integrations.queue.status import STATUS_TTL, ReportStatus, StatusStore, stored_json
from integrations.queue.wire import Commands


def _mark_queued(redis: Redis, report_id: str) -> None:
    commands = Commands()
    StatusStore(redis).mark_queued(report_id, commands)
    wire.round_trip(redis, commands)


def test_queued_is_stored_as_every_status_is(redis: Redis) -> None:
    _mark_queued(redis, "r1")
    status = StatusStore(redis).get("r1")
    assert status is not None
    assert (status.id, status.state, status.ticket_id) == ("r1", "queued", None)
    assert abs(status.updated_at - time.time()) < 5
    raw = redis.get("hub:report:r1:status")
    assert isinstance(raw, bytes)
    # Byte for byte what StatusStore.set("queued") would have stored at that moment.
    same = ReportStatus(id="r1", state="queued", updated_at=json.loads(raw)["updated_at"])
    assert raw.decode() == stored_json(same)
    assert list(json.loads(raw)) == [f.name for f in fields(ReportStatus)]
    assert STATUS_TTL - 5 < redis.ttl("hub:report:r1:status") <= STATUS_TTL


def test_queued_never_hides_a_state_already_recorded(redis: Redis) -> None:
    StatusStore(redis).set("r2", "filed", ticket_id=42, ticket_url="https://x/42")
    _mark_queued(redis, "r2")
    status = StatusStore(redis).get("r2")
    assert status is not None and (status.state, status.ticket_id) == ("filed", 42)


def test_an_id_that_needs_escaping_is_still_json(redis: Redis) -> None:
    _mark_queued(redis, 'odd"id\\')
    status = StatusStore(redis).get('odd"id\\')
    assert status is not None and status.id == 'odd"id\\'
