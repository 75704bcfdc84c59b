"""`feedback-hub rules check | explain | test`: exit codes and what an admin reads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from app import cli
from workers.procs import ROOT, process_env, procfile_args

RULES = """\
groups: [Support, Mobile, Billing]
defaults: {group: Support, priority: normal}
taxonomy:
  crash: {keywords: [crash, crashes]}
  billing: {keywords: [invoice]}
intake:
  - name: Crashes to Mobile
    when: {tags: {includes: [crash]}}
    then: [{set_group: Mobile}, {set_priority: high}]
  - name: Invoices to Billing
    when: {tags: {includes: [billing]}}
    then: [{set_group: Billing}]
ticket_event:
  - name: Reply
    when: {event: comment_added}
    then: [{add_tags: [replied]}]
"""

EXAMPLES = """\
- name: crash
  report: {text: "the app crashes"}
  expect: {group: Mobile, priority: high, tags_include: [crash]}
- name: invoice
  report: {text: "where is my invoice"}
  expect: {group: Billing}
- name: event
  event: {type: comment_added, ticket_id: 3}
  expect: {tags_include: [replied]}
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yml"
    path.write_text(RULES)
    (tmp_path / "routing.tests.yml").write_text(EXAMPLES)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["rules", *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_check_a_good_file_prints_a_summary(rules_file: Path) -> None:
    code, out, _ = run("check", str(rules_file))
    assert code == 0
    assert out == (
        f"{rules_file}: ok: 2 intake rules, 1 event rules, 2 taxonomy tags, "
        "3 examples in routing.tests.yml\n"
    )


def test_check_reads_rules_path_by_default(rules_file: Path) -> None:
    code, out, _ = run("check", env={"RULES_PATH": str(rules_file)})
    assert code == 0 and out.startswith(f"{rules_file}: ok")


def test_check_a_broken_file_prints_each_problem_and_exits_1(rules_file: Path) -> None:
    rules_file.write_text(
        RULES.replace("set_group: Billing", "set_group: Biling").replace("tags:", "tagz:", 1)
    )
    code, out, err = run("check", str(rules_file))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"{rules_file}:8:12: unknown condition 'tagz'; expected one of: all, any, not, tags, "
        "text, source, platform, category, severity, os, device, locale, app_id, app_version, "
        "os_version, reporter_domain, slack_channel, channel, organization, external, "
        "custom_field, priority, group, assignee, "
        "type, event, status, via, changed, comment, business_hours (did you mean 'tags'?)",
        f"{rules_file}:12:24: unknown group 'Biling'; expected one of: Support, Mobile, Billing "
        "(did you mean 'Billing'?)",
        "2 problems",
    ]


def test_check_also_checks_the_examples(rules_file: Path) -> None:
    examples = rules_file.with_name("routing.tests.yml")
    examples.write_text(EXAMPLES.replace("group: Billing", "group: Bililng"))
    code, _, err = run("check", str(rules_file))
    assert code == 1
    assert err.splitlines()[0] == (
        f"{examples}:6:19: unknown group 'Bililng'; expected one of: Billing, Mobile, Support "
        "(did you mean 'Billing'?)"
    )


def test_test_runs_the_examples(rules_file: Path) -> None:
    code, out, _ = run("test", str(rules_file))
    assert code == 0
    assert out.splitlines() == [
        "PASS  crash",
        "PASS  invoice",
        "PASS  event",
        "3 of 3 examples passed",
    ]


def test_test_fails_with_what_differs_and_why(rules_file: Path) -> None:
    examples = rules_file.with_name("routing.tests.yml")
    examples.write_text(EXAMPLES.replace("priority: high", "priority: urgent"))
    code, out, _ = run("test", str(rules_file))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "FAIL  crash"
    assert lines[1] == (
        f"      {examples}:1: priority: expected urgent, got high "
        '(set by rule 1 "Crashes to Mobile")'
    )
    assert (
        '        group: Mobile  <- rule 1 "Crashes to Mobile"  (overrode: defaults set Support)'
        in lines
    )
    assert lines[-1] == "2 of 3 examples passed"


def test_test_without_examples(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text(RULES)
    code, _, err = run("test", str(path))
    assert code == 1
    assert f"no examples: {tmp_path / 'r.tests.yml'} does not exist" in err


def test_explain_says_which_rule_set_each_field(rules_file: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"text": "It crashes when I open an invoice", "platform": "ios"}))
    code, out, _ = run("explain", "--rules", str(rules_file), str(report))
    assert code == 0
    assert out.splitlines() == [
        f"intake decision ({rules_file}, version 1)",
        '  group     Billing    <- rule 2 "Invoices to Billing"',
        "            (overrode Support from defaults)",
        '            (overrode Mobile from rule 1 "Crashes to Mobile")',
        '  priority  high    <- rule 1 "Crashes to Mobile"',
        "            (overrode normal from defaults)",
        "  type      -",
        "  assignee  -",
        "  tags      billing, crash",
        '            +crash                  <- taxonomy: keyword "crashes"',
        '            +billing                <- taxonomy: keyword "invoice"',
        "  matched   1 'Crashes to Mobile', 2 'Invoices to Billing'",
    ]


def test_explain_json_and_events(rules_file: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "comment_added", "ticket_id": 9}))
    code, out, _ = run("explain", "--json", "--rules", str(rules_file), str(event))
    assert code == 0
    data = json.loads(out)
    assert data["scope"] == "ticket_event"
    assert data["tags_added"] == ["replied"]
    assert data["tag_changes"][0]["cause"] == {
        "by": "rule",
        "rule": "Reply",
        "index": 1,
        "detail": None,
    }


def test_explain_refuses_a_report_it_cannot_read(rules_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"txet": "typo"}))
    code, _, err = run("explain", "--rules", str(rules_file), str(bad))
    assert code == 1
    assert "unknown report keys: txet" in err


def test_explain_reads_a_bug_report_as_the_mobile_app_sends_it() -> None:
    # The mobile API's own example: routed as POST /api/v1/bug-reports would file it.
    sample = ROOT / "integrations" / "mobile" / "fixtures" / "report__ios_crash_with_logs.json"
    code, out, err = run(
        "explain", "--rules", str(ROOT / "rules" / "default.yml"), "--json", str(sample)
    )
    assert code == 0, err
    decision = json.loads(out)
    assert (decision["group"], decision["priority"]) == ("Mobile", "high")
    assert "mobile_crash" in decision["tags"]


def test_the_default_rules_pass_their_examples() -> None:
    code, out, _ = run("test", str(ROOT / "rules" / "default.yml"))
    assert code == 0, out
    assert out.splitlines()[-1].endswith("examples passed")
    assert "FAIL" not in out


def test_the_procfile_release_phase_checks_the_rules(tmp_path: Path) -> None:
    env = process_env({"RULES_PATH": "rules/default.yml"})
    done = subprocess.run(
        procfile_args("release", env), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rules/default.yml: ok: ")
    broken = tmp_path / "broken.yml"
    broken.write_text("intake:\n  - name: x\n    then: [{set_grup: A}]\n")
    env["RULES_PATH"] = str(broken)
    done = subprocess.run(
        procfile_args("release", env), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"{broken}:3:13: unknown action 'set_grup'")
