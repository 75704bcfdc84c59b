"""Slack text to subject, description and tags; which response_urls are followed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.settings import Settings
from integrations.slack import messages
from integrations.slack.api import SlackApi
from integrations.slack.reports import hashtags, plain_text, subject_line


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("ping <@U024BE7LH|bob> about it", "ping @bob about it"),
        ("ping <@U024BE7LH>", "ping @U024BE7LH"),
        ("see <#C024BE7LR|general>", "see #general"),
        ("<!here> it is down", "@here it is down"),
        (
            "<https://example.com/a?b=1|the report> fails",
            "the report (https://example.com/a?b=1) fails",
        ),
        ("<https://example.com>", "https://example.com"),
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
    ],
)
def test_plain_text_spells_out_slack_formatting(slack: str, plain: str) -> None:
    assert plain_text(slack) == plain


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("export is broken #export #Reports #export", ["export", "reports", "export"]),
        ("issue #123 again", []),
        ("in <#C024BE7LR|general> and <https://x.example/#anchor>", []),
        ("it&#39;s broken", []),
        ("#ios-app crashes, see #crash_2", ["ios-app", "crash_2"]),
        ("mail me@example.com#frag", []),
    ],
)
def test_hashtags_are_what_people_typed(text: str, tags: list[str]) -> None:
    assert hashtags(text) == tags


def test_subject_is_the_first_line_cut_on_a_word_boundary() -> None:
    first = "The export button on the monthly reports page does nothing when the list is very long"
    subject = subject_line(f"\n   {first}  \nsecond line")
    assert (
        subject
        == "The export button on the monthly reports page does nothing when the list is\u2026"
    )
    assert subject_line("short\nrest") == "short"
    assert subject_line("   \n ") == ""


@given(st.text(min_size=0, max_size=400))
def test_subject_is_one_line_of_at_most_80_characters(text: str) -> None:
    subject = subject_line(text)
    assert len(subject) <= 80
    assert "\n" not in subject and "\r" not in subject


def test_modal_metadata_round_trips() -> None:
    stored = messages.modal_metadata(
        channel_id="C1", channel_name="general", team_domain="acme", response_url="https://x"
    )
    assert len(stored) < 3000  # Slack's cap on private_metadata
    assert messages.read_modal_metadata(stored) == {
        "channel_id": "C1",
        "channel_name": "general",
        "team_domain": "acme",
        "response_url": "https://x",
    }
    assert messages.read_modal_metadata("not json")["response_url"] == ""


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/commands/T1/2/abc", True),
        ("https://hooks.slack.com:443/app/T1/2/abc", True),
        ("http://127.0.0.1:8765/response/abc", True),  # the host of SLACK_API_URL
        ("http://hooks.slack.com/commands/T1/2/abc", False),
        ("https://hooks.slack.com.evil.example/commands", False),
        ("https://hooks.slack.com@evil.example/commands", False),
        ("https://hooks.slack.com:8443/commands", False),
        ("https://evil.example/?https://hooks.slack.com/", False),
        ("http://127.0.0.1:8766/response/abc", False),
        ("https://127.0.0.1:8765/response/abc", False),
        ("", False),
        ("hooks.slack.com/commands", False),
    ],
)
def test_response_url_allowlist(url: str, allowed: bool) -> None:
    settings = Settings(slack_bot_token="xoxb-x", slack_api_url="http://127.0.0.1:8765/api/")
    assert SlackApi(settings).response_url_allowed(url) is allowed


def test_a_copy_with_another_key_is_another_report() -> None:
    from integrations.report import Report

    first = Report(source="slack_command", idempotency_key="k-1", subject="s", description="d")
    digest = first.key_digest  # computed, and kept for its key
    again = first.model_copy(update={"idempotency_key": "k-2"})
    assert again.key_digest != digest == first.key_digest
    assert (
        again.external_id == Report(**{**first.model_dump(), "idempotency_key": "k-2"}).external_id
    )
