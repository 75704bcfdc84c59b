"""Contract tests: the Slack-side jobs, the real slack_sdk clients against the Slack sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis
from rq import Retry

from integrations.errors import Permanent, Retryable
from integrations.queue import NOTIFY, enqueue_once
from integrations.queue.jobs import REPORT_FILED
from integrations.queue.report_log import ReportLog
from integrations.report import ReplyContext, Report, Reporter
from integrations.sandbox import SlackSandbox
from integrations.settings import Settings
from integrations.slack import messages
from integrations.slack.api import SlackApi
from tests.jobs import run_jobs
from workers import alerts, receipts
from workers.context import JobContext

TICKET = {"id": 123, "url": "https://example.zendesk.com/agent/tickets/123", "status": "new"}


@pytest.fixture
def settings_(worker_env: dict[str, str]) -> Settings:
    return Settings.from_env("worker", worker_env)


def a_report(**reply: Any) -> Report:
    return Report(
        source="slack_command",
        idempotency_key="slack:command:T0SANDBOX:U0REPORTER:C0GENERAL:1.2.3",
        reporter=Reporter(slack_team_id="T0SANDBOX", slack_user_id="U0REPORTER"),
        subject="The export button does nothing",
        description="The export button does nothing",
        reply=ReplyContext(team_id="T0SANDBOX", user_id="U0REPORTER", **reply),
    )


def run_notify_jobs(redis: Redis) -> None:
    """Work the notify queue in this process (so the jobs see this test's environment)."""
    run_jobs(redis, (NOTIFY,))


def texts(sandbox: SlackSandbox) -> list[str]:
    return [r["body"]["text"] for r in sandbox.responses]


# ---------------------------------------------------------------- report_filed


def test_report_filed_posts_to_the_response_url_once(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    report = a_report(channel_id="C0GENERAL", response_url=slack_sandbox.response_url("cmd-1"))
    for _ in range(2):  # a retried job
        enqueue_once(redis, REPORT_FILED, report.to_job(), TICKET, key=str(_))
    run_notify_jobs(redis)

    [post] = slack_sandbox.responses
    assert post["name"] == "cmd-1"
    # The reporter's page in the Help Center, not the agent's link.
    page = f"{worker_env['ZENDESK_URL']}/hc/requests/123"
    assert post["body"]["text"] == f"Ticket #123 filed: {page}"
    assert post["body"]["response_type"] == "ephemeral"
    assert f"<{page}|Ticket #123>" in str(post["body"])
    assert slack_sandbox.ephemeral == []


def test_report_filed_links_the_configured_request_page(
    worker_env: dict[str, str],
    slack_sandbox: SlackSandbox,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An account without a Help Center: requesters see their tickets somewhere else.
    monkeypatch.setenv("ZENDESK_REQUEST_URL", "https://support.example.com/tickets/{id}")
    report = a_report(channel_id="C0GENERAL", response_url=slack_sandbox.response_url("cmd-2"))
    enqueue_once(redis, REPORT_FILED, report.to_job(), TICKET, key="page")
    run_notify_jobs(redis)
    [post] = slack_sandbox.responses
    assert post["body"]["text"] == "Ticket #123 filed: https://support.example.com/tickets/123"


def test_forged_response_url_is_never_called(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    # A second server standing in for wherever a forged payload points.
    elsewhere = SlackSandbox(token=None)
    elsewhere.start()
    try:
        for url in (
            elsewhere.response_url("stolen"),
            f"https://hooks.slack.com@127.0.0.1:{elsewhere.port}/response/stolen",
            "https://hooks.slack.com.evil.example/commands/1",
            "http://hooks.slack.com/commands/1",
        ):
            report = a_report(channel_id="C0GENERAL", response_url=url)
            assert receipts.report_filed(report.to_job(), TICKET) == "ephemeral"
            redis.flushdb()
        assert elsewhere.responses == []
        assert elsewhere.calls() == []
    finally:
        elsewhere.stop()
    # The person still hears it, in the channel, from the bot.
    assert len(slack_sandbox.ephemeral) == 4
    assert {e["user"] for e in slack_sandbox.ephemeral} == {"U0REPORTER"}
    assert slack_sandbox.responses == []


def test_expired_response_url_falls_back_to_an_ephemeral(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    # Allowed host, but Slack answers 404 (expired after 30 minutes, or used 5 times).
    report = a_report(channel_id="C0GENERAL", response_url=f"{slack_sandbox.url}/expired/cmd-2")
    assert receipts.report_filed(report.to_job(), TICKET) == "ephemeral"
    [ephemeral] = slack_sandbox.ephemeral
    assert ephemeral["channel"] == "C0GENERAL"
    assert ephemeral["text"].startswith("Ticket #123 filed")


def test_no_channel_falls_back_to_a_dm(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox
) -> None:
    assert receipts.report_filed(a_report().to_job(), TICKET) == "dm"
    [dm] = slack_sandbox.channel_messages("D0REPORTER")
    assert dm.text.startswith("Ticket #123 filed")
    assert [c.method for c in slack_sandbox.calls()] == ["conversations.open", "chat.postMessage"]


def test_rate_limited_post_is_rescheduled_not_slept(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    slack_sandbox.rate_limit("chat.postEphemeral", retry_after=7, count=1)
    report = a_report(channel_id="C0GENERAL")
    outcome = receipts.report_filed(report.to_job(), TICKET)
    assert isinstance(outcome, Retry)
    assert outcome.intervals == [7]
    assert slack_sandbox.ephemeral == []
    # Every worker sees the wait (shared in Redis) ...
    with pytest.raises(Retryable) as waiting:
        SlackApi(Settings.from_env("worker"), redis=redis).post_ephemeral(
            "C0GENERAL", "U0REPORTER", {"text": "x"}
        )
    assert waiting.value.retry_after is not None and 0 < waiting.value.retry_after <= 7
    # ... and once it has passed, the retry posts (nothing was marked as told).
    redis.delete("hub:ratelimit:slack:chat.postEphemeral")
    assert receipts.report_filed(report.to_job(), TICKET) == "ephemeral"
    assert len(slack_sandbox.ephemeral) == 1


def test_slack_unreachable_is_retryable(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
    with pytest.raises(Retryable, match=r"Slack chat\.postEphemeral: URLError"):
        receipts.report_filed(a_report(channel_id="C0GENERAL").to_job(), TICKET)


def test_slack_refusal_is_permanent_with_its_code(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    with pytest.raises(Permanent, match=r"Slack chat\.postEphemeral: invalid_auth"):
        receipts.report_filed(a_report(channel_id="C0GENERAL").to_job(), TICKET)


# ---------------------------------------------------------------- receipts, delays, alerts


def test_report_received_sends_the_shortcut_receipt(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox
) -> None:
    report = a_report(channel_id="C0GENERAL", response_url=slack_sandbox.response_url("sc"))
    assert receipts.report_received(report.to_job(), False) == "response_url"
    assert texts(slack_sandbox) == [messages.shortcut_receipt()["text"]]
    assert slack_sandbox.responses[0]["body"]["replace_original"] is False


def test_report_delayed_tells_the_reporter(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox
) -> None:
    report = a_report(channel_id="C0GENERAL", response_url=slack_sandbox.response_url("d"))
    receipts.report_delayed(report.to_job(), "Zendesk: HTTP 503 after 16 attempts")
    assert texts(slack_sandbox) == [messages.report_delayed()["text"]]
    assert "503" not in texts(slack_sandbox)[0]  # the reason is for operators


def test_ops_alert_posts_to_the_ops_channel(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_OPS_CHANNEL", "#support-ops")
    assert alerts.ops_alert("job file-report-x failed for good") == "#support-ops"
    assert [m.text for m in slack_sandbox.channel_messages("#support-ops")] == [
        "job file-report-x failed for good"
    ]


def test_ops_alert_without_a_channel_is_only_logged(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    assert alerts.ops_alert("job failed") is None
    assert slack_sandbox.calls() == []
    assert "slack.ops_alert.skipped" in caplog.messages


# ---------------------------------------------------------------- identities and permalinks


def test_reporter_identity_from_users_info_cached(
    settings_: Settings, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    first = receipts.reporter_identity(JobContext(settings_, redis), "T0SANDBOX", "U0REPORTER")
    again = receipts.reporter_identity(JobContext(settings_, redis), "T0SANDBOX", "U0REPORTER")
    assert first == again == ("Ada Reporter", "ada@example.com")
    assert len(slack_sandbox.calls("users.info")) == 1


def test_reporter_identity_without_email(
    settings_: Settings, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    slack_sandbox.add_user("U0NOMAIL", "lin", "Lin Noemail", None)
    assert receipts.reporter_identity(JobContext(settings_, redis), "T0SANDBOX", "U0NOMAIL") == (
        "Lin Noemail",
        None,
    )
    # Slack does not know the user: the ticket is still filed (by external id), no email.
    assert receipts.reporter_identity(JobContext(settings_, redis), "T0SANDBOX", "U0GONE") == (
        None,
        None,
    )


def test_shortcut_report_gets_the_permalink(
    settings_: Settings, slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    posted = SlackApi(settings_).post_message("C0GENERAL", {"text": "export is broken"})
    report = Report(
        source="slack_shortcut",
        idempotency_key="slack:shortcut:T0SANDBOX:U0REPORTER:C0GENERAL:" + posted["ts"],
        subject="export is broken",
        description="export is broken",
        reply=ReplyContext(channel_id="C0GENERAL", message_ts=posted["ts"]),
    )
    with_link = receipts.with_permalink(JobContext(settings_, redis), report)
    expected = f"{slack_sandbox.url}/archives/C0GENERAL/p{posted['ts'].replace('.', '')}"
    assert with_link.context["Permalink"] == expected
    assert with_link.reply.permalink == expected
    # A message Slack cannot find: no link, the report is filed without one.
    missing = ReplyContext(channel_id="C0GENERAL", message_ts="1.2")
    gone = report.model_copy(update={"reply": missing})
    assert receipts.with_permalink(JobContext(settings_, redis), gone) == gone


def test_the_receipt_is_on_the_reports_console_timeline_once(
    worker_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    report = a_report(channel_id="C0GENERAL", response_url=slack_sandbox.response_url("cmd-t"))
    log = ReportLog(redis)
    log.record(report, decision=None, state="filed", event="ticket #123 created", ticket_id=123)
    for _ in range(2):  # a retried job tells once, and says so once
        enqueue_once(redis, REPORT_FILED, report.to_job(), TICKET, key=f"t{_}")
    run_notify_jobs(redis)

    row = log.get(report.key_digest)
    assert row is not None
    receipts_seen = [detail for _, event, detail in row.timeline if event == "receipt"]
    assert receipts_seen == ["the reporter was told ticket #123 (response_url)"]
