"""The grouping policy and wording (pure): when a group gets its problem ticket, what it says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.report import Report
from integrations.slack.cards import joined_note, problem_solved_note
from integrations.zendesk.gateway import Ticket
from integrations.zendesk.messages import MEMBERS_LISTED, problem_body
from rules.related import Evidence, Match
from workers.grouping import evidence_line, indexed_doc, needs_problem, problem_external_id


@pytest.mark.parametrize(
    ("size", "threshold", "forced", "has_problem", "expected"),
    [
        (1, 3, False, False, False),
        (2, 3, False, False, False),
        (3, 3, False, False, True),
        (7, 3, False, False, True),
        (1, 1, False, False, True),
        # A rule's force_problem opens one for a single report.
        (1, 3, True, False, True),
        # Never a second problem for the same group.
        (3, 3, False, True, False),
        (9, 3, True, True, False),
    ],
)
def test_a_group_gets_its_problem_at_the_threshold_or_when_a_rule_forces_it(
    size: int, threshold: int, forced: bool, has_problem: bool, expected: bool
) -> None:
    assert needs_problem(size, threshold, forced=forced, has_problem=has_problem) is expected


def test_the_problem_external_id_is_the_groups() -> None:
    assert problem_external_id("g4711") == "feedback-hub-problem-g4711"
    assert problem_external_id("g4711") == problem_external_id("g4711")
    assert problem_external_id("g4711") != problem_external_id("g4712")


def test_the_index_sees_subject_description_signature_platform_and_version() -> None:
    received = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    report = Report.model_validate(
        {
            "source": "mobile",
            "idempotency_key": "ios:crash-1",
            "reporter": {"email": "j@acme.test"},
            "subject": "App crashes when saving a draft",
            "description": "It crashes every time",
            "crash_signature": "EXC_BAD_ACCESS DraftStore.save",
            "fields": {"platform": "ios", "app_version": "5.2.1"},
            "received_at": received.isoformat(),
        }
    )
    ticket = Ticket(id=42, url="https://acme.zendesk.com/agent/tickets/42", status="new")
    doc = indexed_doc(report, ticket)
    assert (doc.id, doc.title, doc.body) == ("42", report.subject, "It crashes every time")
    assert doc.crash_signature == "EXC_BAD_ACCESS DraftStore.save"
    assert (doc.platform, doc.app_version, doc.created_at) == ("ios", "5.2.1", received)


def test_the_problem_body_lists_its_reports_and_says_how_many_more() -> None:
    body = problem_body([(1, "Crash on save"), (2, "Crashes saving")], 2)
    assert "grouped 2 related reports" in body
    assert "- #1 Crash on save\n- #2 Crashes saving" in body
    many = [(n, f"report {n}") for n in range(1, 80)]
    long = problem_body(many, 79)
    assert f"- #{MEMBERS_LISTED} report {MEMBERS_LISTED}" in long
    assert f"#{MEMBERS_LISTED + 1} " not in long
    assert f"and {79 - MEMBERS_LISTED} more" in long


def test_thread_notes_escape_the_subject_and_link_the_ticket() -> None:
    note = joined_note("<b>Crash</b> & burn", 7, "https://z.test/agent/tickets/7")
    assert "&lt;b&gt;Crash&lt;/b&gt; &amp; burn" in note
    assert "<https://z.test/agent/tickets/7|#7>" in note
    assert "Problem #9 solved" in problem_solved_note(9)


def test_the_evidence_line_names_words_a_reader_can_use() -> None:
    shared = (("2", 3.1), ("checkout", 2.9), ("14", 2.5), ("coupon", 2.2), ("404", 2.0))
    match = Match(
        "7", 5.0, 0.8, Evidence(shared_terms=shared, same_platform=True, signature_differs=True)
    )
    assert evidence_line(match, 0.04) == (
        "different crash signature · same platform · shared words: checkout, coupon, 404 · "
        "similarity 0.80 · same-issue score 0.04"
    )
