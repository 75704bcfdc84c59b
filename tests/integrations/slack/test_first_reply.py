"""The wording of nudges and breaches: escaped, within Slack's limits, and never a reporter's."""

from __future__ import annotations

from dataclasses import replace

from integrations.slack.first_reply import breach_message, nudge_message
from tests.integrations.queue.test_timers import NOW, a_timer


def test_a_long_nudge_list_stays_within_slacks_section_limit() -> None:
    timers = [
        a_timer(i, subject="<@U123> " + "x" * 300, breach_at=NOW + 3600 + i) for i in range(45)
    ]
    message = nudge_message(timers, NOW + 2700)
    sections = [b["text"]["text"] for b in message["blocks"]]
    assert sections[0].startswith(":hourglass_flowing_sand: *45 reports close to")
    assert all(len(text) <= 3000 for text in sections)
    listed = "\n".join(sections[1:])
    assert listed.count("• <https://example.zendesk.com/agent/tickets/") == 30
    assert "…and 15 more (`feedback-hub watch` lists them all)" in listed
    assert "&lt;@U123&gt;" in listed and "<@U123>" not in listed
    assert "15 min left" in listed


def test_a_breach_message_says_who_answered_and_after_how_long() -> None:
    timer = a_timer(group="Billing & Accounts", target="Everything else within an hour")
    assert (
        "No first reply within the target: Everything else within an hour"
        in (breach_message(timer)["text"])
    )
    answered = replace(timer, state="answered", stopped_at=NOW + 72 * 60, answered_by="Sam <b>")
    text = breach_message(answered)["blocks"][0]["text"]["text"]
    assert text == (
        ":white_check_mark: Answered after 72 min by Sam &lt;b&gt; "
        "(target: Everything else within an hour)"
    )
    assert "Billing &amp; Accounts" in breach_message(answered)["blocks"][1]["text"]["text"]


def test_an_empty_nudge_list_does_not_say_nothing_is_waiting() -> None:
    # Reports past their target leave the list unanswered: the message says both ways out.
    text = nudge_message([], NOW)["text"]
    assert text.startswith(":white_check_mark: No report is close to its first-reply target")
    assert "answered or has passed it" in text
