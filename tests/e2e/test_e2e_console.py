"""The triage console in a real browser (Debian's chromium, headless, driven by Playwright),
through the Procfile's gunicorn and worker and the sandboxes: sign in with Slack, see a
report arrive, read why it was routed, replay a dead letter, see the tag counted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, expect
from redis import Redis

from app import cli
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from tests.running_hub import RunningHub, running_hub
from workers.deadletters import dead_letters

pytestmark = pytest.mark.e2e

WAIT_MS = 60_000


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    slack_sandbox: SlackSandbox,
    groups: dict[str, int],
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningHub]:
    env = {
        **sandbox_env,
        "SLACK_CLIENT_ID": slack_sandbox.oidc.client_id,
        "SLACK_CLIENT_SECRET": slack_sandbox.oidc.client_secret,
        "SECRET_KEY": "e2e-console-secret-key-0123456789abcdef",
        "ADMIN_SLACK_USERS": "U0SUPPORT",
    }
    with running_hub(env, redis, repo_root, tmp_path) as hub:
        # What `feedback-hub dev` writes for `feedback-hub simulate`.
        state = tmp_path / "dev.json"
        state.write_text(
            json.dumps(
                {
                    "hub_url": hub.url,
                    "slack_signing_secret": env["SLACK_SIGNING_SECRET"],
                    "slack_sandbox_url": slack_sandbox.url,
                }
            )
        )
        monkeypatch.setenv("FEEDBACK_HUB_DEV_STATE", str(state))
        yield hub


def simulate_feedback(text: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "feedback", text], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "-> 200" in result.output


def sign_in(page: Page, hub: RunningHub) -> None:
    page.goto(f"{hub.url}/admin/")
    # The Slack sandbox's sign-in page: pick who you are.
    expect(page.get_by_role("heading", name="Sign in to the Sandbox workspace")).to_be_visible()
    page.get_by_role("button", name=re.compile("Sam Support")).click()
    expect(page.get_by_text("Signed in as Sam Support")).to_be_visible()
    expect(page.get_by_role("heading", name="Reports")).to_be_visible()


def test_triage_in_the_browser(
    hub: RunningHub, browser: Browser, zendesk_sandbox: ZendeskSandbox, redis: Redis
) -> None:
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    sign_in(page, hub)

    # A report filed in Slack appears on the open Reports page, without a reload.
    simulate_feedback("I was charged twice this month, please refund")
    row = page.locator("#report-rows tr", has_text="charged twice")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text("filed", timeout=WAIT_MS)
    expect(row).to_contain_text("Billing")

    # Its page says which rule routed it, and the words the taxonomy matched.
    row.get_by_role("link", name=re.compile("charged twice")).click()
    explanation = page.locator("table.explanation")
    expect(explanation).to_contain_text("group")
    expect(explanation).to_contain_text("Billing")
    expect(explanation).to_contain_text(re.compile(r'rule \d+ "[^"]*'))
    expect(page.get_by_text(re.compile("taxonomy"))).not_to_have_count(0)
    expect(page.locator("table.timeline")).to_contain_text("ticket #")

    # Zendesk refuses the next one (422): a dead letter. Replayed once Zendesk is fixed,
    # it becomes a ticket.
    zendesk_sandbox.set_faults(error_rate=1.0, error_status=422)
    simulate_feedback("The export button does nothing on the reports page")
    hub.eventually(lambda: dead_letters(redis), "the refused report became a dead letter")
    zendesk_sandbox.clear_faults()
    page.get_by_role("link", name="Dead letters").click()
    letter = page.locator("tr", has_text="export button")
    expect(letter).to_be_visible()
    letter.get_by_role("button", name="Replay").click()
    expect(page.locator(".flash")).to_contain_text("queued again")
    expect(page.locator("table.audit")).to_contain_text("Sam Support (U0SUPPORT)")

    def export_ticket() -> list[dict[str, object]]:
        return [
            t
            for t in zendesk_sandbox.tickets.values()
            if "export button" in str(t.get("subject", ""))
        ]

    hub.eventually(export_ticket, "the replayed report became a ticket")
    page.get_by_role("link", name="Reports").click()
    replayed = page.locator("#report-rows tr", has_text="export button")
    expect(replayed).to_contain_text("filed", timeout=WAIT_MS)

    # The Tags page counts this week's billing report in its chart.
    page.get_by_role("link", name="Tags").click()
    billing = page.locator("tr[data-tag='billing']")
    expect(billing.locator("td.this-week")).to_have_text("1")
    expect(billing.locator("svg.spark rect.now")).to_have_count(1)
    page.close()
