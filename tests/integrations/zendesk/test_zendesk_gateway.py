"""The Zendesk gateway against the sandbox, through the real zenpy client."""

from __future__ import annotations

import pytest
from redis import Redis
from zenpy.lib.api_objects import Comment, Ticket

from integrations.errors import Permanent, Retryable
from integrations.sandbox import ZendeskSandbox
from integrations.settings import Settings
from integrations.zendesk.gateway import ZendeskGateway


def test_an_upload_keeps_its_file_name_whatever_characters_it_has(
    worker_env: dict[str, str], redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    # zenpy puts the name in the query string as it is: `&token=` once smuggled a second
    # parameter into Zendesk's upload call, and `#`, `%` were mangled.
    gateway = ZendeskGateway.from_settings(Settings.from_env("worker", worker_env), redis)
    names = ["shot.png&token=ATTACKER", "crash #2.log", "100% broken.txt", "écran.png"]
    tokens = [gateway.upload(name, "application/octet-stream", b"data") for name in names]
    ticket = gateway.client.tickets.create(gateway_ticket(tokens)).ticket
    [comment] = list(gateway.client.tickets.comments(ticket=ticket.id))
    assert [a.file_name for a in comment.attachments] == names


def gateway_ticket(tokens: list[str]) -> Ticket:
    return Ticket(subject="uploads", comment=Comment(body="files", uploads=tokens))


SEARCH_BY_NAME = "GET /api/v2/organizations/search.json"


def test_an_organization_named_otherwise_in_case_is_adopted_by_its_name(
    worker_env: dict[str, str], redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    existing = zendesk_sandbox.add_organization("ACME Corp", external_id=None)
    zendesk_sandbox.add_organization("Acme Corporation", external_id="crm:1")
    gateway = ZendeskGateway.from_settings(Settings.from_env("worker", worker_env), redis)
    assert gateway.organization_id("Acme Corp") == existing["id"]
    assert gateway.organization_id("Acme Corp") == existing["id"]  # cached
    assert existing["external_id"] is None and len(zendesk_sandbox.organizations) == 2
    assert zendesk_sandbox.stats()["by_route"][SEARCH_BY_NAME] == {"200": 1}


def test_an_organization_name_refused_for_another_reason_is_permanent(
    worker_env: dict[str, str], redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    gateway = ZendeskGateway.from_settings(Settings.from_env("worker", worker_env), redis)
    with pytest.raises(Permanent) as refused:
        gateway.organization_id("")  # 422 RecordInvalid on `name` too, but BlankValue
    assert refused.value.status == 422 and "BlankValue" in (refused.value.body or "")
    assert SEARCH_BY_NAME not in zendesk_sandbox.stats()["by_route"]


def test_a_rate_limited_search_by_name_is_retried_later_like_every_call(
    worker_env: dict[str, str], redis: Redis, zendesk_sandbox: ZendeskSandbox
) -> None:
    zendesk_sandbox.add_organization("Acme Corp", external_id="crm:4411")
    # One request a minute: the create's 422 uses it, the search waits for the next minute.
    zendesk_sandbox.set_faults(rate_limit=1)
    gateway = ZendeskGateway.from_settings(Settings.from_env("worker", worker_env), redis)
    with pytest.raises(Retryable) as limited:
        gateway.organization_id("Acme Corp")
    assert limited.value.retry_after is not None and limited.value.retry_after > 0
    assert not redis.keys("hub:zendesk:organization:*")
