"""Contract tests: the ticket emoji's jobs, real slack_sdk and zenpy against the sandboxes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis import Redis
from rq.job import Job

from integrations.queue import enqueue_once, job_id
from integrations.queue.jobs import COMPLETE_THREAD, FILE_REACTION
from integrations.queue.report_log import ReportFilter, ReportLog
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.slack import TEAM_ID
from integrations.slack.loop import thread_key
from integrations.slack.payloads import ReactionAdded
from integrations.slack.threads import reaction_key
from tests.jobs import run_jobs
from workers import reactions
from workers.deadletters import dead_letters

CHANNEL = "#support"


def reaction(channel: str, ts: str, user: str = "U0ENGINEER", author: str = "U0REPORTER") -> Any:
    event = ReactionAdded.model_validate(
        {
            "event_id": f"Ev{user}{ts.replace('.', '')}",
            "team_id": TEAM_ID,
            "user": user,
            "reaction": "ticket",
            "item_user": author,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": ts,
        }
    )
    return event


def react(redis: Redis, event: ReactionAdded) -> None:
    enqueue_once(redis, FILE_REACTION, event.to_job(), key=reaction_key(event))
    run_jobs(redis)


def body_of(zendesk: ZendeskSandbox, ticket: dict[str, Any], index: int = 0) -> str:
    return str(zendesk.comments[ticket["id"]][index]["body"])


def bot_replies(slack: SlackSandbox, channel: str) -> list[str]:
    return [m.text for m in slack.channel_messages(channel) if m.bot]


def acme_customer_says(
    slack: SlackSandbox, monkeypatch: pytest.MonkeyPatch, text: str
) -> tuple[str, str]:
    """Kim of Acme (mapped to the Zendesk organization "Acme Corp") says `text` in a Slack
    Connect channel; returns the channel's id and the message's ts."""
    monkeypatch.setenv("SLACK_CONNECT_ORGANIZATIONS", "T0ACME:Acme Corp")
    slack.add_user("W0CUSTOMER", "kim", "Kim Customer", None, team="T0ACME")
    shared = slack.share_channel("#acme-support", "T0ACME")
    return shared, slack.say(shared, "W0CUSTOMER", text).ts


def test_a_thread_with_a_file_becomes_one_ticket_with_one_reply_in_the_thread(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    shot = slack_sandbox.add_file("export.png", b"\x89PNG fake", "image/png")
    parent = slack_sandbox.say(
        CHANNEL, "U0REPORTER", "The export button does nothing", files=[shot]
    )
    slack_sandbox.say(CHANNEL, "U0SUPPORT", "Which browser?", thread_ts=parent.ts)
    slack_sandbox.say(CHANNEL, "U0REPORTER", "Firefox 120 #export", thread_ts=parent.ts)

    react(redis, reaction(parent.channel, parent.ts))
    # Someone else reacts too, after the first one was filed: nothing new.
    assert reactions.file_reaction(reaction(parent.channel, parent.ts, "U0SUPPORT").to_job()) == (
        "already filed"
    )
    run_jobs(redis)

    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["subject"] == "The export button does nothing"
    assert zendesk_sandbox.users[ticket["requester_id"]]["email"] == "ada@example.com"
    assert {"slack", "slack_reaction", "export"} <= set(ticket["tags"])
    body = body_of(zendesk_sandbox, ticket)
    for line in ("Ada Reporter, ", "The export button does nothing", "[file: export.png]"):
        assert line in body
    assert body.index("Which browser?") < body.index("Firefox 120")
    assert "Sam Support, " in body
    assert "Filed by" in body and "@Grace Engineer (U0ENGINEER)" in body
    [attachment] = zendesk_sandbox.comments[ticket["id"]][0]["attachments"]
    assert attachment["file_name"] == "export.png"

    # One visible reply in the thread, with the ticket's link; the thread is the ticket's now.
    [reply] = bot_replies(slack_sandbox, CHANNEL)
    assert reply.startswith(f"Ticket #{ticket['id']} filed: ")
    assert int(redis.get(thread_key(parent.channel, parent.ts)) or 0) == ticket["id"]


def test_the_console_lists_a_reacted_message_as_queued_until_it_is_filed(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    parent = slack_sandbox.say(CHANNEL, "U0REPORTER", "Search never loads")
    # The reaction's job has read the thread; the report's own job waits for a worker.
    reactions.file_reaction(reaction(parent.channel, parent.ts).to_job())
    [queued] = ReportLog(redis).page(ReportFilter(source="slack_reaction")).rows
    assert (queued.subject, queued.state, queued.ticket_id) == (
        "Search never loads",
        "queued",
        None,
    )

    run_jobs(redis)
    [ticket] = zendesk_sandbox.tickets.values()
    [filed] = ReportLog(redis).page(ReportFilter()).rows
    assert (filed.id, filed.state, filed.ticket_id) == (queued.id, "filed", ticket["id"])
    assert [event for _, event, _ in filed.timeline][:2] == ["accepted", "filing, attempt 1"]


def test_a_reaction_on_a_reply_files_the_whole_thread(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    parent = slack_sandbox.say(CHANNEL, "U0REPORTER", "Sync stopped yesterday")
    reply = slack_sandbox.say(CHANNEL, "U0SUPPORT", "Since the update?", thread_ts=parent.ts)
    react(redis, reaction(parent.channel, reply.ts, author="U0SUPPORT"))
    [ticket] = zendesk_sandbox.tickets.values()
    assert "Sync stopped yesterday" in body_of(zendesk_sandbox, ticket)
    assert zendesk_sandbox.users[ticket["requester_id"]]["email"] == "sam@example.com"


def test_a_channel_the_bot_cannot_read_gets_an_invitation_to_the_reactor(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    message = slack_sandbox.say("#private-team", "U0REPORTER", "Login loops")
    slack_sandbox.remove_bot("#private-team")
    react(redis, reaction(message.channel, message.ts))
    assert zendesk_sandbox.tickets == {}
    [told] = slack_sandbox.ephemeral
    assert told["user"] == "U0ENGINEER"
    assert "Invite me to this channel" in told["text"]


def test_a_deleted_message_is_filed_with_a_note(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    message = slack_sandbox.say(CHANNEL, "U0REPORTER", "Please delete my account")
    slack_sandbox.delete_message(CHANNEL, message.ts)
    react(redis, reaction(message.channel, message.ts))
    [ticket] = zendesk_sandbox.tickets.values()
    assert "deleted before feedback-hub could read it" in body_of(zendesk_sandbox, ticket)
    assert zendesk_sandbox.users[ticket["requester_id"]]["email"] == "ada@example.com"


def test_files_too_big_or_undownloadable_are_linked_and_said_so(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reactions, "MAX_FILE_BYTES", 100)
    big = slack_sandbox.add_file("dump.bin", b"x" * 500)
    gone = slack_sandbox.add_file("screen.png", b"png", "image/png")
    slack_sandbox.remove_file_bytes(gone["id"])
    message = slack_sandbox.say(CHANNEL, "U0REPORTER", "Crash on start", files=[big, gone])
    react(redis, reaction(message.channel, message.ts))
    [ticket] = zendesk_sandbox.tickets.values()
    body = body_of(zendesk_sandbox, ticket)
    assert f"- dump.bin: over 0 MB; in Slack: {big['permalink']}" in body
    assert f"- screen.png: could not be downloaded; in Slack: {gone['permalink']}" in body
    assert zendesk_sandbox.comments[ticket["id"]][0]["attachments"] == []


def test_a_slack_connect_customer_is_the_requester_with_their_organization(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared, ts = acme_customer_says(slack_sandbox, monkeypatch, "Invoices show the wrong VAT")
    react(redis, reaction(shared, ts, author="W0CUSTOMER"))

    [ticket] = zendesk_sandbox.tickets.values()
    requester = zendesk_sandbox.users[ticket["requester_id"]]
    assert requester["external_id"] == "slack:T0ACME:W0CUSTOMER"
    assert requester["name"] == "Kim Customer"
    assert {"slack_connect", "org_acme_corp"} <= set(ticket["tags"])
    facts = body_of(zendesk_sandbox, ticket).splitlines()
    assert any(f.startswith("Organization ") and f.endswith(": Acme Corp") for f in facts)
    # The organization was created in Zendesk once, and the ticket joined it.
    [organization] = zendesk_sandbox.organizations.values()
    assert organization["name"] == "Acme Corp"
    assert ticket["organization_id"] == organization["id"]
    again = slack_sandbox.say(shared, "W0CUSTOMER", "And the PDF export too")
    react(redis, reaction(shared, again.ts, author="W0CUSTOMER"))
    assert len(zendesk_sandbox.organizations) == 1
    assert {t["organization_id"] for t in zendesk_sandbox.tickets.values()} == {organization["id"]}
    # "Ticket #N filed" is for the people in the thread, the customer included: not walled.
    assert bot_replies(slack_sandbox, shared)[0].startswith(f"Ticket #{ticket['id']} filed")


def test_a_slack_connect_customer_joins_the_organization_zendesk_already_has_by_that_name(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Made by hand or by a CRM sync before the hub: the name is taken, the external id is not
    # the hub's, so create_or_update cannot match it and Zendesk answers 422 "already taken".
    existing = zendesk_sandbox.add_organization("Acme Corp", external_id="crm:4411")
    shared, ts = acme_customer_says(slack_sandbox, monkeypatch, "Invoices show the wrong VAT")
    with caplog.at_level(logging.INFO, logger="integrations.zendesk.gateway"):
        react(redis, reaction(shared, ts, author="W0CUSTOMER"))

    assert dead_letters(redis) == []
    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["organization_id"] == existing["id"]
    assert zendesk_sandbox.users[ticket["requester_id"]]["organization_id"] == existing["id"]
    # Adopted as it was: no second organization, the other system's external id kept.
    assert list(zendesk_sandbox.organizations) == [existing["id"]]
    assert existing["external_id"] == "crm:4411"
    [adopted] = [r for r in caplog.records if r.getMessage() == "zendesk.organization.adopted"]
    assert adopted.fields["organization"] == existing["id"]  # type: ignore[attr-defined]

    # The id is cached like a created one: the next report asks Zendesk nothing about it.
    again = slack_sandbox.say(shared, "W0CUSTOMER", "And the PDF export too")
    react(redis, reaction(shared, again.ts, author="W0CUSTOMER"))
    assert {t["organization_id"] for t in zendesk_sandbox.tickets.values()} == {existing["id"]}
    routes = zendesk_sandbox.stats()["by_route"]
    assert routes["POST /api/v2/organizations/create_or_update.json"] == {"422": 1}
    assert routes["GET /api/v2/organizations/search.json"] == {"200": 1}


def test_another_refusal_of_the_organization_is_still_a_dead_letter(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zendesk_sandbox.add_organization("Acme Corp", external_id="crm:4411")
    shared, ts = acme_customer_says(slack_sandbox, monkeypatch, "Invoices show the wrong VAT")
    # A 422 that is not "name already taken": the organization is not looked up by name.
    zendesk_sandbox.set_faults(error_rate=1.0, error_status=422)
    react(redis, reaction(shared, ts, author="W0CUSTOMER"))

    [letter] = dead_letters(redis)
    assert letter.attempts == 1
    assert letter.reason.endswith("Zendesk refused to create or update organization (422)")
    assert zendesk_sandbox.tickets == {}
    routes = zendesk_sandbox.stats()["by_route"]
    assert routes["POST /api/v2/organizations/create_or_update.json"] == {"422": 1}
    assert "GET /api/v2/organizations/search.json" not in routes


def test_a_rate_limit_part_way_files_what_was_read_and_adds_the_rest_later(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    slack_sandbox.replies_page = 2
    parent = slack_sandbox.say(CHANNEL, "U0REPORTER", "Message 1")
    for n in range(2, 6):
        slack_sandbox.say(CHANNEL, "U0REPORTER", f"Message {n}", thread_ts=parent.ts)
    monkey_page(slack_sandbox)
    slack_sandbox.rate_limit("conversations.replies", retry_after=1, count=1, after=1)
    event = reaction(parent.channel, parent.ts)
    react(redis, event)

    [ticket] = zendesk_sandbox.tickets.values()
    body = body_of(zendesk_sandbox, ticket)
    assert "Message 2" in body and "Message 3" not in body
    assert "Slack limited reading this thread" in body

    # The rest waits for Slack's limit (shared by every worker); once it has passed:
    redis.delete("hub:ratelimit:slack:conversations.replies")
    rest = Job.fetch(job_id(COMPLETE_THREAD.kind, _rest_key(redis, ticket)), connection=redis)
    reactions.complete_thread(*rest.args)
    note = zendesk_sandbox.comments[ticket["id"]][-1]
    assert note["public"] is False
    assert "The rest of the Slack thread (3 messages):" in note["body"]
    assert "Message 3" in note["body"] and "Message 5" in note["body"]
    assert "Message 1" not in note["body"]


def monkey_page(slack_sandbox: SlackSandbox) -> None:
    # The hub asks for 200 a page; the sandbox's smaller pages stand for a long thread.
    original = slack_sandbox._conversations_replies

    def small_pages(args: dict[str, Any]) -> dict[str, Any]:
        return original({**args, "limit": slack_sandbox.replies_page})

    slack_sandbox._methods["conversations.replies"] = small_pages


def _rest_key(redis: Redis, ticket: dict[str, Any]) -> str:
    return f"{ticket['external_id']}:offset:2"


def test_later_replies_by_others_are_kept_as_internal_notes(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    from workers.ticket_events import relay_reporter_reply

    parent = slack_sandbox.say(CHANNEL, "U0REPORTER", "Export hangs")
    react(redis, reaction(parent.channel, parent.ts))
    [ticket] = zendesk_sandbox.tickets.values()
    later = slack_sandbox.say(CHANNEL, "U0ENGINEER", "Reproduced on staging", thread_ts=parent.ts)
    posted = {
        "event_id": "Ev0OTHER",
        "team_id": TEAM_ID,
        "channel": parent.channel,
        "user": "U0ENGINEER",
        "text": later.text,
        "ts": later.ts,
        "thread_ts": parent.ts,
    }
    assert relay_reporter_reply(posted, ticket["id"]) == "noted"
    assert relay_reporter_reply(posted, ticket["id"]) == "duplicate"  # Slack's retry
    note = zendesk_sandbox.comments[ticket["id"]][-1]
    assert note["public"] is False
    assert note["body"] == "Grace Engineer in the Slack thread:\nReproduced on staging"
