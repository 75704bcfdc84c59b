"""The engine: each condition and action, ordering, stop, the explanation, ticket events."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.report import Report
from integrations.ticket_event import Comment, TicketEvent
from rules.decision import Decision
from rules.engine import evaluate, evaluate_event
from rules.examples import report_from_data
from rules.loader import parse_rules
from rules.model import RuleSet


def rules(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), "test.yml")


def report(**data: Any) -> Report:
    data.setdefault("text", "hello")
    return report_from_data(data)


def intake_rule(when: str, then: str = "[{add_tags: [hit]}]", extra: str = "") -> RuleSet:
    body = f"intake:\n  - name: r\n    when: {when}\n    then: {then}\n"
    return rules(textwrap.dedent(extra) + "\n" + body)


def hits(ruleset: RuleSet, **data: Any) -> bool:
    return "hit" in evaluate(report(**data), ruleset).tags


# ---------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("op", "tags", "expected"),
    [
        ("includes", ["a"], True),
        ("includes", ["c"], False),
        ("includes_all", ["a", "b"], True),
        ("includes_all", ["a"], False),
        ("excludes", ["c"], True),
        ("excludes", ["a", "c"], False),
        ("excludes_any", ["a", "c"], True),
        ("excludes_any", ["a", "b"], False),
    ],
)
def test_tags_condition(op: str, tags: list[str], expected: bool) -> None:
    ruleset = intake_rule(f"{{tags: {{{op}: [a, b]}}}}")
    assert hits(ruleset, tags=tags) is expected


def test_tags_are_case_and_space_insensitive() -> None:
    ruleset = intake_rule("{tags: {includes: [Mobile Crash]}}")
    assert hits(ruleset, tags=["mobile_crash"])


@pytest.mark.parametrize(
    ("when", "text", "expected"),
    [
        ("{text: {contains: refund}}", "I want a REFUND now", True),
        ("{text: {contains: refund}}", "refunded already", False),  # whole words only
        ('{text: {contains: ["can\'t log in"]}}', "I CAN'T   log-in today", True),
        ('{text: {contains: ["can\'t log in"]}}', "I can log in", False),
        ("{text: {contains_all: [export, csv]}}", "the CSV export fails", True),
        ("{text: {contains_all: [export, csv]}}", "the export fails", False),
        ("{text: {matches: 'charged \\d+ times'}}", "I was Charged 3 times", True),
        ("{text: {matches: 'charged \\d+ times'}}", "charged twice", False),
        ("{text: {matches: ['^zzz', 'err(or)? \\d{3}']}}", "got Error 503", True),
    ],
)
def test_text_condition(when: str, text: str, expected: bool) -> None:
    assert hits(intake_rule(when), text=text) is expected


@pytest.mark.parametrize(
    ("when", "data", "expected"),
    [
        ("{platform: ios}", {"platform": "iOS"}, True),
        ("{platform: [android, web]}", {"platform": "iOS"}, False),
        ("{source: slack_command}", {"source": "slack_command"}, True),
        ("{source: slack_command}", {"source": "mobile"}, False),
        ("{category: billing}", {"category": "Billing"}, True),
        ("{severity: [critical, blocker]}", {"severity": "blocker"}, True),
        ("{severity: critical}", {}, False),
        ("{os: iOS}", {"os": "ios"}, True),
        ("{reporter_domain: example.com}", {"email": "ann@Example.com"}, True),
        ("{reporter_domain: example.com}", {"email": "ann@example.org"}, False),
        ("{slack_channel: C0123}", {"channel": "C0123"}, True),
        ("{slack_channel: C0123}", {"channel": "C9"}, False),
        ("{custom_field: {plan: enterprise}}", {"custom": {"plan": "Enterprise"}}, True),
        ("{custom_field: {plan: [pro, team]}}", {"custom": {"plan": "free"}}, False),
        ("{custom_field: {plan: null}}", {}, True),
    ],
)
def test_fact_conditions(when: str, data: dict[str, Any], expected: bool) -> None:
    assert hits(intake_rule(when), **data) is expected


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        (">=5.2, <6", "5.2", True),
        (">=5.2, <6", "5.10.1", True),
        (">=5.2, <6", "6.0.0", False),
        (">=5.2, <6", "5.1.9", False),
        ("<5.2", "5.2.0-beta.1", True),  # a pre-release comes before its release
        ("==5.3.*", "5.3.7", True),
        ("==5.3.*", "5.30.0", False),
        ("==5.0.*", "5.1", False),
        ("5.2.1", "5.2.1 (431)", True),  # build numbers in parentheses are ignored
        ("!=5.2.1", "5.2.1", False),
        (">=1", "not a version", False),
    ],
)
def test_app_version_condition(spec: str, version: str, expected: bool) -> None:
    ruleset = intake_rule(f"{{app_version: '{spec}'}}")
    assert hits(ruleset, app_version=version) is expected


def test_app_version_absent_never_matches() -> None:
    assert not hits(intake_rule("{app_version: '>=0'}"))


def test_priority_is_and_at_least_see_what_earlier_rules_set() -> None:
    ruleset = rules(
        """
        defaults: {priority: normal}
        intake:
          - name: at least high
            when: {priority: {at_least: high}}
            then: [{add_tags: [was_high]}]
          - name: raise
            when: {text: {contains: asap}}
            then: [{set_priority: urgent}]
          - name: is urgent
            when: {priority: urgent}
            then: [{add_tags: [is_urgent]}]
          - name: at most normal
            when: {priority: {at_most: normal}}
            then: [{add_tags: [calm]}]
        """
    )
    d = evaluate(report(text="asap please"), ruleset)
    assert d.tags == ("is_urgent",)
    assert evaluate(report(text="whenever"), ruleset).tags == ("calm",)


def test_group_condition_sees_the_group_set_so_far() -> None:
    ruleset = rules(
        """
        intake:
          - name: unrouted
            when: {group: null}
            then: [{add_tags: [unrouted]}]
          - name: route
            when: {text: {contains: invoice}}
            then: [{set_group: Billing}]
          - name: billing follow-up
            when: {group: billing}
            then: [{add_tags: [billing_team]}]
        """
    )
    assert evaluate(report(text="my invoice"), ruleset).tags == ("billing_team", "unrouted")
    assert evaluate(report(text="hi"), ruleset).tags == ("unrouted",)


def test_all_any_not_nest() -> None:
    ruleset = intake_rule(
        "{all: [{platform: ios}, {any: [{text: {contains: crash}}, {severity: critical}]},"
        " {not: {tags: {includes: [ignore]}}}]}"
    )
    assert hits(ruleset, platform="ios", text="it crash")
    assert hits(ruleset, platform="ios", severity="critical")
    assert not hits(ruleset, platform="ios", text="it crash", tags=["ignore"])
    assert not hits(ruleset, platform="android", text="it crash")
    assert not hits(ruleset, platform="ios", text="fine")


def test_several_conditions_in_one_mapping_must_all_hold() -> None:
    ruleset = intake_rule("{platform: ios, text: {contains: crash}}")
    assert hits(ruleset, platform="ios", text="crash")
    assert not hits(ruleset, platform="ios", text="fine")


def test_a_rule_without_when_always_runs() -> None:
    ruleset = rules(
        """
        intake:
          - name: always
            then: [{add_tags: [seen]}]
        """
    )
    assert evaluate(report(), ruleset).tags == ("seen",)


BUSINESS_HOURS = """
business_hours:
  timezone: Europe/Berlin
  weekly: {weekdays: "09:00-17:00", sat: "10:00-12:00"}
  holidays: [2026-12-25]
"""


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-01-07T08:30:00+00:00", True),  # Wednesday 09:30 in Berlin
        ("2026-01-07T07:59:00+00:00", False),  # 08:59 in Berlin
        ("2026-01-07T16:00:00+00:00", False),  # 17:00 in Berlin: the end is exclusive
        ("2026-01-10T10:30:00+00:00", True),  # Saturday 11:30
        ("2026-01-11T10:30:00+00:00", False),  # Sunday
        ("2026-12-25T10:00:00+00:00", False),  # a Friday, but a holiday
        ("2026-07-01T07:30:00+00:00", True),  # summer time: 09:30 in Berlin
    ],
)
def test_business_hours_condition(moment: str, open_: bool) -> None:
    ruleset = intake_rule("{business_hours: true}", extra=BUSINESS_HOURS)
    at = datetime.fromisoformat(moment)
    assert ("hit" in evaluate(report(), ruleset, now=at).tags) is open_
    assert ("hit" in evaluate(report(received_at=moment), ruleset).tags) is open_


# ---------------------------------------------------------------- actions


def test_actions_set_every_field() -> None:
    ruleset = rules(
        """
        custom_fields: {plan: 360001}
        intake:
          - name: all of them
            then:
              - add_tags: [a, b]
              - remove_tags: [old]
              - set_group: Mobile
              - set_assignee: dev@example.com
              - set_priority: high
              - set_type: incident
              - set_custom_field: {plan: enterprise, "360002": 7}
        """
    )
    d = evaluate(report(tags=["old", "keep"]), ruleset)
    assert (d.group, d.assignee, d.priority, d.type) == (
        "Mobile",
        "dev@example.com",
        "high",
        "incident",
    )
    assert d.tags == ("a", "b", "keep")
    assert d.tags_added == ("a", "b")
    assert d.tags_removed == ("old",)
    assert d.custom_fields == {"plan": "enterprise", "360002": 7}
    assert d.zendesk_custom_fields() == [
        {"id": 360001, "value": "enterprise"},
        {"id": 360002, "value": 7},
    ]


def test_assignee_may_be_an_id() -> None:
    ruleset = intake_rule("{platform: ios}", "[{set_assignee: 12345}]")
    assert evaluate(report(platform="ios"), ruleset).assignee == "12345"


def test_raise_priority_never_lowers() -> None:
    ruleset = rules(
        """
        intake:
          - name: urgent
            when: {text: {contains: outage}}
            then: [{set_priority: urgent}]
          - name: at least high
            then: [{raise_priority: high}]
        """
    )
    assert evaluate(report(text="outage"), ruleset).priority == "urgent"
    assert evaluate(report(text="meh"), ruleset).priority == "high"


def test_notify_renders_the_template_with_final_values() -> None:
    ruleset = rules(
        """
        intake:
          - name: tell mobile
            when: {platform: ios}
            then:
              - notify:
                  channel: "#mobile"
                  text: "{platform} {app_version} by {reporter}: {subject}
                    -> {group}/{priority} {ticket_url} {{x}}"
          - name: route
            then: [{set_group: Mobile}, {set_priority: high}]
        """
    )
    d = evaluate(
        report(subject="It broke", platform="ios", app_version="5.2", email="a@b.co"), ruleset
    )
    (note,) = d.notifications
    assert note.channel == "#mobile"
    # Placeholders show the final state; ticket_url is left for the job that knows it.
    assert note.text == "ios 5.2 by a@b.co: It broke -> Mobile/high {ticket_url} {x}"
    assert (
        note.fill(ticket_url="https://z/1")
        == "ios 5.2 by a@b.co: It broke -> Mobile/high https://z/1 {x}"
    )
    assert note.cause.rule == "tell mobile"


def test_escalate_and_force_problem() -> None:
    plain = intake_rule("{platform: ios}", "[{escalate: true}]")
    d = evaluate(report(platform="ios"), plain)
    assert (d.escalate, d.escalate_channel, d.force_problem) == (True, None, False)
    assert not evaluate(report(platform="web"), plain).escalate
    forced = intake_rule("{platform: ios}", "[{escalate: {channel: '#eng', force_problem: true}}]")
    d = evaluate(report(platform="ios"), forced)
    assert (d.escalate, d.escalate_channel, d.force_problem) == (True, "#eng", True)
    assert d.why["escalate"].set_by.rule == "r"


# ---------------------------------------------------------------- ordering


def test_tags_added_by_a_rule_satisfy_later_rules_but_not_earlier_ones() -> None:
    ruleset = rules(
        """
        intake:
          - name: early
            when: {tags: {includes: [second]}}
            then: [{add_tags: [early_saw_it]}]
          - name: first
            when: {text: {contains: crash}}
            then: [{add_tags: [second]}]
          - name: chained
            when: {tags: {includes: [second]}}
            then: [{add_tags: [third]}]
          - name: chained again
            when: {tags: {includes_all: [second, third]}}
            then: [{set_group: Mobile}]
        """
    )
    d = evaluate(report(text="it crash"), ruleset)
    assert d.tags == ("second", "third")
    assert d.group == "Mobile"
    assert [r.rule for r in d.matched_rules] == ["first", "chained", "chained again"]


def test_removed_tags_are_gone_for_later_rules() -> None:
    ruleset = rules(
        """
        intake:
          - name: drop
            then: [{remove_tags: [vip]}]
          - name: vip
            when: {tags: {includes: [vip]}}
            then: [{set_priority: urgent}]
        """
    )
    d = evaluate(report(tags=["vip"]), ruleset)
    assert d.priority is None
    assert d.tags_removed == ("vip",)


def test_stop_ends_evaluation() -> None:
    ruleset = rules(
        """
        intake:
          - name: spam
            when: {text: {contains: casino}}
            then: [{add_tags: [spam]}, stop]
          - name: also stop
            when: {text: {contains: lottery}}
            stop: true
            then: [{add_tags: [spam2]}]
          - name: route
            then: [{set_group: Support}]
        """
    )
    d = evaluate(report(text="casino lottery"), ruleset)
    assert d.tags == ("spam",)
    assert d.group is None
    assert d.stopped_by is not None and d.stopped_by.rule == "spam"
    d = evaluate(report(text="lottery"), ruleset)
    assert d.tags == ("spam2",) and d.stopped_by is not None and d.stopped_by.index == 2
    assert evaluate(report(text="hello"), ruleset).group == "Support"


def test_disabled_rules_do_not_run() -> None:
    ruleset = rules(
        """
        intake:
          - name: off
            enabled: false
            then: [{add_tags: [off]}]
          - name: on
            then: [{add_tags: [on]}]
        """
    )
    d = evaluate(report(), ruleset)
    assert d.tags == ("on",)
    assert d.matched_rules[0].index == 2  # indexes are positions in the file


# ---------------------------------------------------------------- explanation


EXPLAINED = """
defaults: {group: Support, priority: normal}
taxonomy:
  billing: {keywords: [invoice, "credit card"], patterns: ['charged \\d+ times']}
  crash: {keywords: [crash, crashes]}
intake:
  - name: Bugs to Engineering
    when: {tags: {includes: [crash]}}
    then: [{set_group: Engineering}]
  - name: Billing to Billing
    when: {tags: {includes: [billing]}}
    then: [{set_group: Billing}, {set_priority: high}]
"""


def test_the_explanation_names_the_last_writer_and_what_it_overrode() -> None:
    d = evaluate(report(text="The app crashes when I open my invoice"), rules(EXPLAINED))
    assert d.group == "Billing"
    why = d.why["group"]
    assert (why.set_by.rule, why.set_by.index) == ("Billing to Billing", 2)
    assert [(w.value, w.cause.by, w.cause.rule) for w in why.overridden] == [
        ("Support", "defaults", None),
        ("Engineering", "rule", "Bugs to Engineering"),
    ]
    assert d.why["priority"].set_by.index == 2
    lines = d.explain()
    assert (
        'group: Billing  <- rule 2 "Billing to Billing"  (overrode: defaults set Support; '
        'rule 1 "Bugs to Engineering" set Engineering)'
    ) in lines
    assert '  +crash  <- taxonomy: keyword "crashes"' in lines


def test_taxonomy_explanation_names_the_keyword_or_pattern() -> None:
    d = evaluate(report(text="I was charged 3 times"), rules(EXPLAINED))
    cause = d.tag_cause("billing")
    assert cause is not None and cause.by == "taxonomy"
    assert cause.detail == "pattern \"charged \\d+ times\" matched 'charged 3 times'"
    d = evaluate(report(text="my CREDIT-card expired"), rules(EXPLAINED))
    assert d.tag_cause("billing") == d.tag_changes[0].cause
    assert d.tag_changes[0].cause.detail == 'keyword "credit card"'


def test_a_decision_survives_json() -> None:
    d = evaluate(report(text="crashes, invoice"), rules(EXPLAINED))
    data = json.loads(json.dumps(d.to_json()))
    assert Decision.from_json(data) == d


# ---------------------------------------------------------------- ticket events


EVENT_RULES = """
ticket_event:
  - name: reopened by customer
    when:
      all:
        - event: comment_added
        - comment: {public: true, author: end_user}
        - status: solved
    then: [{add_tags: [customer_replied]}, {set_priority: high}]
  - name: escalated
    when: {all: [{changed: [priority, group]}, {priority: urgent}, {via: web}]}
    then:
      - escalate: {channel: "#eng"}
      - notify: {channel: "#eng", text: "#{ticket_id} {subject} is {priority} ({event}, {status})"}
  - name: internal note
    when: {comment: {public: false}}
    then: [{add_tags: [internal_note]}]
  - name: text in comments
    when: {text: {contains: refund}}
    then: [{set_group: Billing}]
"""


def event(**data: Any) -> TicketEvent:
    data.setdefault("ticket_id", 7)
    return TicketEvent.model_validate(data)


def test_event_rules_see_the_event_comment_and_status() -> None:
    ruleset = rules(EVENT_RULES)
    d = evaluate_event(
        event(
            type="comment_added",
            status="solved",
            tags=["bug"],
            comment=Comment(public=True, author_role="end_user", body="I want a refund"),
        ),
        ruleset,
    )
    assert d.scope == "ticket_event"
    assert d.tags_added == ("customer_replied",)
    assert d.priority == "high"
    assert d.group == "Billing"
    assert d.assignee is None  # untouched fields are not changes
    d = evaluate_event(
        event(type="comment_added", status="solved", comment=Comment(public=False)), ruleset
    )
    assert d.tags == ("internal_note",)


def test_event_changed_fields() -> None:
    ruleset = rules(EVENT_RULES)
    d = evaluate_event(
        event(
            type="priority_changed",
            subject="Export fails",
            status="open",
            priority="urgent",
            changed=["priority"],
            via="web",
        ),
        ruleset,
    )
    assert d.escalate and d.escalate_channel == "#eng"
    assert d.notifications[0].text == "#7 Export fails is urgent (priority_changed, open)"
    not_changed = event(type="status_changed", priority="urgent", changed=["status"], via="web")
    assert not evaluate_event(not_changed, ruleset).escalate


def test_intake_rules_ignore_events_and_event_rules_ignore_reports() -> None:
    ruleset = rules(
        EVENT_RULES
        + """
intake:
  - name: intake only
    then: [{add_tags: [intake]}]
"""
    )
    assert evaluate(report(text="refund"), ruleset).tags == ("intake",)
    assert evaluate_event(event(type="created"), ruleset).tags == ()


def test_a_report_from_the_report_shape_is_accepted() -> None:
    full = Report(
        source="slack_command",
        idempotency_key="T1:C1:123",
        subject="Export broken",
        description="The export button does nothing",
        fields={"platform": "web"},
    )
    assert report_from_data(full.to_job()) == full
    ruleset = intake_rule("{source: slack_command}")
    assert "hit" in evaluate(full, ruleset).tags


def test_the_evaluation_time_defaults_to_when_the_report_arrived() -> None:
    ruleset = intake_rule("{business_hours: false}", extra=BUSINESS_HOURS)
    sunday = report(received_at=datetime(2026, 1, 11, 12, tzinfo=UTC).isoformat())
    assert "hit" in evaluate(sunday, ruleset).tags
