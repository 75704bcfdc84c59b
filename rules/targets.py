"""First-reply targets: the `response_time:` section, which target a report gets, when it is due.

Pure: the loader calls `parse_targets`; the timer jobs (workers/timers.py) call
`target_for` with the report and its routing decision, then `due_at` with the moment
the report was accepted. Business hours are the file's own `business_hours` section,
so "within an hour" at 17:55 with hours 09:00-18:00 means 5 minutes today and 55
tomorrow morning (or on Monday).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from yaml.nodes import Node, ScalarNode

from integrations.report import Report
from rules.actions import Context
from rules.conditions import Test, compile_when, fold, parse_when
from rules.decision import Decision
from rules.engine import intake_state
from rules.model import BusinessHours, ResponseTarget, RuleSet, When, normalize_tag
from rules.yaml_reader import Reader

__all__ = [
    "Deadlines",
    "deadlines",
    "due_at",
    "format_duration",
    "parse_duration",
    "parse_targets",
    "target_for",
]

TARGET_KEYS = ("name", "description", "enabled", "when", "first_reply", "hours", "nudge", "breach")
HOURS = ("always", "business")
_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
# A schedule with hours somewhere in the next year always ends; none at all is a bad file.
_HORIZON_DAYS = 370


# ---------------------------------------------------------------- reading the section


def parse_duration(text: str) -> int | None:
    """Seconds in "15m", "1h", "1h30m", "90s" (None when it is not such a duration or zero)."""
    m = _DURATION.match(text)
    if m is None or not any(m.groups()):
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total or None


def format_duration(seconds: float) -> str:
    """60 -> "1m", 5400 -> "1h30m", 45 -> "45s"."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


def parse_targets(
    r: Reader, ctx: Context, node: Node, names: dict[str, Node]
) -> tuple[ResponseTarget, ...]:
    """The `response_time:` list; conditions are intake conditions (ctx.scope is intake)."""
    out = []
    for index, item in enumerate(r.sequence(node, "response_time") or (), start=1):
        target = _target(r, ctx, item, index, names)
        if target is not None:
            out.append(target)
    return tuple(out)


def _target(
    r: Reader, ctx: Context, node: Node, index: int, names: dict[str, Node]
) -> ResponseTarget | None:
    items = r.mapping(node, f"response_time {index}")
    if items is None:
        return None
    fields: dict[str, Node] = {}
    for key, key_node, value_node in items:
        if key not in TARGET_KEYS:
            r.unknown(key_node, key, TARGET_KEYS, "response_time setting")
        else:
            fields[key] = value_node
    name = None
    if "name" not in fields:
        r.error(node, f"response_time {index} needs a name")
    else:
        name = r.string(fields["name"], "response_time name", allow_numbers=True)
        if name is not None:
            if name in names:
                first = r.where(names[name])
                r.error(
                    fields["name"],
                    f"rule name {name!r} is used twice (first at line {first.line}); "
                    "names must be unique so explanations are unambiguous",
                )
            else:
                names[name] = fields["name"]
    if "description" in fields:
        r.string(fields["description"], "response_time description")
    enabled = True
    if "enabled" in fields:
        enabled = r.boolean(fields["enabled"], "enabled") is not False
    when: When | None = None
    if "when" in fields:
        when = parse_when(r, ctx, fields["when"])
    seconds = None
    if "first_reply" not in fields:
        r.error(node, f"response_time {name or index!r} needs first_reply (e.g. 60m)")
    else:
        seconds = _duration(r, fields["first_reply"], "first_reply")
    business = False
    if "hours" in fields:
        hours = r.string(fields["hours"], "hours")
        if hours is not None and hours not in HOURS:
            r.unknown(fields["hours"], hours, HOURS, "hours")
        business = hours == "business"
        if business and not ctx.has_business_hours:
            r.error(fields["hours"], "hours: business needs a business_hours section in the file")
    nudge_at, nudge_channel = _nudge(r, fields.get("nudge"))
    breach_channel, breach_tags = _breach(r, fields.get("breach"))
    if name is None or seconds is None or not enabled:
        return None
    return ResponseTarget(
        name=name,
        index=index,
        when=when,
        seconds=seconds,
        business=business,
        nudge_at=nudge_at,
        nudge_channel=nudge_channel,
        breach_channel=breach_channel,
        breach_tags=breach_tags,
        where=r.where(node),
    )


def _duration(r: Reader, node: Node, what: str) -> int | None:
    text = r.string(node, what, allow_numbers=True)
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        r.error(node, f"{what}: {text!r} is not a duration like 15m, 1h or 1h30m")
    return seconds


def _nudge(r: Reader, node: Node | None) -> tuple[float | None, str | None]:
    if node is None:
        return None, None
    items = r.mapping(node, "nudge")
    if items is None:
        return None, None
    at: float | None = None
    channel = None
    given: set[str] = set()
    for key, key_node, value_node in items:
        given.add(key)
        if key == "at":
            at = _share(r, value_node)
        elif key == "channel":
            channel = r.string(value_node, "nudge channel")
        else:
            r.unknown(key_node, key, ("at", "channel"), "nudge setting")
    for missing in ("at", "channel"):
        # A misspelt name is reported as such; "needs" would only repeat it.
        if missing not in given and given <= {"at", "channel"}:
            r.error(node, f"nudge needs {missing} (e.g. {{at: 75%, channel: '#support'}})")
    if at is None or channel is None:
        return None, None
    return at, channel


def _share(r: Reader, node: Node) -> float | None:
    if not isinstance(node, ScalarNode):
        r.error(node, "nudge at must be a share like 75%")
        return None
    text = str(node.value)
    m = _SHARE.match(text)
    share = float(m.group(1)) / 100 if m else None
    if share is None:
        try:
            share = float(text)
        except ValueError:
            share = None
    if share is None or not 0 < share < 1:
        r.error(
            node, f"nudge at: {text!r} is not a share of the target between 0% and 100% (e.g. 75%)"
        )
        return None
    return share


def _breach(r: Reader, node: Node | None) -> tuple[str | None, tuple[str, ...]]:
    if node is None:
        return None, ()
    channel = None
    tags: tuple[str, ...] = ()
    for key, key_node, value_node in r.mapping(node, "breach") or ():
        if key == "channel":
            channel = r.string(value_node, "breach channel")
        elif key == "add_tags":
            tags = tuple(
                normalize_tag(t)
                for t in r.strings(value_node, "breach add_tags", allow_numbers=True) or ()
            )
        else:
            r.unknown(key_node, key, ("channel", "add_tags"), "breach setting")
    return channel, tags


# ---------------------------------------------------------------- which target


_TESTS: weakref.WeakKeyDictionary[ResponseTarget, Test | None] = weakref.WeakKeyDictionary()


def _test(target: ResponseTarget) -> Test | None:
    if target not in _TESTS:
        _TESTS[target] = compile_when(target.when)
    return _TESTS[target]


def target_for(report: Report, decision: Decision, ruleset: RuleSet) -> ResponseTarget | None:
    """The first target whose conditions hold for the report as the intake rules left it."""
    if not ruleset.response_time:
        return None
    state = intake_state(report, ruleset)
    # The conditions see the routing's outcome: its tags, group, priority, type, fields.
    state.tags = set(decision.tags)
    for name in ("group", "assignee", "type", "priority"):
        value = getattr(decision, name)
        state.facts[name] = None if value is None else fold(value)
    state.custom.update({k: fold(v) for k, v in decision.custom_fields.items()})
    for target in ruleset.response_time:
        test = _test(target)
        if test is None or test(state):
            return target
    return None


# ---------------------------------------------------------------- when it is due


def due_at(start: datetime, seconds: float, hours: BusinessHours | None) -> datetime:
    """The moment `seconds` of counted time have passed since `start` (all time, or open hours).

    Naive datetimes are UTC; the result is in UTC. A schedule with no open hour in
    the next year counts all time (a file cannot make a timer never end).
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if hours is None or not any(hours.weekly.values()):
        return (start + timedelta(seconds=seconds)).astimezone(UTC)
    zone = ZoneInfo(hours.timezone)
    local = start.astimezone(zone)
    left = float(seconds)
    day = local.date()
    for _ in range(_HORIZON_DAYS):
        if day not in hours.holidays:
            for first, last in hours.weekly.get(day.weekday(), ()):
                opens = _at(day, first, zone)
                closes = _at(day, last, zone)
                begin = max(opens, start)
                if begin >= closes:
                    continue
                span = (closes - begin).total_seconds()
                if left <= span:
                    return (begin + timedelta(seconds=left)).astimezone(UTC)
                left -= span
        day += timedelta(days=1)
    return (start + timedelta(seconds=seconds)).astimezone(UTC)


def counted_seconds(start: datetime, end: datetime, hours: BusinessHours | None) -> float:
    """The counted time between `start` and `end` (all of it, or its open hours): the
    inverse of due_at, so a first reply is measured against its target as it was set."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end <= start:
        return 0.0
    if hours is None or not any(hours.weekly.values()):
        return (end - start).total_seconds()
    zone = ZoneInfo(hours.timezone)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    counted = 0.0
    while day <= last:
        if day not in hours.holidays:
            for first, close in hours.weekly.get(day.weekday(), ()):
                begin = max(_at(day, first, zone), start)
                finish = min(_at(day, close, zone), end)
                if finish > begin:
                    counted += (finish - begin).total_seconds()
        day += timedelta(days=1)
    return counted


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """`minute` minutes after local midnight of `day` (1440: the next midnight), in UTC."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    if minute >= 24 * 60:
        following = day + timedelta(days=1)
        return datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
    hour, rest = divmod(minute, 60)
    return midnight.replace(hour=hour, minute=rest).astimezone(UTC)


@dataclass(frozen=True)
class Deadlines:
    """When a report's nudge is due (None: the target has none) and when it breaches."""

    nudge: datetime | None
    breach: datetime


def deadlines(target: ResponseTarget, accepted: datetime, ruleset: RuleSet) -> Deadlines:
    """The nudge and breach moments of a report accepted at `accepted` under `target`."""
    hours = ruleset.business_hours if target.business else None
    nudge = None
    if target.nudge_at is not None and target.nudge_channel:
        nudge = due_at(accepted, target.seconds * target.nudge_at, hours)
    return Deadlines(nudge=nudge, breach=due_at(accepted, target.seconds, hours))
