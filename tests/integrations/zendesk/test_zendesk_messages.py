"""Ticket wording: subject shortening and the body's context block."""

from __future__ import annotations

from integrations.report import Report
from integrations.zendesk.messages import shorten, subject, ticket_body


def make(**kw: object) -> Report:
    base: dict[str, object] = {
        "source": "slack_command",
        "idempotency_key": "k",
        "subject": "Export button does nothing",
        "description": "Export button does nothing when I click it.",
    }
    return Report.model_validate({**base, **kw})


def test_shorten_cuts_on_a_word_boundary() -> None:
    text = "the export button does nothing when the report has more than ten thousand rows"
    out = shorten(text, 40)
    assert len(out) <= 40
    assert out.endswith("\u2026")
    assert text.startswith(out[:-1])
    assert not out[:-1].endswith(" ")
    assert shorten("short", 40) == "short"


def test_subject_is_one_line() -> None:
    assert subject(make(subject="Export\n  broken\tagain")) == "Export broken again"


def test_body_has_description_then_context() -> None:
    body = ticket_body(
        make(context={"Workspace": "acme", "Channel": "#support"}), missing_attachments=["a.png"]
    )
    assert body.startswith("Export button does nothing when I click it.")
    assert "Workspace : acme\nChannel   : #support" in body
    assert "a.png" in body
    assert body.endswith("Filed by feedback-hub from Slack /feedback.")
