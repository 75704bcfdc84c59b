"""The Slack sandbox page in a real browser: a card reads as in Slack, its JSON a click away."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Browser, Dialog, expect
from slack_sdk import WebClient

from integrations.sandbox import SlackSandbox
from tests.integrations.sandbox.test_slack_page import CARD

pytestmark = pytest.mark.e2e


def test_a_person_reads_the_card_and_opens_its_json(
    browser: Browser, slack_sandbox: SlackSandbox
) -> None:
    slack = WebClient(token=slack_sandbox.token, base_url=slack_sandbox.api_url)
    first = slack.chat_postMessage(channel="#eng-billing", text="Ticket #12", blocks=CARD)
    slack.chat_postMessage(
        channel="#eng-billing", thread_ts=first["ts"], text='<script>alert("x")</script> too'
    )
    requests.post(slack_sandbox.response_url("cmd"), json={"text": "Ticket #7 *filed*"}, timeout=5)
    page = browser.new_page()
    dialogs: list[str] = []

    def dialog(opened: Dialog) -> None:
        dialogs.append(opened.message)
        opened.dismiss()

    page.on("dialog", dialog)
    page.goto(f"{slack_sandbox.url}/")

    expect(page.get_by_role("heading", name="#eng-billing")).to_be_visible()
    expect(page.get_by_role("heading", name="Export fails <3 times>")).to_be_visible()
    expect(page.locator("b", has_text="Ticket #12")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    expect(page.get_by_role("link", name="Open")).to_have_attribute(
        "href", "https://acme.zendesk.com/agent/tickets/12"
    )
    expect(page.get_by_text("@Ada Reporter")).to_be_visible()
    expect(page.get_by_text("1 reply")).to_be_visible()
    expect(page.get_by_text('<script>alert("x")</script> too')).to_be_visible()
    expect(page.locator("b", has_text="filed")).to_be_visible()  # the response_url post

    card_json = page.locator("details").first.locator("pre")
    expect(card_json).to_be_hidden()
    page.locator("details").first.get_by_text("JSON").click()
    expect(card_json).to_be_visible()
    expect(card_json).to_contain_text('"action_id": "acknowledge"')
    assert dialogs == []
