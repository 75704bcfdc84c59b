"""file_report against the Zendesk sandbox, through the real zenpy client and a real rq worker."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
from redis import Redis
from rq import Retry
from rq.job import Job, JobStatus

from integrations.queue import TICKETS, enqueue_once, queue
from integrations.queue.attachments import attachment_store
from integrations.queue.jobs import FILE_REPORT
from integrations.queue.status import StatusStore
from integrations.report import AttachmentRef, Report
from integrations.sandbox.slack import SlackSandbox
from integrations.sandbox.zendesk import ZendeskSandbox
from tests.jobs import run_jobs
from workers.deadletters import dead_letters


def slack_report(**changes: object) -> Report:
    base: dict[str, object] = {
        "source": "slack_command",
        "idempotency_key": "T1:U1:C1:trigger-1",
        "reporter": {"name": "Ana", "slack_team_id": "T1", "slack_user_id": "U1"},
        "subject": "Export button does nothing",
        "description": "Export button does nothing #export",
        "tags": ["slack", "feedback", "export"],
        "context": {"Workspace": "acme", "Channel": "#general"},
        "reply": {"team_id": "T1", "channel_id": "C1", "user_id": "U1"},
    }
    return Report.model_validate({**base, **changes})


def file_now(redis: Redis, report: Report, kind: str = "file-report") -> Job:
    enqueued = enqueue_once(
        redis, replace(FILE_REPORT, kind=kind), report.to_job(), key=report.external_id
    )
    run_jobs(redis)
    return Job.fetch(enqueued.job_id, connection=redis)


def test_a_slack_report_becomes_a_ticket_from_the_slack_user(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    slack_sandbox.add_user("U1", "ana", "Ana Lima", "ana@acme.test")
    report = slack_report()
    job = file_now(redis, report)
    assert job.get_status() == JobStatus.FINISHED

    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["subject"] == "Export button does nothing"
    assert ticket["external_id"] == report.external_id
    assert {"slack", "feedback", "export"} <= set(ticket["tags"])
    requester = zendesk_sandbox.users[ticket["requester_id"]]
    assert requester["email"] == "ana@acme.test"
    body = zendesk_sandbox.comments[ticket["id"]][0]["body"]
    assert body.startswith("Export button does nothing #export")
    assert "Workspace : acme" in body

    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and status.state == "filed" and status.ticket_id == ticket["id"]
    assert status.ticket_url == f"{zendesk_sandbox.url}/hc/requests/{ticket['id']}"


def test_the_same_report_filed_again_is_one_ticket(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    report = slack_report(reporter={"name": "Bo", "email": "bo@acme.test"})
    file_now(redis, report, kind="first")
    # A replay (or a job that died after Zendesk created the ticket) runs again.
    again = file_now(redis, report, kind="replay")
    assert again.get_status() == JobStatus.FINISHED
    assert len(zendesk_sandbox.tickets) == 1
    result = again.return_value()
    assert result is not None and result["id"] == next(iter(zendesk_sandbox.tickets))


def test_a_slack_user_without_email_is_keyed_by_slack_id(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
) -> None:
    slack_sandbox.add_user("U9", "guest", "Guest User", None)
    report = slack_report(
        idempotency_key="T1:U9:C1:t",
        reporter={"name": "guest", "slack_team_id": "T1", "slack_user_id": "U9"},
    )
    file_now(redis, report)
    [ticket] = zendesk_sandbox.tickets.values()
    requester = zendesk_sandbox.users[ticket["requester_id"]]
    assert requester["external_id"] == "slack:T1:U9"
    assert requester["name"] == "Guest User"


def test_attachments_are_uploaded_and_then_dropped_from_storage(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    store = attachment_store(redis)
    log = store.put(b"line 1\nline 2\n", "app.log", "text/plain")
    report = Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": "ios:abc",
            "reporter": {"email": "cy@acme.test"},
            "subject": "Crash on save",
            "description": "It crashed",
            "attachments": [log.model_dump()],
        }
    )
    file_now(redis, report)
    [ticket] = zendesk_sandbox.tickets.values()
    [attachment] = zendesk_sandbox.comments[ticket["id"]][0]["attachments"]
    assert attachment["file_name"] == "app.log"
    assert store.get(log.key) is None


def test_an_expired_attachment_is_named_in_the_ticket(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    gone = AttachmentRef(key="missing", filename="screen.png", content_type="image/png", size=3)
    report = slack_report(
        reporter={"email": "d@acme.test"}, source="mobile", attachments=[gone.model_dump()]
    )
    file_now(redis, report)
    [ticket] = zendesk_sandbox.tickets.values()
    assert "screen.png" in zendesk_sandbox.comments[ticket["id"]][0]["body"]


def test_a_rate_limited_create_is_rescheduled_not_failed(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    zendesk_sandbox.set_faults(rate_limit=1)
    # Someone else (another integration on the account) spends this minute's budget.
    auth = (f"{worker_env['ZENDESK_EMAIL']}/token", worker_env["ZENDESK_API_TOKEN"])
    assert requests.get(f"{zendesk_sandbox.url}/api/v2/users/me.json", auth=auth, timeout=5).ok
    report = slack_report(reporter={"email": "e@acme.test"})
    job = file_now(redis, report)
    assert job.get_status() == JobStatus.SCHEDULED
    assert dead_letters(redis) == []
    assert zendesk_sandbox.tickets == {}
    # What the status API answers meanwhile.
    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and status.state == "delayed"
    assert status.reason == "Zendesk is limiting requests; filed as soon as it allows"
    # The limit is shared: the next job waits without calling Zendesk at all.
    calls = zendesk_sandbox.stats()
    file_now(redis, slack_report(idempotency_key="other", reporter={"email": "f@acme.test"}))
    assert zendesk_sandbox.stats() == calls


def test_an_outage_shows_delayed_until_a_retry_files_it(
    redis: Redis, worker_env: dict[str, str], zendesk_sandbox: ZendeskSandbox
) -> None:
    zendesk_sandbox.set_faults(error_rate=1.0, error_status=503)
    report = slack_report(reporter={"email": "o@acme.test"})
    enqueued = enqueue_once(
        redis,
        FILE_REPORT,
        report.to_job(),
        key=report.external_id,
        retry=Retry(max=2, interval=600),
    )
    run_jobs(redis)
    job = Job.fetch(enqueued.job_id, connection=redis)
    assert job.get_status() == JobStatus.SCHEDULED
    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and status.state == "delayed"
    assert status.reason is not None and status.reason.endswith("; retrying")
    assert "503" in status.reason

    # Zendesk is back; the retry's time comes.
    zendesk_sandbox.clear_faults()
    tickets = queue(redis, TICKETS)
    tickets.scheduled_job_registry.remove(job)
    tickets.enqueue_job(job)
    run_jobs(redis)
    [ticket] = zendesk_sandbox.tickets.values()
    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and (status.state, status.ticket_id) == ("filed", ticket["id"])


def test_a_refused_ticket_goes_to_dead_letters_at_once(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_OPS_CHANNEL", "#support-ops")
    zendesk_sandbox.set_faults(error_rate=1.0, error_status=422)
    report = slack_report(
        reporter={"email": "g@acme.test"},
        reply={
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": "U1",
            "response_url": slack_sandbox.response_url("r1"),
        },
    )
    job = file_now(redis, report)
    assert job.get_status() == JobStatus.FAILED
    [letter] = dead_letters(redis)
    assert letter.attempts == 1
    assert letter.reason.endswith("(422)") and "Zendesk refused to" in letter.reason
    status = StatusStore(redis).get(report.key_digest)
    assert status is not None and status.state == "failed"

    # The reporter hears it is delayed, where they filed it.
    [told] = slack_sandbox.responses
    assert "taking longer than usual" in str(told)
    # An operator is alerted in the ops channel, with the way to look at it.
    [alert] = slack_sandbox.channel_messages("#support-ops")
    assert job.id in alert.text and "feedback-hub failed show" in alert.text


def test_the_rules_route_the_ticket_before_it_exists(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: dict[str, int],
) -> None:
    report = slack_report(
        reporter={"email": "h@acme.test"},
        subject="I was charged twice for my invoice",
        description="I was charged twice for my invoice this month, please refund",
    )
    job = file_now(redis, report)
    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["group_id"] == groups["Billing"]
    assert "billing" in ticket["tags"]
    # Why it went there is kept for the ticket.
    from workers.intake import routing_of

    decision = routing_of(redis, ticket["id"])
    assert decision is not None and decision.group == "Billing"
    assert decision.why["group"].set_by.by == "rule"
    assert job.get_status() == JobStatus.FINISHED


def test_a_group_zendesk_lacks_files_the_ticket_and_alerts_ops(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_OPS_CHANNEL", "#support-ops")
    report = slack_report(
        reporter={"email": "i@acme.test"},
        subject="Refund please",
        description="I was charged twice, please refund my invoice",
    )
    file_now(redis, report)
    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["group_id"] is None
    [alert] = slack_sandbox.channel_messages("#support-ops")
    assert "'Billing'" in alert.text and "Zendesk does not know" in alert.text

    # More reports for the missing group do not each ask Zendesk for its groups again.
    for n in range(3):
        file_now(redis, report.model_copy(update={"idempotency_key": f"more-{n}"}))
    listed = zendesk_sandbox.stats()["by_route"]["GET /api/v2/groups.json"]
    assert listed == {"200": 1}
    filed = [t for t in zendesk_sandbox.tickets.values() if t["type"] != "problem"]
    assert len(filed) == 4


def mobile_crash(key: str, subject: str, description: str, **more: str) -> Report:
    """A mobile crash report from an iOS app, as the mobile API makes it."""
    fields = {"platform": "ios", "app_version": more.pop("app_version")}
    return Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": key,
            "reporter": {"email": "j@acme.test"},
            "subject": subject,
            "description": description,
            "tags": ["mobile", "crash"],
            "fields": fields,
            **more,
        }
    )


def test_a_crash_report_reaches_the_engineering_channel_once(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    groups: dict[str, int],
) -> None:
    report = mobile_crash(
        "ios:crash-1",
        "App crashes when saving a draft",
        "The app crashes every time I save a draft",
        app_version="5.2.1",
    )
    file_now(redis, report)
    file_now(redis, report, kind="replayed")  # a replay posts nothing new
    [ticket] = zendesk_sandbox.tickets.values()
    assert ticket["group_id"] == groups["Mobile"] and ticket["priority"] == "high"
    [card] = slack_sandbox.channel_messages("#mobile-eng")
    shown = card.text + str(card.blocks)
    assert "App crashes when saving a draft" in shown
    assert f"{zendesk_sandbox.url}/agent/tickets/{ticket['id']}" in shown
    assert len(slack_sandbox.calls("chat.postMessage")) == 1


HOSTILE_TITLE = "<!channel> quartz zebra crash <https://evil.example/login|Open ticket> <@U0ADMIN>"


def test_reporter_text_never_pings_or_disguises_links_in_slack(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    groups: dict[str, int],
) -> None:
    # Every path a crash report takes to Slack: the rule's notify text ({subject},
    # {app_version}), the card's title, fields and notification text, and a second
    # report joining its thread.
    for n in (1, 2):
        report = mobile_crash(
            f"ios:hostile-{n}",
            HOSTILE_TITLE,
            f"{HOSTILE_TITLE} app crashes on save",
            app_version="<!here>",
            crash_signature="hostile-crash",
        )
        file_now(redis, report)
    posted = [
        text
        for call in slack_sandbox.calls("chat.postMessage") + slack_sandbox.calls("chat.update")
        for text in (str(call.args.get("text", "")), json.dumps(call.args.get("blocks", "")))
    ]
    assert posted, "nothing reached Slack"
    for text in posted:
        for control in ("<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil.example"):
            assert control not in text, (control, text)
    assert any("&lt;!channel&gt; quartz zebra crash" in text for text in posted)
