"""`Decision`: what the rules made of a report or ticket event, and for every change, why.

JSON-safe (jobs pass it around as plain data). Fields a rule never touched are
None: for a ticket event the Decision is the set of changes to apply.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Value = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cause(_Model):
    """Who made a change: a rule (name and 1-based index in its scope), the taxonomy, defaults."""

    by: Literal["rule", "taxonomy", "defaults", "report", "ticket"]
    rule: str | None = None
    index: int | None = None
    # For the taxonomy: the keyword or pattern that matched, and the text it matched.
    detail: str | None = None

    def __str__(self) -> str:
        if self.by == "rule":
            return f'rule {self.index} "{self.rule}"'
        if self.by == "taxonomy":
            return f"taxonomy: {self.detail}"
        return self.by


class Write(_Model):
    """One write to a field: the value and who wrote it."""

    value: Value
    cause: Cause


class FieldWhy(_Model):
    """A field's final value, the rule that set it last, and the earlier writes it overrode."""

    value: Value
    set_by: Cause
    overridden: tuple[Write, ...] = ()


class TagChange(_Model):
    """A tag added or removed, and by whom."""

    tag: str
    change: Literal["added", "removed"]
    cause: Cause


class Notification(_Model):
    """A Slack message a rule asked for: channel and rendered text.

    Placeholders only a job can know (`{ticket_id}`, `{ticket_url}` at intake)
    are left in the text; `fill` completes them.
    """

    channel: str
    text: str
    cause: Cause

    def fill(self, **values: object) -> str:
        """The text with the remaining {placeholders} in `values` filled in."""
        text = self.text
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text


class RuleRef(_Model):
    """A rule by name and 1-based index in its scope."""

    rule: str
    index: int

    def __str__(self) -> str:
        return f'rule {self.index} "{self.rule}"'


class Decision(_Model):
    """The routing decision for one report (scope intake) or one ticket event (ticket_event)."""

    scope: Literal["intake", "ticket_event"]
    rules_version: int = 1
    tags: tuple[str, ...] = ()
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    group: str | None = None
    assignee: str | None = None
    priority: str | None = None
    type: str | None = None
    custom_fields: dict[str, Value] = Field(default_factory=dict)
    # Zendesk field ids of the custom_fields named in the rule file's custom_fields section.
    custom_field_ids: dict[str, int] = Field(default_factory=dict)
    notifications: tuple[Notification, ...] = ()
    escalate: bool = False
    escalate_channel: str | None = None
    force_problem: bool = False
    # field (group, priority, assignee, type, custom_fields.<name>, escalate) -> why
    why: dict[str, FieldWhy] = Field(default_factory=dict)
    tag_changes: tuple[TagChange, ...] = ()
    matched_rules: tuple[RuleRef, ...] = ()
    stopped_by: RuleRef | None = None

    def zendesk_custom_fields(self) -> list[dict[str, Any]]:
        """custom_fields as Zendesk wants them: [{"id": 123, "value": ...}]."""
        out = []
        for name, value in self.custom_fields.items():
            field_id = self.custom_field_ids.get(name)
            if field_id is None and name.isdigit():
                field_id = int(name)
            if field_id is not None:
                out.append({"id": field_id, "value": value})
        return out

    def tag_cause(self, tag: str) -> Cause | None:
        """Who added `tag` last (None when it came with the report or ticket)."""
        for change in reversed(self.tag_changes):
            if change.tag == tag and change.change == "added":
                return change.cause
        return None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-safe data for jobs and logs."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        """Rebuild a Decision from to_json() data."""
        return cls.model_validate(data)

    def explain(self) -> list[str]:
        """The decision as lines a person reads: each field, its value, and which rule set it."""
        lines = []
        for name, why in self.why.items():
            value = _show(why.value)
            line = f"{name}: {value}  <- {why.set_by}"
            if why.overridden:
                earlier = "; ".join(f"{w.cause} set {_show(w.value)}" for w in why.overridden)
                line += f"  (overrode: {earlier})"
            lines.append(line)
        lines.append(f"tags: {', '.join(self.tags) or '-'}")
        for change in self.tag_changes:
            sign = "+" if change.change == "added" else "-"
            lines.append(f"  {sign}{change.tag}  <- {change.cause}")
        for note in self.notifications:
            lines.append(f"notify {note.channel}: {note.text!r}  <- {note.cause}")
        matched = ", ".join(str(r.index) for r in self.matched_rules) or "none"
        lines.append(f"rules matched: {matched}")
        if self.stopped_by is not None:
            lines.append(f"stopped by {self.stopped_by}")
        return lines


def _show(value: Value) -> str:
    if value is None:
        return "(cleared)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
