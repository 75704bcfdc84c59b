"""A ticket create that may have reached Zendesk never makes a second ticket.

A POST that timed out, or got a 5xx, may have created the ticket. Ticket creates
carry the report's key as Zendesk's Idempotency-Key, so they are resent within
the call (Zendesk answers a repeat with the first answer); when those tries run
out the job's retry looks the ticket up by external_id first. Other creates
(uploads, users) are not resent blindly.
"""

from __future__ import annotations

import time

import pytest
from redis import Redis

from integrations.errors import Retryable
from integrations.queue.ratelimit import RateLimiter
from integrations.sandbox import ZendeskSandbox
from integrations.zendesk.client import GuardedSession, zenpy_client
from integrations.zendesk.gateway import TicketDraft, ZendeskGateway

# As tests/conftest.py env: the sandbox fixture accepts these.
EMAIL = "agent@example.com"
TOKEN = "zendesk-test-token-0000"


def gateway(sandbox: ZendeskSandbox, redis: Redis, timeout: float) -> ZendeskGateway:
    session = GuardedSession(RateLimiter(redis, "zendesk"), backoff=0.05)
    client = zenpy_client(sandbox.url, EMAIL, token=TOKEN, session=session, timeout=timeout)
    return ZendeskGateway(client, redis, sandbox.url)


def settle(sandbox: ZendeskSandbox, quiet: float) -> None:
    """Wait until the sandbox has answered nothing new for `quiet` seconds (at most 10 s).

    Requests whose client gave up are still being served: a resend would show up here.
    """
    deadline = time.monotonic() + 10
    last, since = sandbox.stats()["requests"], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = sandbox.stats()["requests"]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the sandbox kept receiving requests")


DRAFT = TicketDraft(
    external_id="feedback-hub-slowcreate",
    subject="Export fails",
    body="The export button does nothing.",
    requester={"name": "Ada", "email": "ada@example.com"},
)


def test_a_create_that_timed_out_is_resent_with_its_key_and_made_once(
    redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    sandbox = zendesk_sandbox
    # Zendesk takes longer than the client waits: each try creates, or would.
    sandbox.set_faults(delay=0.6)
    with pytest.raises(Retryable):
        gateway(sandbox, redis, timeout=0.2).create_ticket(DRAFT)
    sandbox.set_faults(delay=0.0)
    settle(sandbox, quiet=1.5)
    # Three tries reached Zendesk; its idempotency made them one ticket.
    assert sandbox.stats()["by_route"]["POST /api/v2/tickets.json"] == {"201": 3}
    assert len(sandbox.find_tickets(external_id=DRAFT.external_id)) == 1

    # The job's retry finds the ticket the timed-out request created.
    ticket, created = gateway(sandbox, redis, timeout=5).create_ticket(DRAFT)

    found = sandbox.find_tickets(external_id=DRAFT.external_id)
    assert [t["id"] for t in found] == [ticket.id]
    assert created is False


def test_a_create_held_past_the_timeout_lands_once(
    redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    # A proxy holds the first create past the client's timeout; it reaches Zendesk
    # after the resend did. Before the Idempotency-Key, the job's retry looked the
    # ticket up too early, found nothing, created it, and the held create made a second.
    sandbox = zendesk_sandbox
    sandbox.set_faults(hold_next_create=1.5)
    ticket = None
    for _attempt in range(3):  # the job and its retries, as the worker runs them
        try:
            ticket, _created = gateway(sandbox, redis, timeout=0.3).create_ticket(DRAFT)
            break
        except Retryable:
            continue
    settle(sandbox, quiet=2.0)

    assert ticket is not None
    assert [t["id"] for t in sandbox.find_tickets(external_id=DRAFT.external_id)] == [ticket.id]


def test_a_create_answered_5xx_goes_back_to_the_job(
    redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    sandbox = zendesk_sandbox
    sandbox.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(Retryable):
        gateway(sandbox, redis, timeout=5).create_ticket(DRAFT)
    # Resent within the call with its Idempotency-Key, then handed to the job.
    assert sandbox.stats()["by_route"]["POST /api/v2/tickets.json"] == {"502": 3}

    sandbox.set_faults(error_rate=0.0)
    ticket, created = gateway(sandbox, redis, timeout=5).create_ticket(DRAFT)
    assert created is True
    assert [t["id"] for t in sandbox.find_tickets(external_id=DRAFT.external_id)] == [ticket.id]


def test_reads_are_still_retried_within_the_call(
    redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    sandbox = zendesk_sandbox
    sandbox.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(Retryable):
        gateway(sandbox, redis, timeout=5).find_by_external_id("feedback-hub-x")
    assert sandbox.stats()["by_route"]["GET /api/v2/tickets.json"] == {"500": 3}
