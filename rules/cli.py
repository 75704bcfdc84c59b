"""`feedback-hub rules check | explain | test`: what support admins run around a rules change."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from zenpy.lib.exception import APIException, ZenpyException

from integrations.errors import HubError
from integrations.report import Report
from integrations.settings import Settings
from integrations.zendesk.account import account_client, has_credentials, read_account
from rules.account_check import account_problems
from rules.account_check import summary as account_summary
from rules.decision import Decision
from rules.examples import decide, load_cases, report_from_data, run_case, tests_path
from rules.loader import load_rules
from rules.model import RuleSet
from rules.store import resolve_path
from rules.targets import deadlines, format_duration, target_for
from rules.yaml_reader import RulesError
from rules.zendesk_names import group_names


def _rules_file(file: str | None) -> Path:
    if file:
        return Path(file)
    return resolve_path(Settings.from_env("cli").rules_path)


def _load_or_exit(path: Path) -> RuleSet:
    try:
        return load_rules(path)
    except RulesError as exc:
        _print_problems(exc)
        sys.exit(1)


def _print_problems(exc: RulesError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    count = len(exc.problems)
    click.echo(f"{count} problem{'s' if count != 1 else ''}", err=True)


@click.group("rules", help="Check, explain and test the routing rules (RULES_PATH).")
def rules_cli() -> None:
    pass


@rules_cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--zendesk",
    "against_zendesk",
    is_flag=True,
    help="Also check that the Zendesk account has every group, custom field and assignee.",
)
@click.option(
    "--zendesk-if-configured",
    is_flag=True,
    help="--zendesk when Zendesk credentials are set, else skip it (the release phase).",
)
def check(file: str | None, against_zendesk: bool, zendesk_if_configured: bool) -> None:
    """Check a rules file (default RULES_PATH) and its examples; exit 1 on any problem."""
    path = _rules_file(file)
    ruleset = _load_or_exit(path)
    examples = tests_path(path)
    note = ""
    if examples.exists():
        try:
            cases = load_cases(examples, ruleset)
        except RulesError as exc:
            _print_problems(exc)
            sys.exit(1)
        note = f", {len(cases)} examples in {examples.name}"
    click.echo(f"{path}: ok: {ruleset.summary()}{note}")
    if zendesk_if_configured and not against_zendesk:
        settings = Settings.from_env("cli")
        if not has_credentials(settings):
            click.echo("zendesk: not checked (no Zendesk credentials in the environment)")
            return
        against_zendesk = True
    if against_zendesk:
        _check_account(ruleset)


def rule_groups() -> list[str]:
    """The groups the rules at RULES_PATH route to (for `zendesk setup --create-groups`)."""
    return group_names(_load_or_exit(_rules_file(None)))


def _check_account(ruleset: RuleSet) -> None:
    """Exit 1 listing each group, custom field or assignee the account lacks."""
    settings = Settings.from_env("cli")
    client = account_client(settings)
    try:
        account = read_account(client)
    except (HubError, APIException, ZenpyException) as exc:
        raise click.ClickException(
            f"could not read the Zendesk account at {settings.zendesk_url}: {exc}"
        ) from None
    problems = account_problems(ruleset, account)
    if problems:
        _print_problems(RulesError(problems))
        click.echo(
            "fix the names, or create the groups with `feedback-hub zendesk setup --create-groups`",
            err=True,
        )
        sys.exit(1)
    click.echo(f"zendesk: ok: {settings.zendesk_url} has the {account_summary(ruleset)} named")


@rules_cli.command()
@click.argument("report", type=click.File("r"))
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rules file.")
@click.option("--json", "as_json", is_flag=True, help="Print the Decision as JSON.")
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S"]),
    help="When it arrived, for business hours (ISO; no offset means UTC). Default: now.",
)
def explain(report: Any, rules_file: str | None, as_json: bool, at: datetime | None) -> None:
    """Route REPORT.json (a report, or a ticket event with ticket_id) and say why ('-': stdin)."""
    ruleset = _load_or_exit(_rules_file(rules_file))
    try:
        data = json.load(report)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{report.name}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{report.name}: expected a JSON object")
    if at is not None:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        data = {**data, ("occurred_at" if "ticket_id" in data else "received_at"): at.isoformat()}
    try:
        decision = decide(data, ruleset)
    except (ValueError, ValidationError) as exc:
        raise click.ClickException(f"{report.name}: {exc}") from None
    if as_json:
        click.echo(json.dumps(decision.to_json(), indent=2, ensure_ascii=False))
        return
    _print_decision(decision, ruleset)
    if decision.scope == "intake" and ruleset.response_time:
        _print_target(report_from_data(data), decision, ruleset)


def _print_decision(decision: Decision, ruleset: RuleSet) -> None:
    click.echo(f"{decision.scope} decision ({ruleset.path}, version {decision.rules_version})")
    for field in ("group", "priority", "type", "assignee"):
        value = getattr(decision, field)
        why = decision.why.get(field)
        line = f"  {field:<9} {value if value is not None else '-'}"
        if why is not None:
            line += f"    <- {why.set_by}"
        click.echo(line)
        for earlier in why.overridden if why else ():
            click.echo(f"            (overrode {earlier.value} from {earlier.cause})")
    for name, value in decision.custom_fields.items():
        why = decision.why.get(f"custom_fields.{name}")
        click.echo(f"  {name:<9} {value}    <- {why.set_by if why else '?'}")
    click.echo(f"  tags      {', '.join(decision.tags) or '-'}")
    for change in decision.tag_changes:
        sign = "+" if change.change == "added" else "-"
        click.echo(f"            {sign}{change.tag:<22} <- {change.cause}")
    if decision.escalate:
        extra = [
            x for x in (decision.escalate_channel, "force problem" * decision.force_problem) if x
        ]
        why = decision.why.get("escalate")
        detail = f" ({', '.join(extra)})" if extra else ""
        click.echo(f"  escalate  yes{detail}    <- {why.set_by if why else '?'}")
    for note in decision.notifications:
        click.echo(f"  notify    {note.channel}: {note.text}    <- {note.cause}")
    matched = ", ".join(f"{r.index} {r.rule!r}" for r in decision.matched_rules) or "none"
    click.echo(f"  matched   {matched}")
    if decision.stopped_by is not None:
        click.echo(f"  stopped   by {decision.stopped_by}")


def _print_target(report: Report, decision: Decision, ruleset: RuleSet) -> None:
    """Which first-reply target the report gets, and when its nudge and breach are due."""
    target = target_for(report, decision, ruleset)
    if target is None:
        click.echo("  response  no first-reply target matches")
        return
    hours = " (business hours)" if target.business else ""
    due = deadlines(target, report.received_at, ruleset)
    click.echo(
        f"  response  first reply within {format_duration(target.seconds)}{hours}, "
        f"due {due.breach.isoformat(timespec='minutes')}    <- {target} ({target.where})"
    )
    if due.nudge is not None:
        click.echo(
            f"            nudge {target.nudge_channel} at {due.nudge.isoformat(timespec='minutes')}"
        )
    if target.breach_channel or target.breach_tags:
        tags = " ".join(f"+{t}" for t in target.breach_tags)
        click.echo(f"            breach {target.breach_channel or '-'} {tags}".rstrip())


@rules_cli.command("test")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Explain every example, not only failures.")
def test_examples(file: str | None, verbose: bool) -> None:
    """Run the examples beside a rules file (x.yml -> x.tests.yml); exit 1 on a failure."""
    path = _rules_file(file)
    ruleset = _load_or_exit(path)
    examples = tests_path(path)
    if not examples.exists():
        raise click.ClickException(f"no examples: {examples} does not exist")
    try:
        cases = load_cases(examples, ruleset)
    except RulesError as exc:
        _print_problems(exc)
        sys.exit(1)
    failed = 0
    for case in cases:
        result = run_case(case, ruleset)
        click.echo(f"{'PASS' if result.passed else 'FAIL'}  {case.name}")
        for failure in result.failures:
            click.echo(f"      {examples}:{case.line}: {failure}")
        if verbose or not result.passed:
            for line in result.decision.explain():
                click.echo(f"        {line}")
        failed += not result.passed
    click.echo(f"{len(cases) - failed} of {len(cases)} examples passed")
    if failed:
        sys.exit(1)
