"""Actions: small named pieces, each parsing its YAML and compiling to a closure that changes a Run.

`Run` is the decision being built: field values with every write and who made
it, tag changes, notifications and escalation. The engine turns it into a Decision.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from integrations.slack.mrkdwn import escape_mrkdwn
from rules.conditions import PRIORITY_RANK, Context, State, fold
from rules.decision import Cause, Value
from rules.model import PRIORITIES, TICKET_TYPES, Action, Escalate, Notify, normalize_tag
from rules.yaml_reader import Reader, suggest

Apply = Callable[["Run", Cause], None]

# Placeholders a notify template may use, by scope. ticket_id / ticket_url are
# not known at intake (the ticket does not exist yet): they stay in the text for
# the job to fill once Zendesk has answered (Notification.fill).
PLACEHOLDERS_COMMON = ("subject", "priority", "group", "assignee", "type", "tags", "rule")
PLACEHOLDERS = {
    "intake": (
        *PLACEHOLDERS_COMMON,
        "description",
        "excerpt",
        "platform",
        "app_version",
        "os",
        "os_version",
        "device",
        "category",
        "severity",
        "source",
        "reporter",
        "reporter_name",
        "reporter_email",
        "ticket_id",
        "ticket_url",
    ),
    "ticket_event": (
        *PLACEHOLDERS_COMMON,
        "ticket_id",
        "ticket_url",
        "event",
        "status",
        "via",
        "comment_excerpt",
    ),
}
LEFT_FOR_JOBS = ("ticket_id", "ticket_url")


class Run:
    """The decision being built while rules run; keeps State in step with every change."""

    def __init__(self, state: State, base: dict[str, str]) -> None:
        self.state = state
        # Template values that rules do not change (subject, platform, ...).
        self.base = base
        self.values: dict[str, Value] = {}
        # Plain tuples while rules run; the Decision's models are built once, at the end.
        self.writes: dict[str, list[tuple[Value, Cause]]] = {}
        self.custom: dict[str, Value] = {}
        self.tag_changes: list[tuple[str, str, Cause]] = []
        self.new_tags: list[str] = []
        self.notifications: list[tuple[str, str, Cause]] = []
        self.escalate: Escalate | None = None
        self.escalate_cause: Cause | None = None

    def set(self, name: str, value: Value, cause: Cause) -> None:
        """Set a ticket field (group, assignee, priority, type), remembering who did."""
        self.values[name] = value
        self.writes.setdefault(name, []).append((value, cause))
        self.state.facts[name] = None if value is None else fold(value)

    def set_custom(self, name: str, value: Value, cause: Cause) -> None:
        """Set a custom field."""
        self.custom[name] = value
        self.writes.setdefault(f"custom_fields.{name}", []).append((value, cause))
        if value is None:
            self.state.custom.pop(name, None)
        else:
            self.state.custom[name] = fold(value)

    def add_tag(self, tag: str, cause: Cause) -> None:
        """Add a tag (visible to the rules after this one)."""
        if tag not in self.state.tags:
            self.state.tags.add(tag)
            self.new_tags.append(tag)
            self.tag_changes.append((tag, "added", cause))

    def remove_tag(self, tag: str, cause: Cause) -> None:
        """Remove a tag."""
        if tag in self.state.tags:
            self.state.tags.discard(tag)
            self.tag_changes.append((tag, "removed", cause))

    def template_values(self) -> dict[str, str]:
        """What {placeholders} become: the fixed facts, then the fields as the rules left them."""
        values = dict(self.base)
        for name in ("priority", "group", "assignee", "type"):
            current = self.values.get(name, self.base.get(name))
            values[name] = "" if current is None else str(current)
        values["tags"] = ", ".join(sorted(self.state.tags))
        return values


def render(template: str, values: dict[str, str]) -> str:
    """Fill {placeholders} from `values`; unknown ones (ticket_url at intake) stay as written.

    The template is the rule author's Slack mrkdwn and stays as written; the values come
    from reporters and are escaped, so a subject of `<!channel>` pings nobody.
    """
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(escape_mrkdwn(values[name]) if name in values else "{" + name + "}")
    return "".join(out)


# ---------------------------------------------------------------- the pieces


class ActionPiece:
    """An action kind: its name, what it does, how it reads and what it changes."""

    name = ""
    label = ""
    syntax = ""

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        """The action's value from YAML (recording problems; None when bad)."""
        raise NotImplementedError

    def compile(self, action: Action) -> Apply:
        """A closure that applies the action to a Run."""
        raise NotImplementedError


class AddTags(ActionPiece):
    name = "add_tags"
    label = "add tags (later rules see them)"
    syntax = "tag or [tags]"

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        tags = r.strings(node, self.name, allow_numbers=True)
        return None if tags is None else tuple(normalize_tag(t) for t in tags)

    def compile(self, action: Action) -> Apply:
        tags: tuple[str, ...] = action.value

        def apply(run: Run, cause: Cause) -> None:
            for tag in tags:
                run.add_tag(tag, cause)

        return apply


class RemoveTags(AddTags):
    name = "remove_tags"
    label = "remove tags"

    def compile(self, action: Action) -> Apply:
        tags: tuple[str, ...] = action.value

        def apply(run: Run, cause: Cause) -> None:
            for tag in tags:
                run.remove_tag(tag, cause)

        return apply


class SetField(ActionPiece):
    """set_group / set_assignee / set_priority / set_type: the last rule to set a field wins."""

    def __init__(
        self, name: str, field: str, label: str, choices: tuple[str, ...] = (), ids: bool = False
    ) -> None:
        self.name = name
        self.field = field
        self.label = label
        self.choices = choices
        self.ids = ids
        self.syntax = " | ".join(choices) if choices else "a name" + (" or id" if ids else "")

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        if self.ids and isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            return int(node.value)
        value = r.string(node, self.name)
        if value is None:
            return None
        if self.choices and value not in self.choices:
            r.unknown(node, value, self.choices, self.field)
            return None
        if self.field == "group" and ctx.groups and value not in ctx.groups:
            r.unknown(node, value, ctx.groups, "group")
            return None
        return value

    def compile(self, action: Action) -> Apply:
        field, value = self.field, action.value

        def apply(run: Run, cause: Cause) -> None:
            run.set(field, value, cause)

        return apply


class RaisePriority(SetField):
    """raise_priority: high sets high unless the priority is already higher."""

    def __init__(self) -> None:
        super().__init__("raise_priority", "priority", "raise the priority to at least", PRIORITIES)

    def compile(self, action: Action) -> Apply:
        value = action.value
        rank = PRIORITY_RANK[value]

        def apply(run: Run, cause: Cause) -> None:
            if PRIORITY_RANK.get(run.state.facts.get("priority") or "", -1) < rank:
                run.set("priority", value, cause)

        return apply


class SetCustomField(ActionPiece):
    name = "set_custom_field"
    label = "set custom fields (by the file's custom_fields name, or Zendesk field id)"
    syntax = "{name or id: value}"

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        items = r.mapping(node, self.name)
        if items is None:
            return None
        out = []
        for name, key_node, value_node in items:
            if not name.isdigit() and name not in ctx.custom_fields:
                known = list(ctx.custom_fields)
                hint = suggest(name, known)
                listed = ", ".join(known) if known else "none are configured"
                r.error(
                    key_node,
                    f"unknown custom field {name!r}: name one from custom_fields ({listed}) "
                    "or use the Zendesk field id",
                    suggestion=hint,
                )
                continue
            out.append((name, r.scalar(value_node, f"{self.name} {name}")))
        return tuple(out) if len(out) == len(items) else None

    def compile(self, action: Action) -> Apply:
        pairs: tuple[tuple[str, Value], ...] = action.value

        def apply(run: Run, cause: Cause) -> None:
            for name, value in pairs:
                run.set_custom(name, value, cause)

        return apply


class NotifyPiece(ActionPiece):
    name = "notify"
    label = "post to a Slack channel (text is a template with {placeholders})"
    syntax = "{channel: '#name' or id, text: 'template'}"

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        items = r.mapping(node, self.name)
        if items is None:
            return None
        got: dict[str, Node] = {}
        for key, key_node, value_node in items:
            if key not in ("channel", "text"):
                r.unknown(key_node, key, ("channel", "text"), "notify setting")
                return None
            got[key] = value_node
        missing = [k for k in ("channel", "text") if k not in got]
        if missing:
            r.error(node, f"notify needs {' and '.join(missing)}")
            return None
        channel = r.string(got["channel"], "notify channel")
        template = r.string(got["text"], "notify text")
        if channel is None or template is None:
            return None
        if not check_template(r, got["text"], template, PLACEHOLDERS[ctx.scope]):
            return None
        return Notify(channel, template)

    def compile(self, action: Action) -> Apply:
        value: Notify = action.value

        def apply(run: Run, cause: Cause) -> None:
            run.notifications.append((value.channel, value.template, cause))

        return apply


def check_template(r: Reader, node: Node, template: str, allowed: tuple[str, ...]) -> bool:
    """Record a problem for a malformed template or an unknown {placeholder}."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        r.error(node, f"notify text: {exc} (write {{{{ and }}}} for literal braces)")
        return False
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            r.error(node, f"notify text: {{{name}}} must be a plain {{name}}")
            return False
        if name not in allowed:
            r.error(
                node,
                f"notify text: unknown placeholder {{{name}}}; known: {', '.join(allowed)}",
                suggestion=suggest(name, allowed),
            )
            return False
    return True


class EscalatePiece(ActionPiece):
    name = "escalate"
    label = "hand to engineering (related-issue grouping)"
    syntax = "true or {channel: '#eng-...', force_problem: true}"

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        if not isinstance(node, MappingNode):
            flag = r.boolean(node, self.name)
            if flag is None:
                return None
            if not flag:
                r.error(node, "escalate: false does nothing; leave the action out")
                return None
            return Escalate()
        items = r.mapping(node, self.name)
        if items is None:
            return None
        channel: str | None = None
        force = False
        for key, key_node, value_node in items:
            if key == "channel":
                channel = r.string(value_node, "escalate channel")
            elif key == "force_problem":
                force = bool(r.boolean(value_node, "escalate force_problem"))
            else:
                r.unknown(key_node, key, ("channel", "force_problem"), "escalate setting")
                return None
        return Escalate(channel, force)

    def compile(self, action: Action) -> Apply:
        value: Escalate = action.value

        def apply(run: Run, cause: Cause) -> None:
            run.escalate = value
            run.escalate_cause = cause

        return apply


class Stop(ActionPiece):
    name = "stop"
    label = "run no further rules"
    syntax = "true"

    def parse(self, r: Reader, ctx: Context, node: Node) -> Any:
        flag = r.boolean(node, self.name)
        if flag is False:
            r.error(node, "stop: false does nothing; leave the action out")
            return None
        return flag

    def compile(self, action: Action) -> Apply:
        # The engine reads Rule.stop; applying it changes nothing.
        return lambda run, cause: None


ACTIONS: dict[str, ActionPiece] = {
    a.name: a
    for a in (
        AddTags(),
        RemoveTags(),
        SetField("set_group", "group", "route to a Zendesk group, by name"),
        SetField("set_assignee", "assignee", "assign to an agent (email or id)", ids=True),
        SetField("set_priority", "priority", "set the priority", PRIORITIES),
        RaisePriority(),
        SetField("set_type", "type", "set the ticket type", TICKET_TYPES),
        SetCustomField(),
        NotifyPiece(),
        EscalatePiece(),
        Stop(),
    )
}


def parse_action(r: Reader, ctx: Context, node: Node) -> Action | None:
    """One entry of `then`: `{name: value}`, or the bare word `stop`."""
    if isinstance(node, ScalarNode) and node.value == "stop":
        return Action("stop", True, r.where(node))
    items = r.mapping(node, "action")
    if items is None:
        return None
    if len(items) != 1:
        r.error(node, "each action is one `name: value`; put several actions as list items")
        return None
    name, key_node, value_node = items[0]
    piece = ACTIONS.get(name)
    if piece is None:
        r.unknown(key_node, name, ACTIONS, "action")
        return None
    before = len(r.problems)
    value = piece.parse(r, ctx, value_node)
    if value is None or len(r.problems) > before:
        return None
    return Action(name, value, r.where(key_node))
