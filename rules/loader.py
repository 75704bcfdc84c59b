"""`load_rules(path) -> RuleSet`: read a rule file, or raise RulesError listing every problem.

Each problem names file, line and column (from PyYAML's node marks) and, for a
misspelt name, the nearest valid one. Unknown names are rejected here, never
skipped at run time.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from pathlib import Path

from yaml.nodes import Node

from rules.actions import ACTIONS, Context, parse_action
from rules.conditions import check_regex, parse_when
from rules.model import (
    PRIORITIES,
    SCOPES,
    TICKET_TYPES,
    WEEKDAYS,
    Action,
    BusinessHours,
    Defaults,
    ResponseTarget,
    Rule,
    RuleSet,
    Scope,
    TaxonomyTag,
    normalize_tag,
)
from rules.targets import parse_targets
from rules.text import words
from rules.yaml_reader import Problem, Reader, RulesError, compose, suggest

__all__ = ["Problem", "RulesError", "load_rules", "parse_rules"]

SECTIONS = (
    "version",
    "groups",
    "custom_fields",
    "business_hours",
    "defaults",
    "taxonomy",
    "intake",
    "ticket_event",
    "response_time",
)
RULE_KEYS = ("name", "description", "enabled", "when", "then", "stop")
_TIME_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def load_rules(path: str | Path) -> RuleSet:
    """Load and check a rule file; raise RulesError with every problem found."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RulesError([Problem(file, 1, 1, f"cannot read the rules file: {reason}")]) from None
    return parse_rules(text, file)


def parse_rules(text: str, file: str = "<rules>") -> RuleSet:
    """Check and build a RuleSet from YAML text; `file` is what problems are reported against."""
    root = compose(text, file)
    r = Reader(file)
    if root is None:
        raise RulesError([Problem(file, 1, 1, "the rules file is empty")])
    items = r.mapping(root, "the rules file")
    if items is None:
        raise RulesError(r.problems)
    sections: dict[str, Node] = {}
    for key, key_node, value_node in items:
        if key not in SECTIONS:
            r.unknown(key_node, key, SECTIONS, "section")
        else:
            sections[key] = value_node
    if "intake" not in sections and "ticket_event" not in sections and "taxonomy" not in sections:
        r.error(root, "the rules file has no intake, ticket_event or taxonomy section")

    version = 1
    if "version" in sections:
        version = r.integer(sections["version"], "version") or 1
    groups = _groups(r, sections.get("groups"))
    custom_fields = _custom_fields(r, sections.get("custom_fields"))
    hours = _business_hours(r, sections["business_hours"]) if "business_hours" in sections else None
    defaults = _defaults(r, sections.get("defaults"), groups)
    taxonomy = _taxonomy(r, sections["taxonomy"]) if "taxonomy" in sections else ()

    names: dict[str, Node] = {}
    scoped: dict[Scope, tuple[Rule, ...]] = {}
    for scope in SCOPES:
        ctx = Context(
            scope=scope,
            has_business_hours="business_hours" in sections,
            custom_fields=dict(custom_fields),
            groups=groups,
        )
        node = sections.get(scope)
        scoped[scope] = _rules(r, ctx, node, names) if node is not None else ()
    targets: tuple[ResponseTarget, ...] = ()
    if "response_time" in sections:
        # First-reply targets test intake conditions on the routed report (rules/targets.py).
        ctx = Context(
            scope="intake",
            has_business_hours="business_hours" in sections,
            custom_fields=dict(custom_fields),
            groups=groups,
        )
        targets = parse_targets(r, ctx, sections["response_time"], names)

    if r.problems:
        raise RulesError(r.problems)
    return RuleSet(
        version=version,
        path=file,
        taxonomy=taxonomy,
        intake=scoped["intake"],
        ticket_event=scoped["ticket_event"],
        business_hours=hours,
        defaults=defaults,
        groups=groups,
        custom_fields=custom_fields,
        response_time=targets,
    )


def _groups(r: Reader, node: Node | None) -> tuple[str, ...]:
    if node is None:
        return ()
    return r.strings(node, "groups") or ()


def _custom_fields(r: Reader, node: Node | None) -> dict[str, int]:
    if node is None:
        return {}
    out: dict[str, int] = {}
    for name, key_node, value_node in r.mapping(node, "custom_fields") or ():
        if name.isdigit():
            r.error(key_node, "custom_fields: a name must not be a number (ids are the values)")
            continue
        field_id = r.integer(value_node, f"custom field {name}'s Zendesk id")
        if field_id is not None:
            out[name] = field_id
    return out


def _business_hours(r: Reader, node: Node) -> BusinessHours | None:
    items = r.mapping(node, "business_hours")
    if items is None:
        return None
    timezone = None
    weekly: dict[int, tuple[tuple[int, int], ...]] = {}
    holidays: set[date] = set()
    for key, key_node, value_node in items:
        if key == "timezone":
            timezone = r.string(value_node, "business_hours timezone")
            if timezone is not None:
                try:
                    zoneinfo.ZoneInfo(timezone)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    hint = suggest(timezone, zoneinfo.available_timezones())
                    r.error(value_node, f"unknown timezone {timezone!r}", suggestion=hint)
                    timezone = None
        elif key == "weekly":
            weekly = _weekly(r, value_node)
        elif key == "holidays":
            for item in r.sequence(value_node, "business_hours holidays") or ():
                value = r.value(item)
                if isinstance(value, date):
                    holidays.add(value)
                else:
                    r.error(item, f"a holiday must be a date like 2025-12-25, not {value!r}")
        else:
            r.unknown(key_node, key, ("timezone", "weekly", "holidays"), "business_hours setting")
    if timezone is None:
        if not any(p for p in r.problems if p.message.startswith("unknown timezone")):
            r.error(node, "business_hours needs a timezone (e.g. Europe/Berlin)")
        return None
    return BusinessHours(timezone, weekly, frozenset(holidays))


def _weekly(r: Reader, node: Node) -> dict[int, tuple[tuple[int, int], ...]]:
    weekly: dict[int, tuple[tuple[int, int], ...]] = {}
    for day, key_node, value_node in r.mapping(node, "business_hours weekly") or ():
        if day == "weekdays":
            days = list(range(5))
        elif day in WEEKDAYS:
            days = [WEEKDAYS.index(day)]
        else:
            r.unknown(key_node, day, (*WEEKDAYS, "weekdays"), "day")
            continue
        text = r.string(value_node, f"business_hours {day}")
        if text is None:
            continue
        ranges = []
        for part in text.split(","):
            m = _TIME_RANGE.match(part)
            if m is None:
                r.error(value_node, f"{day}: {part.strip()!r} is not a range like 09:00-17:30")
                continue
            h1, m1, h2, m2 = map(int, m.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
                r.error(value_node, f"{day}: {part.strip()!r} is not a range within one day")
                continue
            ranges.append((start, end))
        for d in days:
            weekly[d] = tuple(ranges)
    return weekly


def _defaults(r: Reader, node: Node | None, groups: tuple[str, ...]) -> Defaults:
    if node is None:
        return Defaults()
    values: dict[str, str | None] = {}
    for key, key_node, value_node in r.mapping(node, "defaults") or ():
        if key not in ("group", "priority", "type", "assignee"):
            r.unknown(key_node, key, ("group", "priority", "type", "assignee"), "default")
            continue
        value = r.string(value_node, f"default {key}", allow_numbers=key == "assignee")
        if value is None:
            continue
        choices: tuple[str, ...] = {"priority": PRIORITIES, "type": TICKET_TYPES}.get(key, ())
        if key == "group" and groups:
            choices = groups
        if choices and value not in choices:
            r.unknown(value_node, value, choices, key)
            continue
        values[key] = value
    return Defaults(**values)


def _taxonomy(r: Reader, node: Node) -> tuple[TaxonomyTag, ...]:
    out = []
    seen: dict[str, Node] = {}
    for name, key_node, value_node in r.mapping(node, "taxonomy") or ():
        tag = normalize_tag(name)
        if tag in seen:
            r.error(key_node, f"taxonomy: tag {tag!r} is defined twice")
            continue
        seen[tag] = key_node
        keywords: tuple[str, ...] = ()
        patterns: tuple[str, ...] = ()
        if not hasattr(value_node, "value") or not isinstance(value_node.value, list):
            r.error(value_node, f"taxonomy {tag}: expected {{keywords: [...], patterns: [...]}}")
            continue
        if value_node.tag.endswith(":seq"):
            # Shorthand: a list is the tag's keywords.
            keywords = _keywords(r, value_node, tag)
        else:
            for key, k_node, v_node in r.mapping(value_node, f"taxonomy {tag}") or ():
                if key == "keywords":
                    keywords = _keywords(r, v_node, tag)
                elif key == "patterns":
                    patterns = _patterns(r, v_node, tag)
                else:
                    r.unknown(k_node, key, ("keywords", "patterns"), f"taxonomy {tag} setting")
        if not keywords and not patterns:
            r.error(key_node, f"taxonomy {tag}: needs keywords or patterns")
            continue
        out.append(TaxonomyTag(tag, keywords, patterns, r.where(key_node)))
    return tuple(out)


def _keywords(r: Reader, node: Node, tag: str) -> tuple[str, ...]:
    values = r.strings(node, f"taxonomy {tag} keywords", allow_numbers=True) or ()
    for value in values:
        if not words(value):
            r.error(node, f"taxonomy {tag}: keyword {value!r} has no words to match")
    return values


def _patterns(r: Reader, node: Node, tag: str) -> tuple[str, ...]:
    values = r.strings(node, f"taxonomy {tag} patterns", allow_numbers=True) or ()
    nodes = node.value if isinstance(node.value, list) else [node]
    for value, item in zip(values, nodes, strict=False):
        check_regex(r, item, value)
    return values


def _rules(r: Reader, ctx: Context, node: Node, names: dict[str, Node]) -> tuple[Rule, ...]:
    out = []
    for position, item in enumerate(r.sequence(node, ctx.scope) or (), start=1):
        rule = _rule(r, ctx, item, position, names)
        if rule is not None:
            out.append(rule)
    return tuple(out)


def _rule(r: Reader, ctx: Context, node: Node, index: int, names: dict[str, Node]) -> Rule | None:
    items = r.mapping(node, f"{ctx.scope} rule {index}")
    if items is None:
        return None
    fields = {key: (key_node, value_node) for key, key_node, value_node in items}
    for key, key_node, _ in items:
        if key not in RULE_KEYS:
            hint = suggest(key, RULE_KEYS)
            if hint is None and (key in ACTIONS or key == "if"):
                hint = "then" if key in ACTIONS else "when"
            r.error(
                key_node,
                f"unknown rule setting {key!r}; expected one of: {', '.join(RULE_KEYS)}",
                suggestion=hint,
            )
    name = None
    if "name" not in fields:
        r.error(node, f"{ctx.scope} rule {index} needs a name")
    else:
        name = r.string(fields["name"][1], "rule name", allow_numbers=True)
        if name is not None:
            if name in names:
                first = r.where(names[name])
                r.error(
                    fields["name"][1],
                    f"rule name {name!r} is used twice (first at line {first.line}); "
                    "names must be unique so explanations are unambiguous",
                )
            else:
                names[name] = fields["name"][1]
    description = None
    if "description" in fields:
        description = r.string(fields["description"][1], "rule description")
    enabled = True
    if "enabled" in fields:
        enabled = r.boolean(fields["enabled"][1], "enabled") is not False
    when = None
    if "when" in fields:
        when = parse_when(r, ctx, fields["when"][1])
    stop = False
    if "stop" in fields:
        stop = bool(r.boolean(fields["stop"][1], "stop"))
    actions: list[Action] = []
    if "then" not in fields:
        if not stop:
            r.error(node, f"rule {name or index!r} has no `then` (its actions)")
    else:
        for action_node in r.sequence(fields["then"][1], "then") or ():
            action = parse_action(r, ctx, action_node)
            if action is not None:
                actions.append(action)
    if name is None or not enabled:
        return None
    stop = stop or any(a.kind == "stop" for a in actions)
    return Rule(
        name=name,
        index=index,
        scope=ctx.scope,
        when=when,
        then=tuple(a for a in actions if a.kind != "stop"),
        stop=stop,
        description=description,
        where=r.where(node),
    )
