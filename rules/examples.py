"""Example reports kept beside a rule file (`<name>.tests.yml`), run against their expected routing.

Also reads the friendlier report shape people write by hand (`{text, platform, ...}`)
for `feedback-hub rules explain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from yaml.nodes import Node

from integrations.mobile.payloads import BugReport
from integrations.mobile.reports import to_report
from integrations.report import Report
from integrations.ticket_event import TicketEvent
from rules.decision import Decision
from rules.engine import evaluate, evaluate_event
from rules.model import PRIORITIES, TICKET_TYPES, RuleSet, normalize_tag
from rules.yaml_reader import Problem, Reader, RulesError, compose

# The report fields an example may give at the top level.
FIELD_KEYS = (
    "platform",
    "app_id",
    "app_version",
    "build",
    "os",
    "os_version",
    "device",
    "locale",
    "category",
    "severity",
)
FRIENDLY_KEYS = (
    "text",
    "subject",
    "description",
    "source",
    *FIELD_KEYS,
    "email",
    "reporter",
    "tags",
    "channel",
    "custom",
    "received_at",
)
EXPECT_KEYS = (
    "group",
    "priority",
    "type",
    "assignee",
    "tags_include",
    "tags_exclude",
    "escalate",
    "notify",
    "custom_fields",
)
CASE_KEYS = ("name", "report", "event", "at", "expect")
# Examples without `at` are judged at this moment (a Wednesday, midday in Europe),
# so a business-hours rule never makes them pass on some days and fail on others.
DEFAULT_AT = datetime(2026, 1, 7, 11, 0, tzinfo=UTC)


def tests_path(rules_path: str | Path) -> Path:
    """Where a rule file's examples live: rules/default.yml -> rules/default.tests.yml."""
    path = Path(rules_path)
    return path.with_name(path.stem + ".tests" + (path.suffix or ".yml"))


# Keys only the mobile app's bug report has: such a body is read as the mobile API reads it.
MOBILE_KEYS = frozenset({"title", "app", "device", "crash", "logs", "steps_to_reproduce"})


def report_from_data(data: dict[str, Any]) -> Report:
    """A Report from JSON: the Report shape, a bug report as the mobile app sends it
    (POST /api/v1/bug-reports), or {text | subject/description, platform, ...}."""
    if "idempotency_key" in data:
        return Report.model_validate(data)
    if MOBILE_KEYS & set(data):
        body = BugReport.model_validate(data)
        app_id = body.app.id if body.app and body.app.id else "example"
        return to_report(body, app_id=app_id, idempotency_key="example:mobile")
    unknown = sorted(set(data) - set(FRIENDLY_KEYS))
    if unknown:
        raise ValueError(
            f"unknown report keys: {', '.join(unknown)}; expected the Report shape "
            f"or these: {', '.join(FRIENDLY_KEYS)}"
        )
    text = str(data.get("text") or "")
    subject = str(data.get("subject") or (text.strip().splitlines() or [""])[0][:120])
    description = str(data.get("description") or text or subject)
    fields = {k: str(data[k]) for k in FIELD_KEYS if data.get(k) is not None}
    report: dict[str, Any] = {
        "source": data.get("source", "mobile"),
        "idempotency_key": "example:" + subject,
        "subject": subject,
        "description": description,
        "tags": tuple(str(t) for t in data.get("tags", ())),
        "fields": fields,
        "custom": {str(k): str(v) for k, v in (data.get("custom") or {}).items()},
        "reporter": {"email": data.get("email"), "name": data.get("reporter")},
        "reply": {"channel_id": data.get("channel")},
    }
    if data.get("received_at") is not None:
        report["received_at"] = data["received_at"]
    return Report.model_validate(report)


def decide(data: dict[str, Any], ruleset: RuleSet) -> Decision:
    """The decision for a report or ticket event given as JSON data (a ticket_id means an event)."""
    if "ticket_id" in data:
        return evaluate_event(TicketEvent.model_validate(data), ruleset)
    return evaluate(report_from_data(data), ruleset)


@dataclass(frozen=True)
class Case:
    """One example: a report or event, and what the rules should make of it."""

    name: str
    line: int
    report: Report | None
    event: TicketEvent | None
    expect: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """How one example went: each difference between what was expected and what happened."""

    case: Case
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures


def load_cases(path: str | Path, ruleset: RuleSet) -> list[Case]:
    """Read and check an examples file; raise RulesError (with lines) for a broken one."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([Problem(file, 1, 1, f"cannot read: {exc.strerror}")]) from None
    root = compose(text, file)
    r = Reader(file)
    if root is None:
        raise RulesError([Problem(file, 1, 1, "the examples file is empty")])
    known_groups = _known_groups(ruleset)
    cases = []
    names: set[str] = set()
    for item in r.sequence(root, "the examples file") or ():
        case = _case(r, item, known_groups)
        if case is None:
            continue
        if case.name in names:
            r.error(item, f"example name {case.name!r} is used twice")
        names.add(case.name)
        cases.append(case)
    if r.problems:
        raise RulesError(r.problems)
    return cases


def _known_groups(ruleset: RuleSet) -> set[str]:
    groups = set(ruleset.groups)
    if ruleset.defaults.group:
        groups.add(ruleset.defaults.group)
    for rule in (*ruleset.intake, *ruleset.ticket_event):
        groups.update(str(a.value) for a in rule.then if a.kind == "set_group")
    return groups


def _case(r: Reader, node: Node, known_groups: set[str]) -> Case | None:
    items = r.mapping(node, "example")
    if items is None:
        return None
    fields = {key: value for key, _, value in items}
    for key, key_node, _ in items:
        if key not in CASE_KEYS:
            r.unknown(key_node, key, CASE_KEYS, "example setting")
    name = r.string(fields["name"], "example name") if "name" in fields else None
    if "name" not in fields:
        r.error(node, "example needs a name")
    if ("report" in fields) == ("event" in fields):
        r.error(node, "example needs a report or an event (one of them)")
        return None
    at = DEFAULT_AT
    if "at" in fields:
        value = r.value(fields["at"])
        if isinstance(value, datetime):
            at = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, date):
            at = datetime(value.year, value.month, value.day, 12, tzinfo=UTC)
        else:
            r.error(fields["at"], "at must be a date and time like 2026-03-02T10:00:00+01:00")
    report = event = None
    what = "report" if "report" in fields else "event"
    data = r.value(fields[what])
    if not isinstance(data, dict):
        r.error(fields[what], f"{what} must be a mapping")
        return None
    try:
        if what == "report":
            data = (
                {"received_at": at, **data} if "at" not in fields else {**data, "received_at": at}
            )
            report = report_from_data(data)
        else:
            data = (
                {"occurred_at": at, **data} if "at" not in fields else {**data, "occurred_at": at}
            )
            event = TicketEvent.model_validate(data)
    except (ValueError, ValidationError) as exc:
        r.error(fields[what], f"{what}: {_first_error(exc)}")
        return None
    expect = _expect(r, fields["expect"], known_groups) if "expect" in fields else None
    if "expect" not in fields:
        r.error(node, "example needs `expect`")
    if name is None or expect is None:
        return None
    return Case(name, node.start_mark.line + 1, report, event, expect)


def _expect(r: Reader, node: Node, known_groups: set[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    before = len(r.problems)
    for key, key_node, value_node in r.mapping(node, "expect") or ():
        if key not in EXPECT_KEYS:
            r.unknown(key_node, key, EXPECT_KEYS, "expectation")
            continue
        if key in ("tags_include", "tags_exclude", "notify"):
            values = r.strings(value_node, key, allow_numbers=True)
            if values is not None:
                out[key] = tuple(normalize_tag(v) if key != "notify" else v for v in values)
        elif key == "escalate":
            out[key] = r.boolean(value_node, key)
        elif key == "custom_fields":
            custom = r.value(value_node)
            if not isinstance(custom, dict):
                r.error(value_node, "custom_fields must be a mapping")
            else:
                out[key] = {str(k): v for k, v in custom.items()}
        elif r.is_null(value_node):
            out[key] = None
        else:
            value = r.string(value_node, key, allow_numbers=key == "assignee")
            choices = {"priority": PRIORITIES, "type": TICKET_TYPES}.get(key)
            if key == "group" and value is not None and value not in known_groups:
                r.unknown(value_node, value, sorted(known_groups), "group")
            elif choices and value is not None and value not in choices:
                r.unknown(value_node, value, choices, key)
            else:
                out[key] = value
    return out if len(r.problems) == before else None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)


def run_case(case: Case, ruleset: RuleSet) -> Result:
    """Evaluate one example and compare with what it expects."""
    if case.report is not None:
        decision = evaluate(case.report, ruleset)
    else:
        assert case.event is not None
        decision = evaluate_event(case.event, ruleset)
    failures = []
    for key, wanted in case.expect.items():
        if key in ("group", "priority", "type", "assignee"):
            got = getattr(decision, key)
            if got != wanted:
                why = decision.why.get(key)
                by = f" (set by {why.set_by})" if why else " (no rule set it)"
                failures.append(f"{key}: expected {wanted}, got {got}{by}")
        elif key == "tags_include":
            missing = [t for t in wanted if t not in decision.tags]
            if missing:
                failures.append(
                    f"tags: expected {', '.join(missing)}; got {', '.join(decision.tags) or '-'}"
                )
        elif key == "tags_exclude":
            present = [t for t in wanted if t in decision.tags]
            for tag in present:
                cause = decision.tag_cause(tag)
                failures.append(f"tags: expected no {tag}, added by {cause or 'the report'}")
        elif key == "escalate":
            if decision.escalate != wanted:
                failures.append(f"escalate: expected {wanted}, got {decision.escalate}")
        elif key == "notify":
            channels = [n.channel for n in decision.notifications]
            missing = [c for c in wanted if c not in channels]
            if missing:
                failures.append(
                    f"notify: expected {', '.join(missing)}; got {', '.join(channels) or 'none'}"
                )
        elif key == "custom_fields":
            for name, value in wanted.items():
                got = decision.custom_fields.get(name)
                if got != value:
                    failures.append(f"custom_fields.{name}: expected {value}, got {got}")
    return Result(case, decision, tuple(failures))
