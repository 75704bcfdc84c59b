"""The grouping buttons, as engineers press them: Same issue, Not related, Split out again.

Contract tests: reports filed through the real jobs against the Zendesk and Slack
sandboxes (real zenpy and slack_sdk clients), the buttons pressed as signed
block_actions on /slack/interactions, the queued jobs run in this process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from redis import Redis

from app import create_app
from integrations.queue import enqueue_once
from integrations.queue.jobs import FILE_REPORT
from integrations.report import Report
from integrations.sandbox.signing import slack_headers
from integrations.sandbox.slack import Message, SlackSandbox
from integrations.sandbox.zendesk import ZendeskSandbox
from integrations.settings import Settings
from integrations.slack.cards import NOT_RELATED_ACTION, SAME_ISSUE_ACTION, SPLIT_ACTION
from rules.related import IndexedDoc, RelatedIndex
from rules.related.labels import Labels
from tests.conftest import SIGNING_SECRET
from tests.jobs import run_jobs
from workers.grouping import group_of

CHANNEL = "#mobile-eng"


def mobile_crash(key: str, subject: str, description: str) -> Report:
    """A mobile crash report without a crash signature: rules/default.yml tells CHANNEL."""
    return Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": key,
            "reporter": {"email": f"{key}@acme.test"},
            "subject": subject,
            "description": description,
            "tags": ["mobile", "crash"],
            "fields": {"platform": "ios", "app_version": "5.2.1"},
        }
    )


def file(redis: Redis, zendesk: ZendeskSandbox, report: Report) -> int:
    enqueue_once(redis, replace(FILE_REPORT, kind="file"), report.to_job(), key=report.external_id)
    run_jobs(redis)
    [ticket] = zendesk.find_tickets(report.external_id)
    return int(ticket["id"])


@pytest.fixture
def two(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox, groups: object
) -> Iterator[tuple[int, int]]:
    """Two reports of what may be one crash, each its own issue: the second suggests the first."""
    first = file(
        redis,
        zendesk_sandbox,
        mobile_crash("a", "App crashes when saving a draft", "Saving a long draft crashes it."),
    )
    second = file(
        redis,
        zendesk_sandbox,
        mobile_crash("b", "Crash when I save my draft", "The app closes when a draft is saved."),
    )
    yield first, second


@pytest.fixture
def client(worker_env: dict[str, str]) -> FlaskClient:
    return create_app(Settings.from_env("web", worker_env)).test_client()


def press(client: FlaskClient, action_id: str, value: str, user: str = "U0GRACE") -> int:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "name": "grace"},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = client.post(
        "/slack/interactions", data=body, headers=slack_headers(SIGNING_SECRET, body)
    )
    return response.status_code


def cards(slack: SlackSandbox) -> dict[str, Message]:
    """The channel's top-level messages by the ticket their title names."""
    out = {}
    for m in slack.channel_messages(CHANNEL):
        if not m.thread_ts:
            out[m.ts] = m
    return out


def card_of(slack: SlackSandbox, ticket: int) -> Message:
    [message] = [m for m in cards(slack).values() if f"#{ticket} " in m.text]
    return message


def shown(message: Message) -> str:
    return message.text + json.dumps(message.blocks)


def thread(slack: SlackSandbox, message: Message) -> list[str]:
    return [m.text for m in slack.channel_messages(CHANNEL) if m.thread_ts == message.ts]


def notes(zendesk: ZendeskSandbox, ticket: int) -> list[str]:
    return [c["body"] for c in zendesk.comments[ticket] if not c["public"]]


def public(zendesk: ZendeskSandbox, ticket: int) -> list[str]:
    return [c["body"] for c in zendesk.comments[ticket] if c["public"]]


def test_a_new_issue_shows_its_best_candidate_with_the_two_buttons(
    two: tuple[int, int], slack_sandbox: SlackSandbox
) -> None:
    first, second = two
    # A young index never joins on words: two issues, the second suggests the first.
    assert len(cards(slack_sandbox)) == 2
    message = card_of(slack_sandbox, second)
    text = shown(message)
    assert (
        "Possibly the same as <" in text and f"|#{first}>: App crashes when saving a draft" in text
    )
    assert "shared words: " in text and "same platform" in text
    buttons = [
        (b["text"]["text"], b["action_id"], b["value"])
        for block in message.blocks
        if block["type"] == "actions" and block["block_id"].startswith("suggest:")
        for b in block["elements"]
    ]
    assert buttons == [
        ("Same issue", SAME_ISSUE_ACTION, f"{second}:{first}"),
        ("Not related", NOT_RELATED_ACTION, f"{second}:{first}"),
    ]


def test_an_issue_of_two_reports_is_suggested_once_with_what_sets_the_crashes_apart(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: object,
    slack_sandbox: SlackSandbox,
) -> None:
    def crash(key: str, subject: str, signature: str) -> Report:
        report = mobile_crash(key, subject, "The app closes when a draft is saved.")
        return report.model_copy(update={"crash_signature": signature})

    first = file(redis, zendesk_sandbox, crash("a", "App crashes when saving a draft", "sig-1"))
    # Joined on its signature: one issue, one card.
    second = file(redis, zendesk_sandbox, crash("b", "Crash when I save my draft", "sig-1"))
    other = file(redis, zendesk_sandbox, crash("c", "Crash when saving drafts", "sig-2"))
    assert group_of(redis, second) == group_of(redis, first) != group_of(redis, other)

    text = shown(card_of(slack_sandbox, other))
    # Both members match its words; the card names their issue once, by the closer one.
    assert text.count("Possibly the same as") == 1
    assert text.count(f"|#{first}>") + text.count(f"|#{second}>") == 1
    assert "different crash signature" in text


def test_same_issue_merges_the_two_cards_into_one(
    redis: Redis,
    two: tuple[int, int],
    client: FlaskClient,
    slack_sandbox: SlackSandbox,
    zendesk_sandbox: ZendeskSandbox,
) -> None:
    first, second = two
    public_before = {t: public(zendesk_sandbox, t) for t in two}
    # A double click is one merge.
    assert press(client, SAME_ISSUE_ACTION, f"{second}:{first}") == 200
    assert press(client, SAME_ISSUE_ACTION, f"{second}:{first}") == 200
    run_jobs(redis)

    assert group_of(redis, second) == group_of(redis, first)
    remaining, merged = card_of(slack_sandbox, first), card_of(slack_sandbox, second)
    assert "2 reporters" in remaining.text
    assert thread(slack_sandbox, remaining) == [
        f":twisted_rightwards_arrows: Crash when I save my draft \u2014 ticket "
        f"<{zendesk_sandbox.url}/agent/tickets/{second}|#{second}> merged into this issue "
        "by <@U0GRACE>."
    ]
    assert f"was merged into <{zendesk_sandbox.url}/agent/tickets/{first}|#{first}>" in shown(
        merged
    )
    assert "by <@U0GRACE>" in shown(merged) and "Split out again" in shown(merged)
    assert "Possibly the same as" not in shown(merged)
    assert thread(slack_sandbox, merged) == [
        f":twisted_rightwards_arrows: Merged into "
        f"<{zendesk_sandbox.url}/agent/tickets/{first}|#{first}> by <@U0GRACE>."
    ]
    # Agents read who did it; the reporters are told nothing.
    assert notes(zendesk_sandbox, second)[-1] == (
        f"Grouped with #{first} as the same issue by grace in Slack (engineering)."
    )
    assert {t: public(zendesk_sandbox, t) for t in two} == public_before
    # Kept as a label for `related export-labels`.
    assert Labels(redis).label_of(str(first), str(second)) == "same"


def test_a_merge_that_reaches_the_threshold_links_the_incidents_to_a_problem(
    redis: Redis,
    two: tuple[int, int],
    client: FlaskClient,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = two
    monkeypatch.setenv("GROUP_PROBLEM_THRESHOLD", "2")
    press(client, SAME_ISSUE_ACTION, f"{second}:{first}")
    run_jobs(redis)
    [problem] = [t for t in zendesk_sandbox.tickets.values() if t["type"] == "problem"]
    for ticket in two:
        stored = zendesk_sandbox.tickets[ticket]
        assert (stored["type"], stored["problem_id"]) == ("incident", problem["id"])

    # Split out again: the link is removed, the group's card counts one, its card is back.
    merged = card_of(slack_sandbox, second)
    assert press(client, SPLIT_ACTION, str(second)) == 200
    assert press(client, SPLIT_ACTION, str(second)) == 200
    run_jobs(redis)
    assert zendesk_sandbox.tickets[second]["problem_id"] is None
    assert zendesk_sandbox.tickets[first]["problem_id"] == problem["id"]
    assert group_of(redis, second) != group_of(redis, first)
    restored = card_of(slack_sandbox, second)
    assert restored.ts == merged.ts
    assert "merged into" not in shown(restored) and "Acknowledge" in shown(restored)
    assert thread(slack_sandbox, restored)[-1] == (
        f":scissors: Split out of #{problem['id']} by <@U0GRACE>: its own issue again."
    )
    group_card = card_of(slack_sandbox, problem["id"])
    assert "1 reporter)" in group_card.text
    assert thread(slack_sandbox, group_card)[-1] == (
        f":scissors: Ticket #{second} split out of this issue by <@U0GRACE>."
    )
    assert notes(zendesk_sandbox, second)[-1] == (
        f"Split out of #{problem['id']} (no longer the same issue) by grace in Slack (engineering)."
    )
    assert Labels(redis).label_of(str(first), str(second)) == "not_related"


def test_not_related_removes_the_suggestion_for_good(
    redis: Redis,
    two: tuple[int, int],
    client: FlaskClient,
    slack_sandbox: SlackSandbox,
    zendesk_sandbox: ZendeskSandbox,
) -> None:
    first, second = two
    assert press(client, NOT_RELATED_ACTION, f"{second}:{first}") == 200
    assert press(client, NOT_RELATED_ACTION, f"{second}:{first}") == 200
    run_jobs(redis)
    message = card_of(slack_sandbox, second)
    assert "Possibly the same as" not in shown(message)
    assert thread(slack_sandbox, message) == [
        f":heavy_multiplication_x: Not related to #{first}, said <@U0GRACE>; not suggested again."
    ]
    assert notes(zendesk_sandbox, second) == [
        f"Marked not related to #{first} by grace in Slack (engineering)."
    ]
    assert group_of(redis, second) != group_of(redis, first)
    # Never suggested again: the second report, asked again, does not see the first.
    assert Labels(redis).rejected_with(str(second)) == {str(first)}
    again = IndexedDoc(
        str(second),
        datetime.now(UTC),
        "Crash when I save my draft",
        "The app closes when a draft is saved.",
    )
    assert str(first) not in [m.doc_id for m in RelatedIndex(redis).group_for(again).matches]


def test_a_press_without_ticket_ids_is_refused(client: FlaskClient) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0GRACE", "name": "grace"},
        "actions": [{"action_id": SAME_ISSUE_ACTION, "value": "not-a-ticket"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = client.post(
        "/slack/interactions", data=body, headers=slack_headers(SIGNING_SECRET, body)
    )
    assert response.status_code == 400
    assert response.get_json()["message"] == "the eng_same_issue button carries no ticket ids"


def test_a_report_joined_on_its_crash_signature_can_be_split_out(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    groups: object,
    client: FlaskClient,
) -> None:
    signature = "EXC_BAD_ACCESS DraftStore.save(_:) + 148"
    first, second = (
        file(
            redis,
            zendesk_sandbox,
            mobile_crash(key, subject, "It crashed.").model_copy(
                update={"crash_signature": signature}
            ),
        )
        for key, subject in (("s1", "App crashes on save"), ("s2", "Lost my post, app closed"))
    )
    assert group_of(redis, second) == group_of(redis, first)
    group_card = card_of(slack_sandbox, first)
    [joined] = [m for m in slack_sandbox.channel_messages(CHANNEL) if m.thread_ts == group_card.ts]
    [button] = joined.blocks[-1]["elements"]
    assert (button["action_id"], button["value"]) == (SPLIT_ACTION, str(second))

    assert press(client, SPLIT_ACTION, button["value"]) == 200
    run_jobs(redis)
    assert group_of(redis, second) != group_of(redis, first)
    # It gets a card of its own where the group's is; the group's counts one reporter.
    own = card_of(slack_sandbox, second)
    assert "Lost my post, app closed" in own.text
    assert "1 reporter)" in card_of(slack_sandbox, first).text
    assert thread(slack_sandbox, group_card)[-1] == (
        f":scissors: Ticket #{second} split out of this issue by <@U0GRACE>."
    )
    assert notes(zendesk_sandbox, second) == [
        f"Split out of #{first} (no longer the same issue) by grace in Slack (engineering)."
    ]


def test_merged_split_and_merged_again_by_the_same_buttons(
    redis: Redis, two: tuple[int, int], client: FlaskClient, slack_sandbox: SlackSandbox
) -> None:
    first, second = two
    for action, value, same in (
        (SAME_ISSUE_ACTION, f"{second}:{first}", True),
        (SPLIT_ACTION, str(second), False),
        (SAME_ISSUE_ACTION, f"{second}:{first}", True),
    ):
        assert press(client, action, value) == 200
        run_jobs(redis)
        assert (group_of(redis, second) == group_of(redis, first)) is same, action
    assert "2 reporters" in card_of(slack_sandbox, first).text
    assert "was merged into" in shown(card_of(slack_sandbox, second))
