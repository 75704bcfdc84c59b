"""The engine: `evaluate(report, ruleset)` and `evaluate_event(event, ruleset)` -> Decision. No I/O.

Semantics (Zendesk triggers, one pass): rules run first to last; a rule whose
`when` holds runs its actions at once, so later rules see its tags and fields;
`stop` ends the pass. For intake, the taxonomy tags the text before any rule.

Speed: conditions are compiled into closures once per RuleSet, and each rule
is indexed by keys its `when` needs (a tag, a word, a platform, an event
type). A report only visits the rules whose keys it has, in order; a tag added
by a rule brings in the later rules that need that tag.
"""

from __future__ import annotations

import heapq
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.report import Report
from integrations.ticket_event import TicketEvent
from rules.actions import ACTIONS, Apply, Run, render
from rules.conditions import Key, State, Test, compile_when, fold, index_keys
from rules.decision import Cause, Decision, RuleRef
from rules.model import Rule, RuleSet, Scope, normalize_tag
from rules.semver import Version
from rules.taxonomy import Taxonomy
from rules.text import Text

# Facts that never change while rules run: their index keys are known up front.
_STATIC_KINDS = (
    "source",
    "platform",
    "category",
    "severity",
    "os",
    "device",
    "locale",
    "app_id",
    "reporter_domain",
    "slack_channel",
    "channel",
    "organization",
    "event",
    "status",
    "via",
)
_EXCERPT = 200


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its `when` as a closure and its actions as closures."""

    rule: Rule
    test: Test | None
    actions: tuple[Apply, ...]
    cause: Cause
    ref: RuleRef


# What the rules file's `defaults:` set is caused by (one object: it never changes).
_DEFAULTS = Cause(by="defaults")


class CompiledScope:
    """The rules of one scope, compiled and indexed by the keys they need."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = [
            CompiledRule(
                rule=rule,
                test=compile_when(rule.when),
                actions=tuple(ACTIONS[a.kind].compile(a) for a in rule.then),
                cause=Cause(by="rule", rule=rule.name, index=rule.index),
                ref=RuleRef(rule=rule.name, index=rule.index),
            )
            for rule in rules
        ]
        self.always: list[int] = []
        self.by_tag: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        self.by_fact: dict[Key, list[int]] = {}
        for position, rule in enumerate(rules):
            keys = index_keys(rule.when)
            if not keys:
                self.always.append(position)
                continue
            for kind, value in keys:
                target = {"tag": self.by_tag, "word": self.by_word}.get(kind)
                if target is not None:
                    target.setdefault(value, []).append(position)
                else:
                    self.by_fact.setdefault((kind, value), []).append(position)
        self.word_keys = frozenset(self.by_word)
        self.tag_keys = frozenset(self.by_tag)

    def candidates(self, state: State) -> list[int]:
        """The positions of rules that may match, before any rule has run (a heap)."""
        found = set(self.always)
        for word in state.text.token_set & self.word_keys:
            found.update(self.by_word[word])
        for tag in state.tags & self.tag_keys:
            found.update(self.by_tag[tag])
        if self.by_fact:
            for kind in _STATIC_KINDS:
                value = state.facts.get(kind)
                if value is not None:
                    found.update(self.by_fact.get((kind, value), ()))
            for name in state.changed:
                found.update(self.by_fact.get(("changed", name), ()))
        heap = list(found)
        heapq.heapify(heap)
        return heap

    def run(self, state: State, run: Run) -> tuple[list[RuleRef], RuleRef | None]:
        """Run the rules in order; return the rules that matched and the one that stopped."""
        heap = self.candidates(state)
        queued = set(heap)
        matched: list[RuleRef] = []
        rules = self.rules
        while heap:
            position = heapq.heappop(heap)
            compiled = rules[position]
            if compiled.test is not None and not compiled.test(state):
                continue
            matched.append(compiled.ref)
            run.new_tags.clear()
            for apply in compiled.actions:
                apply(run, compiled.cause)
            if compiled.rule.stop:
                return matched, matched[-1]
            # Tags this rule added can satisfy later rules that were not candidates.
            for tag in run.new_tags:
                for later in self.by_tag.get(tag, ()):
                    if later > position and later not in queued:
                        queued.add(later)
                        heapq.heappush(heap, later)
        return matched, None


@dataclass(frozen=True)
class Program:
    """A RuleSet compiled for evaluation: the taxonomy matcher and both scopes."""

    ruleset: RuleSet
    taxonomy: Taxonomy
    intake: CompiledScope
    ticket_event: CompiledScope

    def scope(self, scope: Scope) -> CompiledScope:
        """The compiled rules of a scope."""
        return self.intake if scope == "intake" else self.ticket_event


_PROGRAMS: weakref.WeakKeyDictionary[RuleSet, Program] = weakref.WeakKeyDictionary()


def compile_rules(ruleset: RuleSet) -> Program:
    """The compiled form of a RuleSet (built once per RuleSet, then reused)."""
    program = _PROGRAMS.get(ruleset)
    if program is None:
        program = Program(
            ruleset=ruleset,
            taxonomy=Taxonomy(ruleset.taxonomy),
            intake=CompiledScope(ruleset.intake),
            ticket_event=CompiledScope(ruleset.ticket_event),
        )
        _PROGRAMS[ruleset] = program
    return program


# ---------------------------------------------------------------- intake


def evaluate(report: Report, ruleset: RuleSet, *, now: datetime | None = None) -> Decision:
    """Route a report: taxonomy tags, then the intake rules, first to last.

    Business hours are judged at `now` (default: when the report was received).
    """
    program = compile_rules(ruleset)
    state = intake_state(report, ruleset, now=now)
    text = state.text
    f = report.fields
    initial_tags = set(state.tags)
    reporter = report.reporter.name or report.reporter.email or report.reporter.slack_user_id or ""
    base = {
        "subject": report.subject,
        "description": report.description,
        "excerpt": _excerpt(report.description),
        "platform": f.platform or "",
        "app_version": f.app_version or "",
        "os": f.os or "",
        "os_version": f.os_version or "",
        "device": f.device or "",
        "category": f.category or "",
        "severity": f.severity or "",
        "source": report.source,
        "reporter": reporter,
        "reporter_name": report.reporter.name or "",
        "reporter_email": report.reporter.email or "",
    }
    run = Run(state, base)
    for name in ("group", "priority", "type", "assignee"):
        value = getattr(ruleset.defaults, name)
        if value is not None:
            run.set(name, value, _DEFAULTS)
    for hit in program.taxonomy.match(text):
        detail = f'{hit.kind} "{hit.rule}"' + (
            f" matched {hit.matched!r}" if hit.kind == "pattern" else ""
        )
        # Built from the engine's own values: pydantic's check of each (a dozen per
        # report) would cost more than the rest of the taxonomy step.
        run.add_tag(hit.tag, Cause.model_construct(by="taxonomy", detail=detail))
    matched, stopped = program.intake.run(state, run)
    return _decision("intake", ruleset, run, initial_tags, matched, stopped)


def intake_state(report: Report, ruleset: RuleSet, *, now: datetime | None = None) -> State:
    """The facts intake conditions test, before any rule ran (rules/targets.py reuses it)."""
    text = Text.of(report.text)
    f = report.fields
    email = report.reporter.email or ""
    domain = email.rpartition("@")[2] if "@" in email else None
    facts: dict[str, str | None] = {
        "source": report.source,
        "platform": f.platform,
        "category": f.category,
        "severity": f.severity,
        "os": f.os,
        "device": f.device,
        "locale": f.locale,
        "app_id": f.app_id,
        "reporter_domain": domain,
        "slack_channel": report.reply.channel_id,
        "channel": report.reply.channel_id,
        "organization": f.organization,
        "external": "true" if f.external else "false",
        "group": None,
        "assignee": None,
        "type": None,
        "priority": None,
    }
    facts = {k: (None if v is None else fold(v)) for k, v in facts.items()}
    return State(
        text=text,
        tags={normalize_tag(t) for t in report.tags},
        facts=facts,
        custom={k: fold(v) for k, v in report.custom.items()},
        versions={
            "app_version": Version.parse(f.app_version) if f.app_version else None,
            "os_version": Version.parse(f.os_version) if f.os_version else None,
        },
        moment=now or report.received_at,
        hours=ruleset.business_hours,
    )


# ---------------------------------------------------------------- ticket events


def evaluate_event(event: TicketEvent, ruleset: RuleSet) -> Decision:
    """Run the ticket_event rules on a Zendesk ticket event; the Decision holds the changes."""
    program = compile_rules(ruleset)
    facts: dict[str, str | None] = {
        "event": event.type,
        "status": event.status,
        "via": event.via,
        "priority": event.priority,
        "group": event.group,
        "assignee": event.assignee,
        "type": event.ticket_type,
    }
    facts = {k: (None if v is None else fold(v)) for k, v in facts.items()}
    initial_tags = {normalize_tag(t) for t in event.tags}
    comment = event.comment
    state = State(
        text=Text.of(event.text),
        tags=set(initial_tags),
        facts=facts,
        custom={k: fold(v) for k, v in event.custom_fields.items()},
        versions={},
        moment=event.occurred_at,
        hours=ruleset.business_hours,
        changed=frozenset(event.changed),
        comment_public=comment.public if comment else None,
        comment_author=comment.author_role if comment else None,
    )
    base = {
        "subject": event.subject,
        "ticket_id": str(event.ticket_id),
        "event": event.type,
        "status": event.status or "",
        "via": event.via or "",
        "comment_excerpt": _excerpt(comment.body) if comment else "",
        "priority": event.priority or "",
        "group": event.group or "",
        "assignee": event.assignee or "",
        "type": event.ticket_type or "",
    }
    run = Run(state, base)
    matched, stopped = program.ticket_event.run(state, run)
    return _decision("ticket_event", ruleset, run, initial_tags, matched, stopped)


# ---------------------------------------------------------------- the Decision


def _decision(
    scope: Scope,
    ruleset: RuleSet,
    run: Run,
    initial_tags: set[str],
    matched: list[RuleRef],
    stopped: RuleRef | None,
) -> Decision:
    # Built as plain data and validated once: pydantic-core checks a few hundred
    # small nested objects faster than Python can construct them one by one.
    why: dict[str, Any] = {}
    for name, writes in run.writes.items():
        value, cause = writes[-1]
        overridden = [{"value": v, "cause": c} for v, c in writes[:-1]]
        why[name] = {"value": value, "set_by": cause, "overridden": overridden}
    values = run.template_values()
    notifications = [
        {
            "channel": channel,
            "text": render(template, {**values, "rule": cause.rule or ""}),
            "cause": cause,
        }
        for channel, template, cause in run.notifications
    ]
    escalate = run.escalate
    if escalate is not None and run.escalate_cause is not None:
        why["escalate"] = {"value": True, "set_by": run.escalate_cause}
    final = run.state.tags
    custom_ids = {k: ruleset.custom_fields[k] for k in run.custom if k in ruleset.custom_fields}

    def field(name: str) -> str | None:
        value = run.values.get(name)
        return None if value is None else str(value)

    return Decision.model_validate(
        {
            "scope": scope,
            "rules_version": ruleset.version,
            "tags": sorted(final),
            "tags_added": sorted(final - initial_tags),
            "tags_removed": sorted(initial_tags - final),
            "group": field("group"),
            "assignee": field("assignee"),
            "priority": field("priority"),
            "type": field("type"),
            "custom_fields": dict(run.custom),
            "custom_field_ids": custom_ids,
            "notifications": notifications,
            "escalate": escalate is not None,
            "escalate_channel": escalate.channel if escalate else None,
            "force_problem": escalate.force_problem if escalate else False,
            "why": why,
            "tag_changes": [
                {"tag": tag, "change": change, "cause": cause}
                for tag, change, cause in run.tag_changes
            ],
            "matched_rules": matched,
            "stopped_by": stopped,
        }
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1].rstrip() + "…"
