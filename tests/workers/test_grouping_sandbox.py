"""The Zendesk sandbox solves a problem's incidents as Zendesk does (the reporter loop needs it)."""

from __future__ import annotations

from typing import Any

import pytest
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Ticket

from integrations.sandbox import ZendeskSandbox
from integrations.zendesk.client import zenpy_client


@pytest.fixture
def zenpy(zendesk_sandbox: ZendeskSandbox, env: dict[str, str]) -> Zenpy:
    return zenpy_client(zendesk_sandbox.url, env["ZENDESK_EMAIL"], token=env["ZENDESK_API_TOKEN"])


def new_ticket(**fields: Any) -> Ticket:
    fields.setdefault("subject", "App crashes on save")
    fields.setdefault("comment", Comment(body="The app crashes when I save a draft."))
    return Ticket(**fields)


def test_solving_a_problem_solves_its_open_incidents_with_its_public_reply(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy
) -> None:
    problem = zenpy.tickets.create(new_ticket(type="problem")).ticket
    incidents = [
        zenpy.tickets.create(new_ticket(type="incident", problem_id=problem.id)).ticket
        for _ in range(2)
    ]
    unrelated = zenpy.tickets.create(new_ticket()).ticket
    # Nothing listens: the deliveries still record what Zendesk would have sent.
    zendesk_sandbox.set_webhook_target("http://127.0.0.1:9/zendesk/webhook", "secret")

    deliveries = zendesk_sandbox.agent_solve(problem.id, "Fixed in 5.2.2.")

    for incident in incidents:
        assert zenpy.tickets(id=incident.id).status == "solved"
        bodies = [c.body for c in zenpy.tickets.comments(ticket=incident.id)]
        assert bodies[-1] == "Fixed in 5.2.2."
        sent = [d.type for d in deliveries if d.ticket_id == incident.id]
        assert sent == [
            "zen:event-type:ticket.comment_added",
            "zen:event-type:ticket.status_changed",
        ]
    assert zenpy.tickets(id=unrelated.id).status == "new"


def test_an_api_solve_of_a_problem_solves_its_incidents_too(zenpy: Zenpy) -> None:
    problem = zenpy.tickets.create(new_ticket(type="problem")).ticket
    incident = zenpy.tickets.create(new_ticket(type="incident", problem_id=problem.id)).ticket
    current = zenpy.tickets(id=problem.id)
    current.status = "solved"
    zenpy.tickets.update(current)
    assert zenpy.tickets(id=incident.id).status == "solved"
