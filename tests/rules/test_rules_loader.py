"""The loader's errors: each names file, line and column, and suggests the name that was meant."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rules.loader import load_rules, parse_rules
from rules.yaml_reader import Problem, RulesError
from tests import REPO_ROOT


def problems(text: str) -> list[Problem]:
    with pytest.raises(RulesError) as caught:
        parse_rules(textwrap.dedent(text).lstrip("\n"), "r.yml")
    return caught.value.problems


def only(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    return str(found[0])


def test_a_misspelt_condition_names_line_column_and_the_right_name() -> None:
    message = only(
        """
        intake:
          - name: iOS crashes
            when: {platfrom: ios}
            then: [{set_group: Mobile}]
        """
    )
    assert message.startswith("r.yml:3:12: unknown condition 'platfrom'; expected one of: all,")
    assert message.endswith("(did you mean 'platform'?)")


def test_a_misspelt_action() -> None:
    message = only(
        """
        intake:
          - name: x
            then:
              - add_tags: [a]
              - set_priorty: high
        """
    )
    assert message.startswith("r.yml:5:9: unknown action 'set_priorty'")
    assert message.endswith("(did you mean 'set_priority'?)")


def test_an_operator_condition_with_no_operator_says_which_it_takes() -> None:
    for condition, takes in (
        ("priority", "is, at_least, at_most"),
        ("text", "contains, contains_all, matches"),
    ):
        message = only(
            f"""
            intake:
              - name: x
                when: {{{condition}: {{}}}}
                then: [{{add_tags: [a]}}]
            """
        )
        # Line 3, at the empty mapping (after "when: {<condition>: ").
        column = len("    when: {") + len(condition) + len(": ") + 1
        assert message == f"r.yml:3:{column}: {condition} condition needs one of: {takes}"


def test_misspelt_operators_values_sections_and_rule_settings() -> None:
    found = [
        str(p)
        for p in problems(
            """
            groups: [Support, Billing]
            intkae: []
            intake:
              - name: x
                when: {tags: {include: [a]}, priority: {at_leats: high}}
                then: [{set_group: Biling}, {set_type: incidnet}]
                stpo: true
            """
        )
    ]
    assert found == [
        "r.yml:2:1: unknown section 'intkae'; expected one of: version, groups, custom_fields, "
        "business_hours, defaults, taxonomy, intake, ticket_event, response_time "
        "(did you mean 'intake'?)",
        "r.yml:7:5: unknown rule setting 'stpo'; expected one of: name, description, enabled, "
        "when, then, stop (did you mean 'stop'?)",
        "r.yml:5:19: unknown tags operator 'include'; expected one of: includes, includes_any, "
        "includes_all, excludes, excludes_all, excludes_any (did you mean 'includes'?)",
        "r.yml:5:45: unknown priority operator 'at_leats'; expected one of: is, at_least, "
        "at_most (did you mean 'at_least'?)",
        "r.yml:6:24: unknown group 'Biling'; expected one of: Support, Billing "
        "(did you mean 'Billing'?)",
        "r.yml:6:44: unknown type 'incidnet'; expected one of: question, incident, problem, "
        "task (did you mean 'incident'?)",
    ]


def test_an_invalid_regex_points_at_the_error_inside_the_pattern() -> None:
    message = only(
        """
        taxonomy:
          billing: {patterns: ['charged (\\d+ times']}
        """
    )
    # The column is the unclosed parenthesis, inside the quoted pattern.
    assert message == (
        "r.yml:2:33: invalid regular expression 'charged (\\\\d+ times': "
        "missing ), unterminated subpattern"
    )


def test_invalid_regex_in_a_text_condition() -> None:
    assert "invalid regular expression '[a-'" in only(
        """
        intake:
          - name: x
            when: {text: {matches: '[a-'}}
            then: [{add_tags: [y]}]
        """
    )


def test_wrong_value_types() -> None:
    found = [
        str(p)
        for p in problems(
            """
            version: one
            intake:
              - name: x
                when: {business_hours: maybe, app_version: ">=5.x"}
                then:
                  - add_tags: {a: 1}
                  - escalate: {force_problem: sometimes}
              - name: y
                then: {add_tags: [a]}
            """
        )
    ]
    assert found == [
        "r.yml:1:10: version must be a whole number, not the string 'one'",
        "r.yml:4:28: business_hours must be true or false, not the string 'maybe'",
        "r.yml:4:48: app_version: '5.x' is not a version (expected e.g. 5.2.1)",
        "r.yml:6:19: add_tags must be a string, not a mapping",
        "r.yml:7:35: escalate force_problem must be true or false, not the string 'sometimes'",
        "r.yml:9:11: then must be a list, not a mapping",
    ]


def test_duplicate_rule_names_and_duplicate_keys() -> None:
    found = [
        str(p)
        for p in problems(
            """
            intake:
              - name: Route bugs
                then: [{set_group: Engineering}]
            ticket_event:
              - name: Route bugs
                when: {event: created, event: comment_added}
                then: [{add_tags: [x]}]
            """
        )
    ]
    assert found == [
        "r.yml:5:11: rule name 'Route bugs' is used twice (first at line 2); "
        "names must be unique so explanations are unambiguous",
        "r.yml:6:28: condition: 'event' appears twice (first at line 6)",
    ]


def test_conditions_in_the_wrong_scope() -> None:
    found = [
        str(p)
        for p in problems(
            """
            intake:
              - name: x
                when: {event: comment_added}
                then: [{add_tags: [a]}]
            ticket_event:
              - name: y
                when: {platform: ios}
                then: [{add_tags: [a]}]
              - name: z
                when: {external: false}
                then: [{add_tags: [a]}]
            """
        )
    ]
    assert found == [
        "r.yml:3:12: condition 'event' only works in ticket_event rules, not intake",
        "r.yml:7:12: condition 'platform' only works in intake rules, not ticket_event",
        "r.yml:10:12: condition 'external' only works in intake rules, not ticket_event",
    ]


def test_notify_templates_are_checked() -> None:
    message = only(
        """
        intake:
          - name: x
            then: [{notify: {channel: "#a", text: "New {subjet}"}}]
        """
    )
    assert message.startswith("r.yml:3:43: notify text: unknown placeholder {subjet}")
    assert message.endswith("(did you mean 'subject'?)")
    assert "needs text" in only(
        """
        intake:
          - name: x
            then: [{notify: {channel: "#a"}}]
        """
    )
    assert "event placeholders" not in only(
        """
        intake:
          - name: x
            then: [{notify: {channel: "#a", text: "{comment_excerpt}"}}]
        """
    )


def test_business_hours_are_checked() -> None:
    found = [
        str(p)
        for p in problems(
            """
            business_hours:
              timezone: Europe/Berln
              weekly: {mon: "9-17", tuesday: "09:00-17:00", fri: "18:00-09:00"}
              holidays: [christmas]
            intake:
              - name: x
                when: {business_hours: true}
                then: [{add_tags: [a]}]
            """
        )
    ]
    assert found[0] == (
        "r.yml:2:13: unknown timezone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"
    )
    assert found[1] == "r.yml:3:17: mon: '9-17' is not a range like 09:00-17:30"
    assert found[2].startswith("r.yml:3:25: unknown day 'tuesday'")
    assert found[2].endswith("(did you mean 'tue'?)")
    assert found[3] == "r.yml:3:54: fri: '18:00-09:00' is not a range within one day"
    assert found[4] == "r.yml:4:14: a holiday must be a date like 2025-12-25, not 'christmas'"


def test_business_hours_condition_needs_the_section() -> None:
    assert "needs a business_hours section" in only(
        """
        intake:
          - name: x
            when: {business_hours: false}
            then: [{add_tags: [a]}]
        """
    )


def test_unknown_custom_field_names() -> None:
    message = only(
        """
        custom_fields: {app_version: 360001}
        intake:
          - name: x
            then: [{set_custom_field: {app_verison: "5.2", "360002": x}}]
        """
    )
    assert message.startswith("r.yml:4:32: unknown custom field 'app_verison'")
    assert message.endswith("(did you mean 'app_version'?)")


def test_a_yaml_syntax_error_has_its_place() -> None:
    message = only("intake:\n  - name: x\n    then: [{add_tags: [a]}\n")
    # libyaml and pure-Python PyYAML word it differently; both say what was expected.
    assert message.startswith("r.yml:4:1: YAML syntax: ")
    assert "expected ',' or ']'" in message


def test_an_empty_or_shapeless_file() -> None:
    assert only("") == "r.yml:1:1: the rules file is empty"
    assert only("- a\n") == "r.yml:1:1: the rules file must be a mapping (key: value), not a list"
    assert "no intake, ticket_event or taxonomy section" in only("version: 1\n")


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        """
        intake:
          - name: a
            when: {all: [{platfrom: ios}, {sevrity: high}]}
            then: [{add_tag: x}]
          - then: [{set_group: X}]
        """
    )
    assert [(p.line, p.suggestion) for p in found] == [
        (3, "platform"),
        (3, "severity"),
        (4, "add_tags"),
        (5, None),
    ]
    assert found[-1].message == "intake rule 2 needs a name"


def test_load_rules_reads_a_file_and_reports_its_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("intake:\n  - name: x\n    then: [{add_tags: [a]}]\n")
    ruleset = load_rules(path)
    assert ruleset.path == str(path)
    assert ruleset.intake[0].where is not None and ruleset.intake[0].where.line == 2
    path.write_text("intake:\n  - name: x\n    then: [{add_tagz: [a]}]\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}:3:13: unknown action 'add_tagz'")
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path / "missing.yml")
    assert str(caught.value) == (
        f"{tmp_path / 'missing.yml'}:1:1: cannot read the rules file: No such file or directory"
    )


def test_yaml_booleans_are_fine_as_names_and_tags() -> None:
    ruleset = parse_rules("intake:\n  - name: on\n    then: [{add_tags: [off, yes]}]\n")
    assert ruleset.intake[0].name == "on"
    assert ruleset.intake[0].then[0].value == ("off", "yes")


def test_the_default_rules_load() -> None:
    ruleset = load_rules(REPO_ROOT / "rules" / "default.yml")
    assert len(ruleset.taxonomy) >= 20
    assert {"Engineering", "Billing", "Mobile", "Product"} <= set(ruleset.groups)
