"""The rule file as data: a RuleSet of ordered Rules, each `when` (conditions) and `then` (actions).

The loader builds these from YAML and checks every name and value; the
engine compiles them into closures. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from integrations.ticket_event import ChangedField, EventType

Scope = Literal["intake", "ticket_event"]
SCOPES: tuple[Scope, ...] = ("intake", "ticket_event")

# Zendesk's values, lowest first (priority) or as its API spells them.
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("question", "incident", "problem", "task")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
# The ticket event types rules can test (integrations/ticket_event.py names them once).
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# The ticket fields a change can be about (integrations/ticket_event.py names them once).
CHANGEABLE_FIELDS: tuple[str, ...] = get_args(ChangedField)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def normalize_tag(tag: str) -> str:
    """Zendesk tags are lowercase and cannot hold spaces: "Mobile Crash" is mobile_crash."""
    return "_".join(str(tag).strip().lower().split())


@dataclass(frozen=True)
class Where:
    """A place in a rule file (1-based line and column), for errors and explanations."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, eq=False)
class Condition:
    """One test on a report or event: `kind` (tags, text, platform, ...), `op` on `values`."""

    kind: str
    op: str
    values: tuple[Any, ...]
    where: Where | None = None


@dataclass(frozen=True, eq=False)
class AllOf:
    """True when every condition is (an empty list is true)."""

    conditions: tuple[When, ...]
    where: Where | None = None


@dataclass(frozen=True, eq=False)
class AnyOf:
    """True when at least one condition is."""

    conditions: tuple[When, ...]
    where: Where | None = None


@dataclass(frozen=True, eq=False)
class Not:
    """True when the condition is not."""

    condition: When
    where: Where | None = None


When = Condition | AllOf | AnyOf | Not


@dataclass(frozen=True, eq=False)
class Action:
    """One change a rule makes: add_tags, set_group, notify, escalate, stop, ..."""

    kind: str
    value: Any
    where: Where | None = None


@dataclass(frozen=True, eq=False)
class Notify:
    """The value of a notify action: a Slack channel and a message template with {placeholders}."""

    channel: str
    template: str


@dataclass(frozen=True, eq=False)
class Escalate:
    """The value of an escalate action: hand to engineering (related-issue grouping)."""

    channel: str | None = None
    force_problem: bool = False


@dataclass(frozen=True, eq=False)
class Rule:
    """A named rule at a position (1-based `index`) in its scope: when `when` holds, run `then`."""

    name: str
    index: int
    scope: Scope
    when: When | None
    then: tuple[Action, ...]
    stop: bool = False
    description: str | None = None
    where: Where | None = None

    def __str__(self) -> str:
        return f'{self.scope} rule {self.index} "{self.name}"'


@dataclass(frozen=True, eq=False)
class TaxonomyTag:
    """A tag the hub adds when a report's text has one of the keywords or matches a pattern."""

    tag: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    where: Where | None = None


@dataclass(frozen=True, eq=False)
class BusinessHours:
    """Opening hours: a timezone, a weekly schedule of minute ranges, and holidays (closed)."""

    timezone: str
    # weekday (0 = Monday) -> ((start_minute, end_minute), ...), end exclusive
    weekly: Mapping[int, tuple[tuple[int, int], ...]]
    holidays: frozenset[date] = frozenset()

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` (timezone-aware; naive means UTC) falls in business hours."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        local = moment.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly.get(local.weekday(), ()))


@dataclass(frozen=True, eq=False)
class ResponseTarget:
    """A first-reply target (`response_time:`): when `when` holds, answer within `seconds`.

    `business` counts only the file's business hours; `nudge_at` is the share of the
    target after which `nudge_channel` hears of it; a breach posts to `breach_channel`
    and adds `breach_tags` to the ticket (rules/targets.py).
    """

    name: str
    index: int
    when: When | None
    seconds: int
    business: bool = False
    nudge_at: float | None = None
    nudge_channel: str | None = None
    breach_channel: str | None = None
    breach_tags: tuple[str, ...] = ()
    where: Where | None = None

    def __str__(self) -> str:
        return f'response_time {self.index} "{self.name}"'


@dataclass(frozen=True)
class Defaults:
    """Field values every intake decision starts from, before any rule runs."""

    group: str | None = None
    priority: str | None = None
    type: str | None = None
    assignee: str | None = None


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A whole rule file: taxonomy, intake and ticket_event rules, hours, defaults, names."""

    version: int = 1
    path: str = "<rules>"
    taxonomy: tuple[TaxonomyTag, ...] = ()
    intake: tuple[Rule, ...] = ()
    ticket_event: tuple[Rule, ...] = ()
    business_hours: BusinessHours | None = None
    defaults: Defaults = field(default_factory=Defaults)
    # The Zendesk groups rules may name; when empty, any name is accepted.
    groups: tuple[str, ...] = ()
    # Custom field names admins may use instead of Zendesk field ids.
    custom_fields: Mapping[str, int] = field(default_factory=dict)
    # First-reply targets, first match wins (rules/targets.py).
    response_time: tuple[ResponseTarget, ...] = ()

    def rules(self, scope: Scope) -> tuple[Rule, ...]:
        """The rules of one scope, in order."""
        return self.intake if scope == "intake" else self.ticket_event

    def summary(self) -> str:
        """One line: how many rules and tags the file has."""
        targets = len(self.response_time)
        return (
            f"{len(self.intake)} intake rules, {len(self.ticket_event)} event rules, "
            f"{len(self.taxonomy)} taxonomy tags"
            + (f", {targets} first-reply target{'s' if targets != 1 else ''}" if targets else "")
        )
