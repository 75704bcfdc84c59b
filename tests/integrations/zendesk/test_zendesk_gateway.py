"""The Zendesk gateway against the sandbox, through the real zenpy client."""

from __future__ import annotations

from redis import Redis
from zenpy.lib.api_objects import Comment, Ticket

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
