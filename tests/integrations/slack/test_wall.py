"""The wall: internal messages never reach a channel shared with another organization."""

from __future__ import annotations

import logging

import pytest
from redis import Redis

from integrations.errors import Permanent
from integrations.queue import NOTIFY, queue
from integrations.sandbox import SlackSandbox
from integrations.settings import Settings
from integrations.slack.api import MISSING_CHANNEL_KEY, SharedChannel, SlackApi, error_code


@pytest.fixture
def api(worker_env: dict[str, str], redis: Redis) -> SlackApi:
    return SlackApi(Settings.from_env("worker", worker_env), redis=redis)


def test_an_internal_post_to_a_shared_channel_is_refused_logged_and_alerted(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    shared = slack_sandbox.share_channel("#acme-support", "T0ACME")
    with caplog.at_level(logging.ERROR), pytest.raises(SharedChannel) as refused:
        api.post_message(shared, {"text": "Routing: billing rule 4 matched"})

    assert "shared with another organization" in str(refused.value)
    assert slack_sandbox.channel_messages(shared) == []
    assert "slack.wall.refused" in caplog.text
    # One alert for operators, naming the channel and what to do.
    [alert] = queue(redis, NOTIFY).get_jobs()
    assert shared in alert.args[0]
    assert "internal channel" in alert.args[0]


def test_a_channel_named_by_its_name_is_checked_too(
    api: SlackApi, slack_sandbox: SlackSandbox
) -> None:
    slack_sandbox.share_channel("#acme-support", "T0ACME")
    with pytest.raises(SharedChannel):
        api.call("chat.postMessage", channel="#acme-support", text="internal note")
    with pytest.raises(SharedChannel):
        api.call("chat.update", channel="#acme-support", ts="1.000001", text="edited card")
    assert slack_sandbox.calls("chat.postMessage") == []


def test_internal_channels_pass_and_the_answer_is_cached(
    api: SlackApi, slack_sandbox: SlackSandbox
) -> None:
    for text in ("first card", "second card"):
        api.post_message("C0ENGINEERING", {"text": text})
    assert [m.text for m in slack_sandbox.channel_messages("C0ENGINEERING")] == [
        "first card",
        "second card",
    ]
    assert len(slack_sandbox.calls("conversations.info")) == 1


def test_a_message_for_the_reporter_may_go_to_a_shared_channel(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    shared = slack_sandbox.share_channel("#acme-support", "T0ACME")
    api.post_message(shared, {"text": "Ticket #12 filed"}, to_reporter=True)
    assert [m.text for m in slack_sandbox.channel_messages(shared)] == ["Ticket #12 filed"]
    assert queue(redis, NOTIFY).get_jobs() == []


def test_a_channel_that_cannot_be_checked_is_refused(
    api: SlackApi, slack_sandbox: SlackSandbox
) -> None:
    # conversations.info limited (or a scope missing): the wall fails closed, the job retries.
    slack_sandbox.rate_limit("conversations.info", retry_after=30, count=1)
    from integrations.errors import Retryable

    with pytest.raises(Retryable):
        api.post_message("C0ENGINEERING", {"text": "card"})
    assert slack_sandbox.channel_messages("C0ENGINEERING") == []


def test_a_direct_message_by_user_id_is_not_looked_up_as_a_channel_name(
    api: SlackApi, slack_sandbox: SlackSandbox
) -> None:
    # Alerts and receipts DM a person by user id: no channel list is read for them.
    api.post_message("U0ADA123", {"text": "job file-report-7 failed for good"})
    assert slack_sandbox.calls("conversations.list") == []
    assert slack_sandbox.calls("conversations.info") == []
    assert len(slack_sandbox.calls("chat.postMessage")) == 1


# ---------------------------------------------------------------- names the hub cannot resolve


def test_an_internal_post_to_a_name_the_workspace_does_not_list_is_refused_logged_and_alerted(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(SharedChannel) as refused:
        api.post_message("#acme-private", {"text": "Routing: billing rule 4 matched"})

    # The operator reads what to check.
    why = str(refused.value)
    assert "#acme-private could not be found by name" in why
    for check in ("the bot is in that channel", "channels:read", "groups:read", "name is right"):
        assert check in why
    assert "slack.wall.refused" in caplog.text
    assert slack_sandbox.calls("chat.postMessage") == []
    [alert] = queue(redis, NOTIFY).get_jobs()
    assert "#acme-private" in alert.args[0]
    assert "channels:read and groups:read" in alert.args[0]


def test_a_slack_connect_channel_joined_while_its_name_is_remembered_missing_gets_nothing(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    # The first post finds no such channel; then the bot is invited into a private Slack
    # Connect channel of that name. Within the minute the name is remembered as missing,
    # the hub has not checked it: the wall still holds.
    with pytest.raises(SharedChannel):
        api.post_message("#acme-private", {"text": "first card"})
    slack_sandbox.share_channel("#acme-private", "T0ACME")
    with pytest.raises(SharedChannel) as refused:
        api.post_message("#acme-private", {"text": "second card"})

    assert "could not be found by name" in str(refused.value)
    assert slack_sandbox.channel_messages("#acme-private") == []
    assert slack_sandbox.calls("chat.postMessage") == []
    # Alerted once an hour, not once a refusal.
    assert len(queue(redis, NOTIFY).get_jobs()) == 1

    # Once the name is looked up again, the channel is seen for what it is.
    redis.delete(MISSING_CHANNEL_KEY.format(name="acme-private"))
    with pytest.raises(SharedChannel) as shared:
        api.post_message("#acme-private", {"text": "third card"})
    assert "shared with another organization" in str(shared.value)
    assert slack_sandbox.channel_messages("#acme-private") == []


def test_a_channel_made_after_a_refusal_is_accepted_once_the_missing_name_is_forgotten(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    with pytest.raises(SharedChannel):
        api.post_message("#eng-payments", {"text": "card"})
    slack_sandbox.create_channels("#eng-payments")
    # The missing cache lapses (MISSING_CHANNEL_SECONDS): deleted here rather than waited for.
    redis.delete(MISSING_CHANNEL_KEY.format(name="eng-payments"))

    api.post_message("#eng-payments", {"text": "card"})
    assert [m.text for m in slack_sandbox.channel_messages("#eng-payments")] == ["card"]


def test_a_message_for_the_reporter_to_an_unknown_name_is_left_to_slack(
    api: SlackApi, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    # Not internal: no lookup, no wall; Slack itself answers channel_not_found.
    with pytest.raises(Permanent) as failed:
        api.post_message("#nowhere", {"text": "Ticket #12 filed"}, to_reporter=True)
    assert not isinstance(failed.value, SharedChannel)
    assert error_code(failed.value) == "channel_not_found"
    assert slack_sandbox.calls("conversations.list") == []
    assert queue(redis, NOTIFY).get_jobs() == []
