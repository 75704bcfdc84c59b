"""Conditions: small named pieces that parse their YAML, compile to closures and name index keys.

A condition in the rule file is a mapping of condition names to values;
several names in one mapping must all hold. `all`, `any` and `not` nest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yaml.nodes import MappingNode, Node

from rules.model import (
    CHANGEABLE_FIELDS,
    EVENT_TYPES,
    PRIORITIES,
    STATUSES,
    TICKET_TYPES,
    AllOf,
    AnyOf,
    BusinessHours,
    Condition,
    Not,
    Scope,
    When,
    normalize_tag,
)
from rules.semver import Version, VersionSpec
from rules.text import FilteredPattern, PhraseMatcher, Text, words
from rules.yaml_reader import Reader

PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}
SOURCES = ("slack_command", "slack_modal", "slack_shortcut", "slack_reaction", "mobile")

# An index key: (kind, value). A rule whose condition needs one of its keys
# present is only looked at for reports (or events) that have one.
Key = tuple[str, str]
Test = Callable[["State"], bool]


class State:
    """The facts rules test, as the rules so far have left them. Strings are casefolded."""

    __slots__ = (
        "_open",
        "changed",
        "comment_author",
        "comment_public",
        "custom",
        "facts",
        "hours",
        "moment",
        "tags",
        "text",
        "versions",
    )

    def __init__(
        self,
        *,
        text: Text,
        tags: set[str],
        facts: dict[str, str | None],
        custom: dict[str, str],
        versions: dict[str, Version | None],
        moment: datetime,
        hours: BusinessHours | None,
        changed: frozenset[str] = frozenset(),
        comment_public: bool | None = None,
        comment_author: str | None = None,
    ) -> None:
        self.text = text
        self.tags = tags
        self.facts = facts
        self.custom = custom
        self.versions = versions
        self.moment = moment
        self.hours = hours
        self.changed = changed
        self.comment_public = comment_public
        self.comment_author = comment_author
        self._open: bool | None = None

    def business_hours(self) -> bool:
        """Whether the report or event came in business hours (computed once, when asked)."""
        if self._open is None:
            self._open = self.hours is not None and self.hours.is_open(self.moment)
        return self._open


@dataclass
class Context:
    """What a condition's parser needs to know about the file around it."""

    scope: Scope
    has_business_hours: bool = False
    custom_fields: dict[str, int] = field(default_factory=dict)
    groups: tuple[str, ...] = ()


def fold(value: object) -> str:
    """The casefolded string form of a fact or a condition's value."""
    return str(value).strip().casefold()


# ---------------------------------------------------------------- the pieces


class Piece:
    """A condition kind: its name, what it is for, where it may be used, how it reads and runs."""

    name = ""
    label = ""
    scopes: tuple[Scope, ...] = ("intake", "ticket_event")
    syntax = ""

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        """Read the condition's value from YAML (recording problems) into a When."""
        raise NotImplementedError

    def compile(self, cond: Condition) -> Test:
        """A closure that tests the condition on a State."""
        raise NotImplementedError

    def keys(self, cond: Condition) -> frozenset[Key] | None:
        """Keys one of which must be present for the condition to hold; None when unknown."""
        return None


def _leaf(r: Reader, node: Node, kind: str, op: str, values: tuple[Any, ...]) -> Condition:
    return Condition(kind, op, values, r.where(node))


def _all(r: Reader, node: Node, parts: list[When]) -> When:
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts), r.where(node))


def _operators(
    r: Reader, node: Node, what: str, ops: Collection[str]
) -> list[tuple[str, Node, Node]] | None:
    """A `{operator: value}` condition's known (operator, key node, value node) entries.

    None when it is not a mapping; an empty one, and each unknown operator, is an error
    at its place in the file (an unknown one with the nearest known name).
    """
    items = r.mapping(node, f"{what} condition")
    if items is None:
        return None
    if not items:
        r.error(node, f"{what} condition needs one of: {', '.join(ops)}")
        return None
    known = []
    for op, key_node, value_node in items:
        if op not in ops:
            r.unknown(key_node, op, ops, f"{what} operator")
            continue
        known.append((op, key_node, value_node))
    return known


class Tags(Piece):
    """tags: {includes: [a, b]} (at least one), includes_all, excludes (none), excludes_any."""

    name = "tags"
    label = "the ticket's tags"
    syntax = "{includes | includes_all | excludes | excludes_any: tag or [tags]}"
    OPS = {
        "includes": "includes_any",
        "includes_any": "includes_any",
        "includes_all": "includes_all",
        "excludes": "excludes_all",
        "excludes_all": "excludes_all",
        "excludes_any": "excludes_any",
    }

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        items = _operators(r, node, "tags", self.OPS)
        if items is None:
            return None
        parts: list[When] = []
        for op, key_node, value_node in items:
            tags = r.strings(value_node, f"tags {op}", allow_numbers=True)
            if tags is not None:
                normalized = tuple(normalize_tag(t) for t in tags)
                parts.append(_leaf(r, key_node, "tags", self.OPS[op], normalized))
        return _all(r, node, parts) if parts else None

    def compile(self, cond: Condition) -> Test:
        wanted = frozenset(cond.values)
        if cond.op == "includes_any":
            return lambda s: not wanted.isdisjoint(s.tags)
        if cond.op == "includes_all":
            return lambda s: wanted <= s.tags
        if cond.op == "excludes_all":
            return lambda s: wanted.isdisjoint(s.tags)
        return lambda s: not wanted <= s.tags  # excludes_any: at least one is missing

    def keys(self, cond: Condition) -> frozenset[Key] | None:
        if cond.op == "includes_any":
            return frozenset(("tag", t) for t in cond.values)
        if cond.op == "includes_all":
            return frozenset({("tag", cond.values[0])})
        return None


class TextPiece(Piece):
    """text: {contains: [words or phrases]} (any), contains_all, matches: regex (or a list: any)."""

    name = "text"
    label = "the subject and description (or comment)"
    syntax = "{contains | contains_all: phrase or [phrases], matches: regex or [regexes]}"
    OPS = ("contains", "contains_all", "matches")

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        items = _operators(r, node, "text", self.OPS)
        if items is None:
            return None
        parts: list[When] = []
        for op, key_node, value_node in items:
            values = r.strings(value_node, f"text {op}", allow_numbers=True)
            if values is None:
                continue
            if op == "matches":
                ok = True
                items_nodes = getattr(value_node, "value", None)
                nodes = items_nodes if isinstance(items_nodes, list) else [value_node]
                for pattern, pattern_node in zip(values, nodes, strict=False):
                    ok = check_regex(r, pattern_node, pattern) and ok
                if ok:
                    parts.append(_leaf(r, key_node, "text", "matches", values))
                continue
            phrases = []
            for value in values:
                phrase = words(value)
                if not phrase:
                    r.error(value_node, f"text {op}: {value!r} has no words to match")
                else:
                    phrases.append(phrase)
            if len(phrases) == len(values):
                opname = "contains_any" if op == "contains" else "contains_all"
                parts.append(_leaf(r, key_node, "text", opname, tuple(phrases)))
        return _all(r, node, parts) if parts else None

    def compile(self, cond: Condition) -> Test:
        if cond.op == "matches":
            patterns = [FilteredPattern.of(p) for p in cond.values]
            return lambda s: any(p.search(s.text) is not None for p in patterns)
        phrases: tuple[tuple[str, ...], ...] = cond.values
        if cond.op == "contains_all":
            return lambda s: all(s.text.has_phrase(p) for p in phrases)
        matcher = PhraseMatcher(phrases)
        return lambda s: matcher.any_in(s.text)

    def keys(self, cond: Condition) -> frozenset[Key] | None:
        if cond.op == "contains_any":
            return frozenset(("word", p[0]) for p in cond.values)
        if cond.op == "contains_all":
            rarest = max((p[0] for p in cond.values), key=len)
            return frozenset({("word", rarest)})
        return None


def check_regex(r: Reader, node: Node, pattern: str) -> bool:
    """Record a problem (with the column of the error) if `pattern` is not a valid regex."""
    try:
        re.compile(pattern)
    except re.error as exc:
        r.error_at(node, exc.pos or 0, f"invalid regular expression {pattern!r}: {exc.msg}")
        return False
    return True


class Fact(Piece):
    """A fact with a single value, compared case-insensitively: `platform: ios`, or a list (any)."""

    def __init__(
        self,
        name: str,
        label: str,
        scopes: tuple[Scope, ...] = ("intake",),
        choices: tuple[str, ...] = (),
        nullable: bool = False,
        indexed: bool = True,
    ) -> None:
        self.name = name
        self.label = label
        self.scopes = scopes
        self.choices = choices
        self.nullable = nullable
        self.indexed = indexed
        self.syntax = "value or [values]" + (" (null: not set)" if nullable else "")

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        if self.nullable and r.is_null(node):
            return _leaf(r, node, self.name, "is", (None,))
        values = r.strings(node, self.name, allow_numbers=True)
        if values is None:
            return None
        for value in values:
            if self.choices and value not in self.choices:
                r.unknown(node, value, self.choices, f"{self.name} value")
                return None
        if self.name == "group" and ctx.groups:
            for value in values:
                if fold(value) not in {fold(g) for g in ctx.groups}:
                    r.unknown(node, value, ctx.groups, "group")
                    return None
        return _leaf(r, node, self.name, "is", tuple(fold(v) for v in values))

    def compile(self, cond: Condition) -> Test:
        name = self.name
        if len(cond.values) == 1:
            only = cond.values[0]
            return lambda s: s.facts.get(name) == only
        wanted = frozenset(cond.values)
        return lambda s: s.facts.get(name) in wanted

    def keys(self, cond: Condition) -> frozenset[Key] | None:
        if not self.indexed or None in cond.values:
            return None
        return frozenset((self.name, v) for v in cond.values)


class Priority(Piece):
    """priority: high | [high, urgent] | {is: ..., at_least: high, at_most: normal}."""

    name = "priority"
    label = "the ticket's priority (low < normal < high < urgent)"
    syntax = "value, [values] or {is | at_least | at_most: value}"
    OPS = ("is", "at_least", "at_most")

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        if not isinstance(node, MappingNode):
            return self._values(r, node, node, "is")
        items = _operators(r, node, "priority", self.OPS)
        if items is None:
            return None
        parts: list[When] = []
        for op, key_node, value_node in items:
            part = self._values(r, key_node, value_node, op)
            if part is not None:
                parts.append(part)
        return _all(r, node, parts) if parts else None

    def _values(self, r: Reader, at: Node, node: Node, op: str) -> Condition | None:
        values = r.strings(node, f"priority {op}")
        if values is None:
            return None
        for value in values:
            if value not in PRIORITIES:
                r.unknown(node, value, PRIORITIES, "priority")
                return None
        if op != "is" and len(values) != 1:
            r.error(node, f"priority {op} takes one priority")
            return None
        return _leaf(r, at, "priority", op, values)

    def compile(self, cond: Condition) -> Test:
        if cond.op == "is":
            wanted = frozenset(cond.values)
            return lambda s: s.facts.get("priority") in wanted
        bound = PRIORITY_RANK[cond.values[0]]
        if cond.op == "at_least":
            return lambda s: PRIORITY_RANK.get(s.facts.get("priority") or "", -1) >= bound
        return lambda s: 0 <= PRIORITY_RANK.get(s.facts.get("priority") or "", -1) <= bound


class VersionPiece(Piece):
    """app_version: ">=5.2, <6" (all clauses), "==5.3.*", "5.2.1"; unknown versions never match."""

    syntax = "a spec like '>=5.2, <6' or '==5.3.*'"

    def __init__(self, name: str, label: str) -> None:
        self.name = name
        self.label = label
        self.scopes = ("intake",)

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        text = r.string(node, self.name, allow_numbers=True)
        if text is None:
            return None
        try:
            spec = VersionSpec.parse(text)
        except ValueError as exc:
            r.error(node, f"{self.name}: {exc}")
            return None
        return _leaf(r, node, self.name, "spec", (spec,))

    def compile(self, cond: Condition) -> Test:
        name = self.name
        spec: VersionSpec = cond.values[0]

        def test(s: State) -> bool:
            version = s.versions.get(name)
            return version is not None and spec.contains(version)

        return test


class CustomField(Piece):
    """custom_field: {name_or_id: value or [values]} (all names must match)."""

    name = "custom_field"
    label = "a custom field of the report or ticket"
    syntax = "{field name or id: value or [values]}"

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        items = r.mapping(node, "custom_field condition")
        if items is None:
            return None
        parts: list[When] = []
        for name, key_node, value_node in items:
            if r.is_null(value_node):
                parts.append(_leaf(r, key_node, "custom_field", "is", (name, (None,))))
                continue
            values = r.strings(value_node, f"custom_field {name}", allow_numbers=True)
            if values is not None:
                folded = tuple(fold(v) for v in values)
                parts.append(_leaf(r, key_node, "custom_field", "is", (name, folded)))
        return _all(r, node, parts) if parts else None

    def compile(self, cond: Condition) -> Test:
        name, values = cond.values
        wanted = frozenset(values)
        return lambda s: s.custom.get(name) in wanted


class Changed(Piece):
    """changed: priority | [status, group] (at least one of them changed in this event)."""

    name = "changed"
    label = "the fields this ticket event changed"
    scopes = ("ticket_event",)
    syntax = f"field or [fields] of: {', '.join(CHANGEABLE_FIELDS)}"

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        values = r.strings(node, "changed")
        if values is None:
            return None
        for value in values:
            if value not in CHANGEABLE_FIELDS:
                r.unknown(node, value, CHANGEABLE_FIELDS, "changed field")
                return None
        return _leaf(r, node, "changed", "any", values)

    def compile(self, cond: Condition) -> Test:
        wanted = frozenset(cond.values)
        return lambda s: not wanted.isdisjoint(s.changed)

    def keys(self, cond: Condition) -> frozenset[Key] | None:
        return frozenset(("changed", v) for v in cond.values)


class CommentPiece(Piece):
    """comment: {public: true, author: end_user} (the comment this event added)."""

    name = "comment"
    label = "the comment a comment_added event carries"
    scopes = ("ticket_event",)
    syntax = "{public: true|false, author: end_user | agent | admin}"
    ROLES = ("end_user", "agent", "admin")

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        items = r.mapping(node, "comment condition")
        if items is None:
            return None
        parts: list[When] = []
        for key, key_node, value_node in items:
            if key == "public":
                public = r.boolean(value_node, "comment public")
                if public is not None:
                    parts.append(_leaf(r, key_node, "comment", "public", (public,)))
            elif key == "author":
                roles = r.strings(value_node, "comment author")
                if roles is None:
                    continue
                bad = [role for role in roles if role not in self.ROLES]
                if bad:
                    r.unknown(value_node, bad[0], self.ROLES, "comment author role")
                    continue
                parts.append(_leaf(r, key_node, "comment", "author", roles))
            else:
                r.unknown(key_node, key, ("public", "author"), "comment condition")
        return _all(r, node, parts) if parts else None

    def compile(self, cond: Condition) -> Test:
        if cond.op == "public":
            wanted = cond.values[0]
            return lambda s: s.comment_public is wanted
        roles = frozenset(cond.values)
        return lambda s: s.comment_author in roles


class BusinessHoursPiece(Piece):
    """business_hours: true (inside the file's business_hours) or false (outside them)."""

    name = "business_hours"
    label = "whether the report or event came in business hours"
    syntax = "true or false"

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        value = r.boolean(node, "business_hours")
        if value is None:
            return None
        if not ctx.has_business_hours:
            r.error(node, "business_hours condition needs a business_hours section in the file")
            return None
        return _leaf(r, node, "business_hours", "is", (value,))

    def compile(self, cond: Condition) -> Test:
        wanted = cond.values[0]
        return lambda s: s.business_hours() is wanted


class ExternalPiece(Piece):
    """external: true (the requester is of another organization: Slack Connect) or false."""

    name = "external"
    label = "whether the requester is of another organization (a Slack Connect channel)"
    # Known when a report is filed; a ticket event does not carry it (it would always
    # read false there, and match every event with `external: false`).
    scopes = ("intake",)
    syntax = "true or false"

    def parse(self, r: Reader, ctx: Context, node: Node) -> When | None:
        value = r.boolean(node, "external")
        if value is None:
            return None
        return _leaf(r, node, "external", "is", (value,))

    def compile(self, cond: Condition) -> Test:
        wanted = cond.values[0]
        return lambda s: (s.facts.get("external") == "true") is wanted


PIECES: dict[str, Piece] = {
    p.name: p
    for p in (
        Tags(),
        TextPiece(),
        Fact("source", "where the report came from", choices=SOURCES),
        Fact("platform", "the app platform (ios, android, web, ...)"),
        Fact("category", "the report's category"),
        Fact("severity", "the report's severity"),
        Fact("os", "the reporter's operating system"),
        Fact("device", "the reporter's device model"),
        Fact("locale", "the reporter's locale"),
        Fact("app_id", "the mobile app's id"),
        VersionPiece("app_version", "the app version (semantic version)"),
        VersionPiece("os_version", "the OS version (semantic version)"),
        Fact("reporter_domain", "the domain of the reporter's email"),
        Fact("slack_channel", "the Slack channel id the report came from"),
        Fact("channel", "the Slack channel id the report came from (as slack_channel)"),
        Fact("organization", "the Slack Connect requester's organization (its Zendesk name)"),
        ExternalPiece(),
        CustomField(),
        Priority(),
        Fact(
            "group",
            "the ticket's group (as set so far)",
            ("intake", "ticket_event"),
            nullable=True,
            indexed=False,
        ),
        Fact(
            "assignee",
            "the ticket's assignee (as set so far)",
            ("intake", "ticket_event"),
            nullable=True,
            indexed=False,
        ),
        Fact(
            "type",
            "the ticket's type (as set so far)",
            ("intake", "ticket_event"),
            choices=TICKET_TYPES,
            nullable=True,
            indexed=False,
        ),
        Fact("event", "the ticket event's type", ("ticket_event",), choices=EVENT_TYPES),
        Fact("status", "the ticket's status", ("ticket_event",), choices=STATUSES),
        Fact(
            "via", "how the event's change was made (web, api, email, rule, ...)", ("ticket_event",)
        ),
        Changed(),
        CommentPiece(),
        BusinessHoursPiece(),
    )
}
COMBINATORS = ("all", "any", "not")


def parse_when(r: Reader, ctx: Context, node: Node) -> When | None:
    """A `when`: a mapping of condition names (several: all must hold) or a list (all)."""
    if isinstance(node, MappingNode):
        items = r.mapping(node, "condition")
        if items is None:
            return None
        if not items:
            r.error(node, "empty condition; leave `when` out to match everything")
            return None
        parts: list[When] = []
        ok = True
        for name, key_node, value_node in items:
            part = _parse_named(r, ctx, name, key_node, value_node)
            if part is None:
                ok = False
            else:
                parts.append(part)
        if not ok:
            return None
        return _all(r, node, parts)
    seq = r.sequence(node, "condition")
    if seq is None:
        return None
    each = _parse_each(r, ctx, seq)
    return None if each is None else AllOf(tuple(each), r.where(node))


def _parse_each(r: Reader, ctx: Context, nodes: list[Node]) -> list[When] | None:
    # Parse every item, so one bad condition does not hide the problems after it.
    parts = [parse_when(r, ctx, item) for item in nodes]
    if any(p is None for p in parts):
        return None
    return [p for p in parts if p is not None]


def _parse_named(r: Reader, ctx: Context, name: str, key_node: Node, node: Node) -> When | None:
    if name in ("all", "any"):
        seq = r.sequence(node, f"`{name}`")
        if seq is None:
            return None
        parts = _parse_each(r, ctx, seq)
        if parts is None:
            return None
        return (AllOf if name == "all" else AnyOf)(tuple(parts), r.where(key_node))
    if name == "not":
        inner = parse_when(r, ctx, node)
        return None if inner is None else Not(inner, r.where(key_node))
    piece = PIECES.get(name)
    if piece is None:
        r.unknown(key_node, name, [*COMBINATORS, *PIECES], "condition")
        return None
    if ctx.scope not in piece.scopes:
        where = "ticket_event" if "ticket_event" in piece.scopes else "intake"
        r.error(key_node, f"condition {name!r} only works in {where} rules, not {ctx.scope}")
        return None
    return piece.parse(r, ctx, node)


# ---------------------------------------------------------------- compiling


def compile_when(when: When | None) -> Test | None:
    """The closure for a `when` (None: always true)."""
    if when is None:
        return None
    if isinstance(when, Condition):
        return PIECES[when.kind].compile(when)
    if isinstance(when, Not):
        inner = compile_when(when.condition)
        assert inner is not None
        return lambda s: not inner(s)
    tests = [t for t in (compile_when(c) for c in when.conditions) if t is not None]
    if isinstance(when, AllOf):
        if len(tests) == 1:
            return tests[0]
        if len(tests) == 2:
            a, b = tests
            return lambda s: a(s) and b(s)
        return lambda s: all(t(s) for t in tests)
    return lambda s: any(t(s) for t in tests)


# Keys that tell most about a report go first when a rule offers several.
_KEY_PREFERENCE = {"tag": 0, "word": 0, "event": 1, "changed": 1}


def index_keys(when: When | None) -> frozenset[Key] | None:
    """Keys one of which `when` needs present (None: the rule is always a candidate)."""
    if when is None:
        return None
    if isinstance(when, Condition):
        return PIECES[when.kind].keys(when)
    if isinstance(when, Not):
        return None
    options = [index_keys(c) for c in when.conditions]
    if isinstance(when, AnyOf):
        if not options or any(o is None for o in options):
            return None
        return frozenset().union(*(o for o in options if o is not None))
    keyed = [o for o in options if o]
    if not keyed:
        return None
    return min(keyed, key=lambda o: (max(_KEY_PREFERENCE.get(k, 2) for k, _ in o), len(o)))
