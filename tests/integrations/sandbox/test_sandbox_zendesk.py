"""The Zendesk sandbox, driven by the real zenpy client (raw HTTP where zenpy hides a detail)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Group, Organization, Ticket, User
from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, TooManyValuesException

from integrations.sandbox import ZendeskSandbox
from integrations.zendesk.client import zenpy_client


@pytest.fixture
def zenpy(zendesk_sandbox: ZendeskSandbox, env: dict[str, str]) -> Zenpy:
    return zenpy_client(zendesk_sandbox.url, env["ZENDESK_EMAIL"], token=env["ZENDESK_API_TOKEN"])


@pytest.fixture
def auth(env: dict[str, str]) -> tuple[str, str]:
    return (f"{env['ZENDESK_EMAIL']}/token", env["ZENDESK_API_TOKEN"])


def new_ticket(**fields: Any) -> Ticket:
    fields.setdefault("subject", "Export button does nothing")
    fields.setdefault("comment", Comment(body="Clicking Export on the reports page does nothing."))
    return Ticket(**fields)


# ---------------------------------------------------------------- tickets


def test_zenpy_creates_finds_by_external_id_and_updates_a_ticket(zenpy: Zenpy) -> None:
    audit = zenpy.tickets.create(
        new_ticket(
            external_id="slack-T1-abc",
            requester=User(name="Ada Reporter", email="ada@example.com"),
            tags=["Bug", "export"],
            priority="high",
            type="incident",
        )
    )
    created = audit.ticket
    assert created.id == 1
    assert created.status == "new"
    assert created.tags == ["bug", "export"]
    assert created.requester.email == "ada@example.com"
    assert audit.audit.events[0]["type"] == "Comment"

    found = list(zenpy.tickets(external_id="slack-T1-abc"))
    assert [t.id for t in found] == [created.id]
    assert list(zenpy.tickets(external_id="nothing-like-it")) == []

    ticket = zenpy.tickets(id=created.id)
    ticket.status = "pending"
    ticket.tags = [*ticket.tags, "billing"]
    ticket.custom_fields = [{"id": 360001, "value": "ios"}]
    ticket.comment = Comment(body="Looking into it", public=False)
    updated = zenpy.tickets.update(ticket).ticket
    assert updated.status == "pending"
    assert updated.tags == ["bug", "export", "billing"]
    assert updated.custom_fields == [{"id": 360001, "value": "ios"}]
    bodies = [(c.body, c.public) for c in zenpy.tickets.comments(ticket=created.id)]
    assert bodies == [
        ("Clicking Export on the reports page does nothing.", True),
        ("Looking into it", False),
    ]


def test_an_incident_is_listed_under_its_problem(zenpy: Zenpy) -> None:
    problem = zenpy.tickets.create(new_ticket(type="problem")).ticket
    incident = zenpy.tickets.create(new_ticket(type="incident")).ticket
    incident.problem_id = problem.id
    zenpy.tickets.update(incident)
    assert [t.id for t in zenpy.tickets.incidents(problem.id)] == [incident.id]
    assert zenpy.tickets(id=problem.id).has_incidents is True


def test_an_upload_attaches_to_a_comment_and_its_bytes_are_served(zenpy: Zenpy) -> None:
    upload = zenpy.attachments.upload(
        io.BytesIO(b"crash at line 3\n"), target_name="crash.log", content_type="text/plain"
    )
    assert upload.token
    ticket = zenpy.tickets.create(
        new_ticket(comment=Comment(body="Log attached", uploads=[upload.token]))
    ).ticket
    [comment] = list(zenpy.tickets.comments(ticket=ticket.id))
    [attachment] = comment.attachments
    assert attachment.file_name == "crash.log"
    assert attachment.size == len(b"crash at line 3\n")
    served = requests.get(attachment.content_url, timeout=5)
    assert served.content == b"crash at line 3\n"
    assert served.headers["Content-Type"].startswith("text/plain")


def test_create_many_returns_a_job_status_with_each_tickets_id(zenpy: Zenpy) -> None:
    job = zenpy.tickets.create([new_ticket(subject=f"report {i}") for i in range(3)])
    assert job.status == "queued"
    done = zenpy.job_status(id=job.id)
    assert done.status == "completed"
    assert [(r.index, r.id) for r in done.results] == [(0, 1), (1, 2), (2, 3)]
    assert zenpy.tickets(id=3).subject == "report 2"


def test_create_many_refuses_more_than_100(zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy) -> None:
    with pytest.raises(TooManyValuesException):
        zenpy.tickets.create([new_ticket() for _ in range(101)])
    assert zendesk_sandbox.find_tickets() == []


# ---------------------------------------------------------------- errors


def test_a_ticket_without_a_description_is_a_422_record_invalid(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    response = requests.post(
        f"{zendesk_sandbox.url}/api/v2/tickets.json",
        json={"ticket": {"subject": "no body"}},
        auth=auth,
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {
            "description": [{"description": "Description: cannot be blank", "error": "BlankValue"}]
        },
    }


def test_zenpy_sees_a_bad_priority_as_a_422(zenpy: Zenpy) -> None:
    with pytest.raises(APIException) as raised:
        zenpy.tickets.create(new_ticket(priority="whenever"))
    assert raised.value.response.status_code == 422
    assert raised.value.response.json()["details"]["priority"][0]["description"] == (
        "Priority: whenever is not valid"
    )


def test_bad_credentials_are_a_401(zendesk_sandbox: ZendeskSandbox, env: dict[str, str]) -> None:
    client = zenpy_client(zendesk_sandbox.url, env["ZENDESK_EMAIL"], token="wrong")
    with pytest.raises(APIException) as raised:
        client.users.me()
    assert raised.value.response.status_code == 401
    assert raised.value.response.json() == {"error": "Couldn't authenticate you"}


def test_an_oauth_token_is_accepted_as_bearer() -> None:
    with ZendeskSandbox(email="agent@example.com", token=None, oauth_token="oauth-1") as sandbox:
        client = zenpy_client(sandbox.url, "agent@example.com", oauth_token="oauth-1")
        assert client.users.me().email == "agent@example.com"


def test_unknown_ticket_is_record_not_found(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    response = requests.get(f"{zendesk_sandbox.url}/api/v2/tickets/99.json", auth=auth, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == "RecordNotFound"


# ---------------------------------------------------------------- rate limit and faults


def test_every_answer_carries_rate_limit_headers_and_past_the_limit_a_429(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy, auth: tuple[str, str]
) -> None:
    zendesk_sandbox.set_faults(rate_limit=3)
    url = f"{zendesk_sandbox.url}/api/v2/users/me.json"
    remaining = [
        requests.get(url, auth=auth, timeout=5).headers["X-Rate-Limit-Remaining"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]

    limited = requests.get(url, auth=auth, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit"] == "3"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"] == "APIRateLimitExceeded"

    # zenpy sleeps out a Retry-After; with a budget it gives up instead.
    zenpy.users.ratelimit_budget = 1
    with pytest.raises(RatelimitBudgetExceeded):
        zenpy.users.me()

    assert zendesk_sandbox.stats()["by_status"]["429"] == 2


def test_the_limit_can_be_lifted_over_the_control_endpoint(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy
) -> None:
    requests.post(f"{zendesk_sandbox.url}/__sandbox/faults", json={"rate_limit": 1}, timeout=5)
    zenpy.users.me()
    zenpy.users.ratelimit_budget = 1
    with pytest.raises(RatelimitBudgetExceeded):
        zenpy.users.me()
    requests.post(f"{zendesk_sandbox.url}/__sandbox/faults", json={"rate_limit": None}, timeout=5)
    assert zenpy.users.me().email == "agent@example.com"


def test_injected_errors_reach_the_client(zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy) -> None:
    zendesk_sandbox.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(APIException) as raised:
        zenpy.tickets.create(new_ticket())
    assert raised.value.response.status_code == 502
    assert zendesk_sandbox.find_tickets() == []

    zendesk_sandbox.set_faults(error_rate=0.3, error_status=500)
    zendesk_sandbox.random.seed(7)
    statuses = [
        requests.get(f"{zendesk_sandbox.url}/api/v2/groups.json", timeout=5).status_code
        for _ in range(50)
    ]
    # Unauthenticated on purpose: what is not an injected 500 is the 401.
    assert set(statuses) == {500, 401}
    assert 5 <= statuses.count(500) <= 25


def test_down_looks_like_an_outage_until_it_is_back(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy
) -> None:
    faults = f"{zendesk_sandbox.url}/__sandbox/faults"
    assert requests.post(faults, json={"down": True}, timeout=5).json()["down"] is True
    with pytest.raises(requests.HTTPError) as raised:
        zenpy.users.me()
    assert raised.value.response is not None
    assert raised.value.response.status_code == 503

    requests.post(faults, json={"down": False}, timeout=5)
    assert zenpy.users.me().email == "agent@example.com"

    zendesk_sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        zenpy.users.me()


def test_slow_answers_time_a_client_out(
    zendesk_sandbox: ZendeskSandbox, env: dict[str, str]
) -> None:
    zendesk_sandbox.set_faults(delay=1.0)
    impatient = zenpy_client(
        zendesk_sandbox.url, env["ZENDESK_EMAIL"], token=env["ZENDESK_API_TOKEN"], timeout=0.1
    )
    with pytest.raises(requests.Timeout):
        impatient.users.me()


def test_stats_count_requests_by_route_and_status(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy
) -> None:
    ticket = zenpy.tickets.create(new_ticket()).ticket
    zenpy.tickets(id=ticket.id)
    zenpy.tickets(id=ticket.id)
    stats = requests.get(f"{zendesk_sandbox.url}/__sandbox/stats", timeout=5).json()
    assert stats["requests"] == 3
    assert stats["by_route"] == {
        "POST /api/v2/tickets.json": {"201": 1},
        "GET /api/v2/tickets/{ticket_id}.json": {"200": 2},
    }


# ---------------------------------------------------------------- users and groups


def test_users_are_created_or_updated_and_found(zenpy: Zenpy) -> None:
    ada = zenpy.users.create_or_update(User(name="Ada", email="Ada@Example.com", external_id="U1"))
    again = zenpy.users.create_or_update(User(name="Ada Lovelace", email="ada@example.com"))
    assert again.id == ada.id
    assert zenpy.users(id=ada.id).name == "Ada Lovelace"
    assert [u.id for u in zenpy.users.search(query="ada@example.com")] == [ada.id]


def test_users_search_by_external_id(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    user = zendesk_sandbox.add_user("Grace", "grace@example.com", external_id="slack:U2")
    found = requests.get(
        f"{zendesk_sandbox.url}/api/v2/users/search.json",
        params={"external_id": "slack:U2"},
        auth=auth,
        timeout=5,
    ).json()
    assert [u["id"] for u in found["users"]] == [user["id"]]


def test_groups_are_created_listed_and_shown(zenpy: Zenpy) -> None:
    billing = zenpy.groups.create(Group(name="Billing"))
    assert [g.name for g in zenpy.groups()] == ["Support", "Billing"]
    assert zenpy.groups(id=billing.id).name == "Billing"


# ---------------------------------------------------------------- the agent and webhooks


@dataclass
class Receiver:
    """A tiny HTTP server standing in for the hub's webhook endpoint."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = Flask("receiver")
    got = Receiver()

    @app.post("/zendesk/webhook")
    def hook() -> str:
        got.received.append((dict(request.headers), request.get_data()))
        return "ok"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_port}/zendesk/webhook"
    yield got
    server.shutdown()
    thread.join()


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Zendesk's documented check: base64(HMAC-SHA256(secret, timestamp + body))."""
    timestamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    expected = base64.b64encode(
        hmac.new(secret.encode(), (timestamp + body.decode()).encode(), hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, headers["X-Zendesk-Webhook-Signature"])


def test_an_agent_reply_sends_a_signed_comment_added_webhook(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy, receiver: Receiver
) -> None:
    ticket = zenpy.tickets.create(new_ticket(tags=["bug"])).ticket
    zendesk_sandbox.set_webhook_target(receiver.url, "webhook-secret-1")

    deliveries = zendesk_sandbox.agent_reply(ticket.id, "Fixed in 4.2, please update.")

    # The reply also opened the ticket: two events, comment first.
    assert [d.status for d in deliveries] == [200, 200]
    assert len(receiver.received) == 2
    headers, body = receiver.received[0]
    assert verifies("webhook-secret-1", headers, body)
    assert not verifies("another-secret", headers, body)
    assert headers["X-Zendesk-Account-Id"] == str(zendesk_sandbox.account_id)
    assert headers["X-Zendesk-Webhook-Id"]
    assert headers["X-Zendesk-Webhook-Invocation-Id"]
    assert headers["X-Zendesk-Webhook-Signature-Timestamp"].endswith("Z")
    payload = json.loads(body)
    assert payload["type"] == "zen:event-type:ticket.comment_added"
    assert payload["subject"] == f"zen:ticket:{ticket.id}"
    assert payload["detail"]["id"] == str(ticket.id)
    assert payload["detail"]["tags"] == ["bug"]
    comment = payload["event"]["comment"]
    assert comment["body"] == "Fixed in 4.2, please update."
    assert comment["is_public"] is True
    assert comment["author"]["is_staff"] is True

    status = json.loads(receiver.received[1][1])
    assert status["type"] == "zen:event-type:ticket.status_changed"
    assert status["event"]["current"] == "OPEN"
    assert status["event"]["previous"] == "NEW"


def test_solve_tags_and_notes_over_the_control_endpoints(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy, receiver: Receiver
) -> None:
    ticket = zenpy.tickets.create(new_ticket(tags=["bug"])).ticket
    control = f"{zendesk_sandbox.url}/__sandbox"
    requests.post(
        f"{control}/webhook", json={"url": receiver.url, "secret": "s3cret"}, timeout=5
    ).raise_for_status()

    tags = requests.post(
        f"{control}/tickets/{ticket.id}/tags",
        json={"add": ["billing"], "remove": ["bug"]},
        timeout=5,
    ).json()
    assert tags["ticket"]["tags"] == ["billing"]
    note = requests.post(
        f"{control}/tickets/{ticket.id}/note", json={"body": "internal"}, timeout=5
    ).json()
    assert [d["type"] for d in note["deliveries"]] == ["zen:event-type:ticket.comment_added"]
    requests.post(f"{control}/tickets/{ticket.id}/solve", json={}, timeout=5)

    events = [json.loads(body) for _, body in receiver.received]
    assert [e["type"].removeprefix("zen:event-type:") for e in events] == [
        "ticket.tags_changed",
        "ticket.comment_added",
        "ticket.status_changed",
    ]
    assert events[0]["event"]["tags"] == {"added": ["billing"], "removed": ["bug"]}
    assert events[1]["event"]["comment"]["is_public"] is False
    assert events[2]["event"]["current"] == "SOLVED"
    assert all(verifies("s3cret", headers, body) for headers, body in receiver.received)
    assert zenpy.tickets(id=ticket.id).status == "solved"


def test_a_webhook_created_through_the_api_signs_with_its_own_secret(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy, receiver: Receiver, auth: tuple[str, str]
) -> None:
    created = requests.post(
        f"{zendesk_sandbox.url}/api/v2/webhooks",
        json={
            "webhook": {
                "name": "feedback-hub",
                "endpoint": receiver.url,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": ["zen:event-type:ticket.comment_added"],
            }
        },
        auth=auth,
        timeout=5,
    )
    assert created.status_code == 201
    webhook_id = created.json()["webhook"]["id"]
    listed = requests.get(f"{zendesk_sandbox.url}/api/v2/webhooks", auth=auth, timeout=5).json()
    assert [w["id"] for w in listed["webhooks"]] == [webhook_id]
    secret = requests.get(
        f"{zendesk_sandbox.url}/api/v2/webhooks/{webhook_id}/signing_secret", auth=auth, timeout=5
    ).json()["signing_secret"]["secret"]

    ticket = zenpy.tickets.create(new_ticket()).ticket
    zendesk_sandbox.agent_reply(ticket.id, "On it")
    # Subscribed to comments only: the status change is not sent.
    [(headers, body)] = receiver.received
    assert headers["X-Zendesk-Webhook-Id"] == webhook_id
    assert verifies(secret, headers, body)


def test_triggers_are_created_and_listed(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    url = f"{zendesk_sandbox.url}/api/v2/triggers.json"
    trigger = {
        "title": "Notify feedback-hub",
        "conditions": {"all": [{"field": "update_type", "operator": "is", "value": "Change"}]},
        "actions": [{"field": "notification_webhook", "value": ["01ABC", "{}"]}],
    }
    assert requests.post(url, json={"trigger": trigger}, auth=auth, timeout=5).status_code == 201
    missing = requests.post(url, json={"trigger": {"title": "x"}}, auth=auth, timeout=5)
    assert missing.status_code == 422
    listed = requests.get(url, auth=auth, timeout=5).json()["triggers"]
    assert [t["title"] for t in listed] == ["Notify feedback-hub"]


# ---------------------------------------------------------------- the page


def test_the_page_lists_tickets_with_comments_tags_requester_and_attachments(
    zendesk_sandbox: ZendeskSandbox, zenpy: Zenpy
) -> None:
    group = zenpy.groups.create(Group(name="Mobile"))
    upload = zenpy.attachments.upload(io.BytesIO(b"\x89PNG"), target_name="screen.png")
    zenpy.tickets.create(
        new_ticket(
            subject="App crashes on launch",
            comment=Comment(body="Crashes right after the splash screen", uploads=[upload.token]),
            requester=User(name="Ada Reporter", email="ada@example.com"),
            tags=["ios", "crash"],
            priority="urgent",
            group_id=group.id,
        )
    )
    zenpy.tickets.create(new_ticket(subject="Second <b>report</b>"))

    page = requests.get(f"{zendesk_sandbox.url}/", timeout=5).text
    assert page.index("Second &lt;b&gt;report&lt;/b&gt;") < page.index("App crashes on launch")
    for text in (
        "Crashes right after the splash screen",
        "ada@example.com",
        "Mobile",
        "urgent",
        ">ios<",
        ">crash<",
        "screen.png",
        "/attachments/token/",
    ):
        assert text in page


def test_the_agent_link_shows_the_ticket(zendesk_sandbox: ZendeskSandbox) -> None:
    created, _ = zendesk_sandbox.create_ticket(
        {"subject": "Linked ticket", "comment": {"body": "hello there"}}
    )
    zendesk_sandbox.create_ticket({"subject": "Another one", "comment": {"body": "x"}})
    page = requests.get(f"{zendesk_sandbox.url}/agent/tickets/{created['id']}", timeout=5)
    assert page.status_code == 200
    assert "Linked ticket" in page.text and "Another one" not in page.text
    missing = requests.get(f"{zendesk_sandbox.url}/agent/tickets/999", timeout=5)
    assert missing.status_code == 404


def test_a_create_repeated_with_its_idempotency_key_answers_the_first_ticket(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    url = f"{zendesk_sandbox.url}/api/v2/tickets.json"
    body = {"ticket": {"subject": "Export fails", "comment": {"body": "Nothing happens."}}}
    key = {"Idempotency-Key": "feedback-hub-abc"}
    first = requests.post(url, json=body, headers=key, auth=auth, timeout=5)
    again = requests.post(url, json=body, headers=key, auth=auth, timeout=5)
    other = requests.post(url, json=body, auth=auth, timeout=5)  # no key: a new ticket

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert again.headers["x-idempotency-lookup"] == "hit"
    assert again.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    assert other.json()["ticket"]["id"] != first.json()["ticket"]["id"]
    assert len(zendesk_sandbox.find_tickets()) == 2

    changed = {"ticket": {"subject": "Another subject", "comment": {"body": "Nothing happens."}}}
    refused = requests.post(url, json=changed, headers=key, auth=auth, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"] == "IdempotentRequestError"
    assert len(zendesk_sandbox.find_tickets()) == 2


def test_an_organization_is_created_once_and_its_members_tickets_join_it(
    zenpy: Zenpy, zendesk_sandbox: ZendeskSandbox
) -> None:
    acme = zenpy.organizations.create_or_update(Organization(name="Acme", external_id="acme"))
    again = zenpy.organizations.create_or_update(Organization(name="Acme", external_id="acme"))
    assert again.id == acme.id and len(zendesk_sandbox.organizations) == 1
    with pytest.raises(APIException) as taken:
        zenpy.organizations.create_or_update(Organization(name="Acme", external_id="other"))
    assert "has already been taken" in str(taken.value)

    kim = zenpy.users.create_or_update(
        User(name="Kim", external_id="slack:T0ACME:W0KIM", organization_id=acme.id)
    )
    audit = zenpy.tickets.create(new_ticket(requester_id=kim.id))
    assert zendesk_sandbox.tickets[audit.ticket.id]["organization_id"] == acme.id


def test_a_taken_organization_name_is_refused_and_found_by_name_as_zendesk_does(
    zendesk_sandbox: ZendeskSandbox, auth: tuple[str, str]
) -> None:
    existing = zendesk_sandbox.add_organization("Acme Corp", external_id="crm:4411")
    url = f"{zendesk_sandbox.url}/api/v2/organizations"
    mine = {"name": "acme corp", "external_id": "feedback-hub:acme-corp"}
    taken = requests.post(
        f"{url}/create_or_update.json", json={"organization": mine}, auth=auth, timeout=5
    )
    assert taken.status_code == 422
    assert taken.json() == {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {
            "name": [
                {"description": "Name: acme corp has already been taken", "error": "DuplicateValue"}
            ]
        },
    }

    def search(**params: str) -> dict[str, Any]:
        found = requests.get(f"{url}/search.json", params=params, auth=auth, timeout=5)
        assert found.status_code == 200
        return dict(found.json())

    # Exact, ignoring case; a prefix or a longer name is no match.
    by_name = search(name="ACME CORP")
    assert by_name["count"] == 1 and by_name["next_page"] is None
    [found] = by_name["organizations"]
    assert (found["id"], found["name"], found["external_id"]) == (
        existing["id"],
        "Acme Corp",
        "crm:4411",
    )
    assert found["url"].endswith(f"/api/v2/organizations/{existing['id']}.json")
    assert search(name="Acme")["organizations"] == []
    assert search(name="Acme Corp Ltd")["count"] == 0
    assert [o["id"] for o in search(external_id="CRM:4411")["organizations"]] == [existing["id"]]
    both = requests.get(
        f"{url}/search.json",
        params={"name": "Acme Corp", "external_id": "crm:4411"},
        auth=auth,
        timeout=5,
    )
    assert both.status_code == 400
