"""The console through Flask's test client and the Slack sandbox's real sign-in: access,
CSRF, escaping, the pages' contents and the actions' audit."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from app import create_app
from integrations.queue.report_log import ReportFilter, ReportLog
from integrations.report import Report
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.settings import Settings
from rules.engine import evaluate
from rules.store import store_for
from workers.console import auth

ADMIN = "U0SUPPORT"  # a seeded sandbox user (Sam Support)
OUTSIDER = "U0REPORTER"


@pytest.fixture
def console_env(env: dict[str, str], slack_sandbox: SlackSandbox) -> dict[str, str]:
    return {
        **env,
        "SLACK_API_URL": slack_sandbox.api_url,
        "SLACK_CLIENT_ID": slack_sandbox.oidc.client_id,
        "SLACK_CLIENT_SECRET": slack_sandbox.oidc.client_secret,
        "SECRET_KEY": "k" * 40,
        "ADMIN_SLACK_USERS": ADMIN,
    }


@pytest.fixture
def console(console_env: dict[str, str], redis: Redis) -> Flask:
    return create_app(Settings.from_env("web", console_env))


@pytest.fixture
def browser(console: Flask) -> FlaskClient:
    return console.test_client()


def sign_in(browser: FlaskClient, user_id: str, next_path: str = "") -> TestResponse:
    """Through the sandbox's authorize page as a person would: pick the user, follow back."""
    start = browser.get("/admin/signin" + (f"?next={next_path}" if next_path else ""))
    assert start.status_code == 302
    authorize = start.headers["Location"]
    page = requests.get(authorize, timeout=10)
    assert "Sign in to the Sandbox workspace" in page.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    picked = requests.post(
        authorize.split("?")[0], data={**params, "user_id": user_id}, allow_redirects=False,
        timeout=10,
    )  # fmt: skip
    back = urlsplit(picked.headers["Location"])
    return browser.get(f"{back.path}?{back.query}")


def stored_report(redis: Redis, subject: str, description: str, **kw: object) -> Report:
    report = Report(
        source="slack_command",
        idempotency_key=f"console-test-{subject}",
        subject=subject,
        description=description,
        reporter={"name": "Ada Reporter", "slack_user_id": "U0REPORTER"},
        **kw,
    )
    decision = evaluate(report, store_for("rules/default.yml").current())
    ReportLog(redis).record(report, decision=decision.to_json(), state="queued", event="filing")
    return report


def test_without_a_session_pages_redirect_and_data_answers_401(browser: FlaskClient) -> None:
    page = browser.get("/admin/reports?tag=billing")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/admin/signin?next=")
    rows = browser.get("/admin/reports/rows")
    assert rows.status_code == 401
    assert rows.get_json()["error"] == "not_signed_in"
    assert browser.get("/admin/api/reports").status_code == 401
    replay = browser.post("/admin/dead-letters/replay-all")
    assert replay.status_code == 401


def test_an_allowed_user_signs_in_and_lands_where_they_were_going(browser: FlaskClient) -> None:
    back = sign_in(browser, ADMIN, next_path="/admin/health")
    assert back.status_code == 302
    assert back.headers["Location"] == "/admin/health"
    cookie = back.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Path=/admin" in cookie
    page = browser.get("/admin/health")
    assert page.status_code == 200
    assert "Signed in as Sam Support" in page.text


def test_a_user_not_allowed_is_told_so(browser: FlaskClient) -> None:
    answer = sign_in(browser, OUTSIDER)
    assert answer.status_code == 403
    assert "not allowed to use this console" in answer.text
    assert browser.get("/admin/reports").status_code == 302


def test_members_of_the_user_group_may_enter(
    console_env: dict[str, str], slack_sandbox: SlackSandbox, redis: Redis
) -> None:
    slack_sandbox.oidc.usergroups["S0TRIAGE"] = [OUTSIDER]
    env = {**console_env, "ADMIN_SLACK_USERS": "", "ADMIN_SLACK_USERGROUP": "S0TRIAGE"}
    browser = create_app(Settings.from_env("web", env)).test_client()
    assert sign_in(browser, OUTSIDER).status_code == 302
    assert "Ada Reporter" in browser.get("/admin/reports").text


def test_someone_removed_from_the_user_group_is_out_within_minutes(
    console_env: dict[str, str],
    slack_sandbox: SlackSandbox,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slack_sandbox.oidc.usergroups["S0TRIAGE"] = [OUTSIDER]
    env = {**console_env, "ADMIN_SLACK_USERS": "", "ADMIN_SLACK_USERGROUP": "S0TRIAGE"}
    browser = create_app(Settings.from_env("web", env)).test_client()
    assert sign_in(browser, OUTSIDER).status_code == 302
    slack_sandbox.oidc.usergroups["S0TRIAGE"] = []
    # Within RECHECK_SECONDS of the last look, the session goes on...
    assert browser.get("/admin/reports").status_code == 200
    # ...and at the next look it ends: the page asks to sign in, actions answer 401.
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0)
    assert browser.get("/admin/reports").status_code == 302
    assert browser.post("/admin/dead-letters/replay-all").status_code == 401


def test_a_session_ends_12_hours_after_sign_in_however_much_it_is_used(
    console_env: dict[str, str], browser: FlaskClient
) -> None:
    sign_in(browser, ADMIN)
    assert browser.get("/admin/health").status_code == 200
    with browser.session_transaction("/admin/health") as session:
        session["since"] -= auth.SESSION_HOURS * 3600 + 1
    assert browser.get("/admin/health").status_code == 302


def test_a_user_taken_off_admin_slack_users_is_out_at_their_next_request(
    console_env: dict[str, str], browser: FlaskClient, redis: Redis
) -> None:
    sign_in(browser, ADMIN)
    # The same cookie, presented to the hub restarted without them in the list.
    cookie = browser.get_cookie(auth.COOKIE_NAME, path="/admin")
    assert cookie is not None
    env = {**console_env, "ADMIN_SLACK_USERS": "U0SOMEONEELSE"}
    restarted = create_app(Settings.from_env("web", env)).test_client()
    restarted.set_cookie(auth.COOKIE_NAME, cookie.value, path="/admin")
    assert restarted.get("/admin/health").status_code == 302


def test_a_callback_with_a_forged_state_is_refused(browser: FlaskClient) -> None:
    browser.get("/admin/signin")
    answer = browser.get("/admin/signin/callback?code=sandbox-code-x&state=forged")
    assert answer.status_code == 400
    assert "stale" in answer.text
    assert browser.get("/admin/reports").status_code == 302


def test_the_next_page_is_never_another_site(browser: FlaskClient) -> None:
    back = sign_in(browser, ADMIN, next_path="https://evil.example/admin/")
    assert back.headers["Location"] == "/admin/reports"
    # Nor a header of its own: a line break in it is dropped, not a 500.
    again = sign_in(browser, ADMIN, next_path="/admin/%0d%0aX-Evil:1")
    assert again.status_code == 302 and again.headers["Location"] == "/admin/reports"


def test_a_post_without_the_csrf_token_is_403(browser: FlaskClient) -> None:
    sign_in(browser, ADMIN)
    refused = browser.post("/admin/rules/try", data={"text": "refund please"})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "csrf"
    page = browser.get("/admin/rules").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    tried = browser.post(
        "/admin/rules/try", data={"text": "I was charged twice, refund", "csrf_token": token[1]}
    )
    assert tried.status_code == 200
    assert "It would go to" in tried.text


def test_without_configuration_the_console_says_what_is_missing(
    env: dict[str, str], redis: Redis
) -> None:
    browser = create_app(Settings.from_env("web", env)).test_client()
    answer = browser.get("/admin/reports")
    assert answer.status_code == 503
    assert "SLACK_CLIENT_ID" in answer.get_json()["message"]


def test_a_client_id_without_a_secret_key_stops_the_web_process(env: dict[str, str]) -> None:
    from integrations.settings import ConfigError

    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env("web", {**env, "SLACK_CLIENT_ID": "123.456"})


def test_report_text_with_html_and_slack_markup_is_shown_as_text(
    browser: FlaskClient, redis: Redis
) -> None:
    report = stored_report(
        redis, "<script>alert(1)</script> export", "<b>bold</b> <@U0ENGINEER> *stars*"
    )
    sign_in(browser, ADMIN)
    listing = browser.get("/admin/reports").text
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt; export" in listing
    page = browser.get(f"/admin/reports/{report.key_digest}").text
    assert "&lt;b&gt;bold&lt;/b&gt; &lt;@U0ENGINEER&gt; *stars*" in page
    assert "<b>bold</b>" not in page


def test_one_report_shows_the_rule_that_routed_it_and_the_words(
    browser: FlaskClient, redis: Redis
) -> None:
    report = stored_report(redis, "I was charged twice", "refund my invoice please")
    sign_in(browser, ADMIN)
    page = browser.get(f"/admin/reports/{report.key_digest}").text
    assert "Billing" in page
    assert re.search(r"rule \d+ &#34;[^<]*[Bb]illing", page), page
    assert "taxonomy" in page and "refund" in page
    assert "accepted" in page and "filing" in page


def test_reports_filter_by_tag_source_and_text(browser: FlaskClient, redis: Redis) -> None:
    stored_report(redis, "I was charged twice", "refund my invoice")
    stored_report(redis, "the app crashes on launch", "crash every time")
    sign_in(browser, ADMIN)
    billing = browser.get("/admin/reports?tag=billing").text
    assert "charged twice" in billing and "crashes on launch" not in billing
    text = browser.get("/admin/reports?text=LAUNCH").text
    assert "crashes on launch" in text and "charged twice" not in text
    mobile = browser.get("/admin/api/reports?source=mobile").get_json()
    assert mobile["reports"] == []
    rows = browser.get("/admin/reports/rows").text
    assert rows.count("<tr>") == 2


def test_the_report_log_is_bounded(redis: Redis) -> None:
    log = ReportLog(redis, max_reports=3)
    for n in range(5):
        report = Report(
            source="mobile", idempotency_key=f"k{n}", subject=f"report {n}", description="x"
        )
        log.record(report, decision=None, state="queued", event="filing", now=1000.0 + n)
    assert log.count() == 3
    subjects = [r.subject for r in log.page(ReportFilter()).rows]
    assert subjects == ["report 4", "report 3", "report 2"]
    assert log.page(ReportFilter(source="mobile")).rows[-1].subject == "report 2"


@pytest.fixture
def dead_letter(redis: Redis) -> Iterator[str]:
    """A job Zendesk refused (422), run by an rq worker: a dead letter as the hub keeps them."""
    from integrations.queue import TICKETS, enqueue_once
    from integrations.queue.jobs import JobSpec
    from tests.jobs import run_jobs

    enqueued = enqueue_once(redis, JobSpec("tests.jobs.refuse", TICKETS, "t"), "r1", key="r1")
    run_jobs(redis, (TICKETS,))
    yield enqueued.job_id


def test_a_dead_letter_is_replayed_once_and_the_page_says_who(
    browser: FlaskClient, redis: Redis, dead_letter: str
) -> None:
    from integrations.queue import TICKETS, queue

    sign_in(browser, ADMIN)
    listing = browser.get("/admin/dead-letters").text
    assert dead_letter in listing and "tests.jobs.refuse" in listing
    detail = browser.get(f"/admin/dead-letters/{dead_letter}").text
    assert "Zendesk refused to create ticket (422)" in detail
    # What Zendesk answered, shown as text.
    assert "What the service answered" in detail and "{&#34;error&#34;:&#34;x&#34;}" in detail
    token = re.search(r'name="csrf_token" value="([^"]+)"', detail)
    assert token
    first = browser.post(f"/admin/dead-letters/{dead_letter}/replay", data={"csrf_token": token[1]})
    again = browser.post(f"/admin/dead-letters/{dead_letter}/replay", data={"csrf_token": token[1]})
    assert first.status_code == again.status_code == 303
    assert queue(redis, TICKETS).job_ids.count(dead_letter) == 1
    after = browser.get(f"/admin/dead-letters/{dead_letter}").text
    assert "already being replayed" in after
    assert "Sam Support (U0SUPPORT)" in after and "replayed" in after


def test_no_page_shows_a_secret(browser: FlaskClient, console_env: dict[str, str]) -> None:
    sign_in(browser, ADMIN)
    secrets_ = [console_env[k] for k in ("SECRET_KEY", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN")]
    for path in ("/admin/reports", "/admin/rules", "/admin/health", "/admin/tags",
                 "/admin/dead-letters"):  # fmt: skip
        page = browser.get(path)
        assert page.status_code == 200, path
        assert not any(s in page.text for s in secrets_), path


def test_the_app_manifest_has_the_sign_in_redirect_and_scopes(
    browser: FlaskClient, repo_root: Path
) -> None:
    manifest = yaml.safe_load((repo_root / "slack-app-manifest.yml").read_text())
    [redirect] = manifest["oauth_config"]["redirect_urls"]
    assert redirect == "https://hub.example.com/admin/signin/callback"
    # The callback the manifest names is the console's: without a sign-in under way it is stale.
    answer = browser.get(redirect.removeprefix("https://hub.example.com") + "?code=x&state=y")
    assert answer.status_code == 400 and "stale" in answer.text
    assert set(manifest["oauth_config"]["scopes"]["user"]) == {"openid", "email", "profile"}
    assert "usergroups:read" in manifest["oauth_config"]["scopes"]["bot"]


def test_issues_show_groups_and_queue_a_split_once(browser: FlaskClient, redis: Redis) -> None:
    from integrations.queue import NOTIFY, queue

    # A group as workers/grouping.py keeps it, two tickets in the related index.
    redis.hset(
        "hub:grouping:group:g1",
        mapping={"subject": "Export <broken>", "tags": '["export"]', "problem": "30"},
    )
    redis.zadd("hub:related:group:g1", {"11": 1, "12": 2})
    for ticket, subject in ((11, "Export fails"), (12, "Export does nothing")):
        redis.hset(f"hub:grouping:ticket:{ticket}", mapping={"subject": subject, "group": "g1"})
    sign_in(browser, ADMIN)
    page = browser.get("/admin/issues").text
    assert "Export &lt;broken&gt;" in page and "2 reports" in page
    assert "#11" in page and "Export does nothing" in page and "#30" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    for _ in range(2):  # a double click
        answer = browser.post("/admin/issues/split", data={"ticket": "12", "csrf_token": token[1]})
        assert answer.status_code == 303
    jobs = [j for j in queue(redis, NOTIFY).jobs if (j.func_name or "").endswith("split_job")]
    assert [j.args for j in jobs] == [(12, None, ADMIN, "Sam Support")]
    after = browser.get("/admin/issues").text
    assert "already queued" in after and "Sam Support (U0SUPPORT)" in after
    bad = browser.post("/admin/issues/merge", data={"ticket": "x", "csrf_token": token[1]})
    assert bad.status_code == 400 and "must be numbers" in bad.get_json()["message"]


def test_the_intake_job_keeps_the_report_and_its_decision(
    redis: Redis,
    worker_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: dict[str, int],
) -> None:
    from integrations.queue import enqueue_once
    from integrations.queue.jobs import FILE_REPORT
    from tests.jobs import run_jobs

    report = Report(
        source="mobile",
        idempotency_key="intake-console-1",
        subject="Charged twice",
        description="please refund my invoice",
        reporter={"name": "Ada", "email": "ada@example.com"},
    )
    enqueue_once(redis, FILE_REPORT, report.to_job(), key=report.external_id)
    run_jobs(redis)
    [ticket] = zendesk_sandbox.tickets.values()
    row = ReportLog(redis).get(report.key_digest)
    assert row is not None
    assert (row.state, row.ticket_id, row.group) == ("filed", ticket["id"], "Billing")
    assert row.ticket_url == f"{worker_env['ZENDESK_URL']}/agent/tickets/{ticket['id']}"
    assert [event for _, event, _ in row.timeline] == [
        "accepted",
        "filing, attempt 1",
        f"ticket #{ticket['id']} created",
        "grouped",
    ]
    # Grouping says where the report went (a first report starts its own issue).
    assert row.timeline[-1][2].startswith("a new issue ")
    assert "billing" in row.tags


def rows_with(page: str, text: str) -> list[str]:
    """The Reports table's rows (their cells' text, " | " between) that contain `text`."""
    shown = []
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        shown.append(" | ".join(re.sub(r"<[^>]+>", "", cell).strip() for cell in cells))
    return [row for row in shown if text in row]


def accept_from_slack(browser: FlaskClient, slack_sandbox: SlackSandbox) -> str:
    """`/feedback` as Slack sends it, twice (Slack retries when the answer is slow)."""
    from integrations.slack.testing import feedback_body, signed_headers
    from tests.conftest import SIGNING_SECRET

    text = "Charged twice for one order, please refund my invoice"
    body = feedback_body(7, text, user_name="ada", response_url=slack_sandbox.response_url("c7"))
    for _ in range(2):
        answer = browser.post(
            "/slack/commands", data=body, headers=signed_headers(SIGNING_SECRET, body)
        )
        assert answer.status_code == 200 and "could not" not in answer.text.lower()
    return "slack_command | ada | Charged twice for one order, please refund my invoice"


def accept_from_the_app(browser: FlaskClient, slack_sandbox: SlackSandbox) -> str:
    """A bug report from the mobile app, sent twice with its Idempotency-Key."""
    report = {
        "title": "Charged twice for one order",
        "description": "please refund my invoice",
        "reporter": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "device": {"os": "iOS", "os_version": "17.4"},
    }
    headers = {"Authorization": "Bearer mobile-key-ios-0000", "Idempotency-Key": "order-7"}
    for _ in range(2):
        answer = browser.post("/api/v1/bug-reports", json=report, headers=headers)
        assert answer.status_code in (200, 202)
        assert (answer.get_json() or {}).get("status") == "queued"
    return "mobile | Ada Lovelace | Charged twice for one order"


@pytest.mark.parametrize("accept", [accept_from_slack, accept_from_the_app])
def test_an_accepted_report_is_listed_as_queued_before_a_worker_takes_it(
    accept: Callable[[FlaskClient, SlackSandbox], str],
    browser: FlaskClient,
    redis: Redis,
    slack_sandbox: SlackSandbox,
    zendesk_sandbox: ZendeskSandbox,
    worker_env: dict[str, str],
    groups: dict[str, int],
) -> None:
    from tests.jobs import run_jobs

    shown = accept(browser, slack_sandbox)
    sign_in(browser, ADMIN)

    # No worker has run: the report is listed, once, with what was known when it came in.
    waiting = browser.get("/admin/reports").text
    assert "1 waiting in the tickets queue" in waiting
    [row] = rows_with(waiting, shown)
    assert row.endswith("| queued | - | - | -"), row
    source = shown.split(" | ")[0]
    for query in (f"status=queued&source={source}", "text=refund", "text=ada"):
        assert len(rows_with(browser.get(f"/admin/reports?{query}").text, shown)) == 1, query
    assert rows_with(browser.get("/admin/reports?status=filed").text, shown) == []
    [listed] = browser.get("/admin/api/reports?status=queued").get_json()["reports"]
    page = browser.get(f"/admin/reports/{listed['id']}").text
    assert "Not routed yet" in page and "accepted" in page

    run_jobs(redis)

    # Filed: the same row, once, with the ticket and where the rules sent it.
    [ticket] = zendesk_sandbox.tickets.values()
    [row] = rows_with(browser.get("/admin/reports").text, shown)
    assert row.endswith(f"| filed | #{ticket['id']} | Billing | normal"), row
    assert rows_with(browser.get("/admin/reports?status=queued").text, shown) == []
    page = browser.get(f"/admin/reports/{listed['id']}").text
    timeline = page.split('<table class="timeline">')[1].split("</table>")[0]
    events = re.findall(r"<tr><td>[^<]*</td><td>([^<]+?)(?: <span|</td>)", timeline)
    assert events[:3] == ["accepted", "filing, attempt 1", f"ticket #{ticket['id']} created"]


def test_health_says_what_a_person_needs(browser: FlaskClient, redis: Redis) -> None:
    redis.hset("hub:ratelimit:zendesk", mapping={"remaining": "17", "limit": "700"})
    sign_in(browser, ADMIN)
    page = browser.get("/admin/health").text
    for queue_name in ("tickets", "events", "notify"):
        assert f"<td>{queue_name}</td>" in page
    assert "No worker is alive" in page
    assert re.search(r"<td>zendesk</td><td class=\"num\">17</td><td class=\"num\">700</td>", page)
    assert "Memory used" in page


def test_rules_page_shows_a_broken_reload_and_keeps_the_good_rules(
    console_env: dict[str, str], redis: Redis, tmp_path: Path, repo_root: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text((repo_root / "rules" / "default.yml").read_text())
    browser = create_app(
        Settings.from_env("web", {**console_env, "RULES_PATH": str(rules)})
    ).test_client()
    sign_in(browser, ADMIN)
    good = browser.get("/admin/rules").text
    assert "No problems." in good and "Billing questions go to Billing" in good
    rules.write_text("intake:\n  - name: x\n    when: {platfrom: ios}\n    then: [{stop: true}]\n")
    store_for(str(rules)).reload()
    broken = browser.get("/admin/rules").text
    assert "could not be loaded; the last good rules are in force" in broken
    assert "platfrom" in broken and "Billing questions go to Billing" in broken


def test_tags_page_compares_this_week_with_last(browser: FlaskClient, redis: Redis) -> None:
    from datetime import UTC, datetime, timedelta

    from integrations.queue.tag_counts import count_report

    now = datetime.now(UTC)
    for n, when in enumerate((now, now, now - timedelta(days=7))):
        count_report(
            redis, ticket_id=100 + n, received_at=when, tags=["billing"],
            taxonomy_tags={"billing"}, group="Billing", source="mobile",
            subject="charged", text="charged",
        )  # fmt: skip
    sign_in(browser, ADMIN)
    page = browser.get("/admin/tags").text
    row = re.search(r'<tr data-tag="billing">(.*?)</tr>', page, re.S)
    assert row
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row[1])
    assert cells == ["2", "1", "+1"]
    assert "billing: 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2 per week" in row[1]


def test_one_report_shows_its_related_candidates_and_first_reply_clock(
    browser: FlaskClient, redis: Redis
) -> None:
    import json
    import time

    from integrations.queue.timers import Timer, TimerStore

    report = Report(
        source="mobile", idempotency_key="related-1", subject="Export broken", description="x"
    )
    ReportLog(redis).record(report, decision=None, state="filed", event="ticket", ticket_id=41)
    suggestion = {
        "ticket_id": 7,
        "subject": "Export <fails>",
        "url": "",
        "evidence": "shared words: export · similarity 0.61",
    }
    redis.hset(
        "hub:grouping:ticket:41",
        mapping={"group": "g9", "joined": "0", "suggestions": json.dumps([suggestion])},
    )
    now = time.time()
    TimerStore(redis).start(
        Timer(
            ticket_id=41, subject="Export broken", group="Support", target="urgent: 1h",
            seconds=3600, accepted=now, nudge_at=None, breach_at=now + 3600,
            nudge_channel=None, breach_channel=None, breach_tags=(), url="",
        )
    )  # fmt: skip
    sign_in(browser, ADMIN)
    page = browser.get(f"/admin/reports/{report.key_digest}").text
    assert "In its own group" in page
    assert "#7" in page and "Export &lt;fails&gt;" in page
    assert "shared words: export · similarity 0.61" in page
    assert "Target urgent: 1h: the clock runs since" in page


def test_reports_older_than_the_age_limit_leave_the_list(redis: Redis) -> None:
    log = ReportLog(redis, days=1)
    day = 24 * 3600
    for n, at in enumerate((1000.0, 1000.0 + 2 * day + 7200)):
        report = Report(source="mobile", idempotency_key=f"a{n}", subject=f"r{n}", description="x")
        report = report.model_copy(update={"received_at": datetime.fromtimestamp(at, UTC)})
        log.record(report, decision=None, state="queued", event="filing", now=at)
    assert [r.subject for r in log.page(ReportFilter(source="mobile")).rows] == ["r1"]
    assert log.count() == 1


def test_behind_an_https_router_the_cookie_is_secure_and_slack_returns_to_https(
    browser: FlaskClient,
) -> None:
    start = browser.get("/admin/signin", headers={"X-Forwarded-Proto": "https"})
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://localhost/admin/signin/callback"]
    assert query["scope"] == ["openid,email,profile"]
    assert "Secure" in start.headers["Set-Cookie"]
    plain = browser.get("/admin/signin")
    assert "Secure" not in plain.headers["Set-Cookie"]
