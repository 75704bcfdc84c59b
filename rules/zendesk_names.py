"""What a rules file names in Zendesk: groups, custom fields and assignees, and where it names them.

The loader checks names against the file itself (a `set_group` against `groups:`); whether
the Zendesk account has them is another question, asked by `feedback-hub rules check
--zendesk` and answered by the development sandbox, which is seeded from this list.
Places come from the loaded rules (each action's `where`) and, for the sections the model
keeps no place for (`groups`, `defaults`, `custom_fields`), from the file's YAML nodes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rules.model import RuleSet, Where
from rules.yaml_reader import RulesError, compose

Kind = Literal["group", "custom field", "assignee"]


@dataclass(frozen=True)
class Named:
    """One group, custom field or assignee the rules name, at one place in the file."""

    kind: Kind
    # A group's name, an assignee's email or id, a custom field's name in the file (or its id).
    name: str
    where: Where
    # Custom fields: the Zendesk ticket field id the name stands for.
    field_id: int | None = None
    # What names it: 'intake rule 2 "Billing questions go to Billing"', "groups", "defaults".
    named_by: str = ""


def named_in(ruleset: RuleSet, text: str | None = None) -> list[Named]:
    """Every group, custom field and assignee the rules name, in file order.

    `text` is the file's YAML (read from `ruleset.path` when not given), for the places of
    the `groups`, `defaults` and `custom_fields` entries.
    """
    out: list[Named] = []
    sections = _sections(ruleset.path, text)
    file = ruleset.path
    groups = sections.get("groups")
    for node in groups.value if isinstance(groups, SequenceNode) else ():
        if isinstance(node, ScalarNode):
            out.append(Named("group", str(node.value).strip(), _where(file, node), None, "groups"))
    defaults = _mapping(sections.get("defaults"))
    if ruleset.defaults.group:
        where = _where_of(file, defaults.get("group"))
        out.append(Named("group", ruleset.defaults.group, where, None, "defaults"))
    if ruleset.defaults.assignee:
        where = _where_of(file, defaults.get("assignee"))
        out.append(Named("assignee", ruleset.defaults.assignee, where, None, "defaults"))
    fields = _mapping(sections.get("custom_fields"))
    for name, field_id in ruleset.custom_fields.items():
        where = _where_of(file, fields.get(name))
        out.append(Named("custom field", name, where, field_id, "custom_fields"))
    for rule in (*ruleset.intake, *ruleset.ticket_event):
        for action in rule.then:
            at = action.where or rule.where or Where(file, 1, 1)
            if action.kind == "set_group":
                out.append(Named("group", str(action.value), at, None, str(rule)))
            elif action.kind == "set_assignee":
                out.append(Named("assignee", str(action.value), at, None, str(rule)))
            elif action.kind == "set_custom_field":
                for name, _value in action.value:
                    # By name: the custom_fields entry above names its id once.
                    if str(name).isdigit():
                        out.append(Named("custom field", str(name), at, int(name), str(rule)))
    return out


def _sections(path: str, text: str | None) -> dict[str, Node]:
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}
    root = None
    with contextlib.suppress(RulesError):
        root = compose(text, path)
    return _mapping(root)


def _mapping(node: Node | None) -> dict[str, Node]:
    """A mapping node's value nodes by key."""
    if not isinstance(node, MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}


def _where(file: str, node: Node) -> Where:
    return Where(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _where_of(file: str, node: Node | None) -> Where:
    return _where(file, node) if node is not None else Where(file, 1, 1)


def group_names(ruleset: RuleSet) -> list[str]:
    """The group names the rules route to (declared and used), each once, in file order."""
    return list(dict.fromkeys(n.name for n in named_in(ruleset) if n.kind == "group"))
