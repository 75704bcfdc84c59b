"""The Slack sandbox's page shows messages roughly as Slack would, the JSON one click away."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from slack_sdk import WebClient

from integrations.sandbox import SlackSandbox
from integrations.sandbox.slack_page import Names, mrkdwn

CARD: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Export fails <3 times>"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Ticket #12* _high_ ~low~ `code` <!here>"},
        "fields": [
            {"type": "mrkdwn", "text": "*Group*\nBilling"},
            {"type": "mrkdwn", "text": "*Reporter*\n<@U0REPORTER>"},
        ],
        "accessory": {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open"},
            "url": "https://acme.zendesk.com/agent/tickets/12",
        },
    },
    {"type": "divider"},
    {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "filed by rule <#C0BILLING|billing>"}],
    },
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_id": "acknowledge",
                "value": "12",
            }
        ],
    },
]


@pytest.fixture
def slack(slack_sandbox: SlackSandbox) -> WebClient:
    return WebClient(token=slack_sandbox.token, base_url=slack_sandbox.api_url)


def page(sandbox: SlackSandbox) -> str:
    answer = requests.get(f"{sandbox.url}/", timeout=5)
    assert answer.status_code == 200
    return answer.text


def visible(html: str) -> str:
    """Roughly what a person reads: the page without its tags and JSON disclosures."""
    html = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
    html = re.sub(r"<(style|head)>.*?</\1>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_card_shows_its_header_text_fields_buttons_and_context(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    slack.chat_postMessage(channel="#eng-billing", text="Ticket #12", blocks=CARD)

    html = page(slack_sandbox)
    assert "<h4>Export fails &lt;3 times&gt;</h4>" in html
    assert "<b>Ticket #12</b> <i>high</i> <s>low</s> <code>code</code>" in html
    assert '<span class="mention">@here</span>' in html
    assert '<div class="field"><b>Group</b><br>Billing</div>' in html
    assert '<span class="mention">@Ada Reporter</span>' in html  # a seeded user, by name
    assert (
        '<a class="button " href="https://acme.zendesk.com/agent/tickets/12"'
        ' rel="noopener noreferrer">Open</a>'
    ) in html
    assert '<span class="mention">#billing</span>' in html
    assert re.search(r'<button class="primary"[^>]*>Acknowledge</button>', html)
    assert "<hr>" in html
    # The blocks' JSON is not what a person reads first, but it is one click away.
    assert '"action_id"' not in visible(html)
    assert re.search(r"<details><summary>JSON</summary><pre>\{[^<]*&#34;action_id&#34;", html)


def test_threads_are_under_their_message(slack: WebClient, slack_sandbox: SlackSandbox) -> None:
    first = slack.chat_postMessage(channel="#eng-web", text="Export broken")
    slack.chat_postMessage(channel="#eng-web", thread_ts=first["ts"], text="Seen by *3* people")
    slack.chat_postMessage(channel="#eng-web", thread_ts=first["ts"], text="And a fourth")

    text = visible(page(slack_sandbox))
    assert "#eng-web" in text
    assert re.search(r"Export broken .*2 replies .*Seen by 3 people .*And a fourth", text)


def test_response_url_posts_are_rendered_not_raw_json(slack_sandbox: SlackSandbox) -> None:
    body = {
        "response_type": "ephemeral",
        "replace_original": True,
        "text": "Ticket #7 filed",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "<https://x.example/7|Ticket #7> filed"},
            }
        ],
    }
    requests.post(slack_sandbox.response_url("cmd-7"), json=body, timeout=5)

    html = page(slack_sandbox)
    assert '<a href="https://x.example/7" rel="noopener noreferrer">Ticket #7</a> filed' in html
    text = visible(html)
    assert "response_type ephemeral · replace_original" in text
    assert '"blocks"' not in text
    assert "&#34;replace_original&#34;: true" in html  # in the JSON disclosure


def test_what_a_reporter_wrote_is_escaped_everywhere(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    hostile = '<script>alert(1)</script> <img src=x onerror="alert(2)"> &lt;b&gt;'
    slack.chat_postMessage(
        channel="#eng-web",
        text=hostile,
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": hostile}}],
    )
    slack.chat_postEphemeral(channel="C0ENG", user="U0REPORTER", text=hostile)
    requests.post(slack_sandbox.response_url("r"), json={"text": hostile}, timeout=5)
    slack.chat_postMessage(
        channel="#eng-web",
        text="x",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Go"},
                        "url": "javascript:alert(3)",
                    }
                ],
            }
        ],
    )

    html = page(slack_sandbox)
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "javascript:" not in html.split("<details>")[0]
    assert 'href="javascript' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("a *b* c", "a <b>b</b> c"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("```x = 1\ny = 2```", "<pre>x = 1\ny = 2</pre>"),
        ("<mailto:a@b.example|write>", '<a href="mailto:a@b.example" rel="noopener noreferrer">'),
        ("<fixed> &amp; <U0X>", "&lt;fixed&gt; &amp; &lt;U0X&gt;"),
        ("<!subteam^S0ENG|@eng> <!date^1392734382^{date}|Feb 18>", "@eng</span>"),
        ("line\nbreak", "line<br>break"),
    ],
)
def test_mrkdwn(text: str, html: str) -> None:
    assert html in mrkdwn(text, Names({}, {}))
