"""Reading YAML nodes with their marks, so every problem names its file, line and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rules.model import Where

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
# libyaml when PyYAML has it (its wheels do): much faster on a large file (docs/rules.md),
# the same marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a rule file, where it is, and the nearest valid name if it is a typo."""

    file: str
    line: int
    column: int
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.file}:{self.line}:{self.column}: {self.message}{hint}"


class RulesError(Exception):
    """A rule file that cannot be used; `problems` lists each problem with its place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def suggest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name closest to a misspelt one, if any is close."""
    found = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return found[0] if found else None


def compose(text: str, file: str) -> Node | None:
    """The YAML node tree of `text`; raises RulesError for a YAML syntax error."""
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax: {exc.problem or exc.context}"
        raise RulesError([Problem(file, line, column, message)]) from None
    except yaml.YAMLError as exc:
        raise RulesError([Problem(file, 1, 1, f"YAML: {exc}")]) from None


class Reader:
    """Typed access to YAML nodes that records a Problem (and returns None) for each bad value."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def where(self, node: Node) -> Where:
        """The node's place in the file."""
        return Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, message: str, *, suggestion: str | None = None) -> None:
        """Record a problem at `node`."""
        w = self.where(node)
        self.problems.append(Problem(self.file, w.line, w.column, message, suggestion))

    def error_at(self, node: Node, offset: int, message: str) -> None:
        """Record a problem `offset` characters into a scalar (a regex error's position)."""
        w = self.where(node)
        quoted = isinstance(node, ScalarNode) and node.style in ("'", '"')
        column = w.column + offset + (1 if quoted else 0)
        self.problems.append(Problem(self.file, w.line, column, message))

    def unknown(self, node: Node, name: str, valid: Iterable[str], what: str) -> None:
        """Record an unknown name, suggesting the closest valid one."""
        valid = list(valid)
        self.error(
            node,
            f"unknown {what} {name!r}; expected one of: {', '.join(valid)}",
            suggestion=suggest(name, valid),
        )

    def mapping(self, node: Node, what: str) -> list[tuple[str, Node, Node]] | None:
        """The (key, key node, value node) items of a mapping; duplicate keys are problems."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping (key: value), not {_kind(node)}")
            return None
        items: list[tuple[str, Node, Node]] = []
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL:
                self.error(key_node, f"{what}: keys must be names, not {_kind(key_node)}")
                continue
            key = str(key_node.value)
            if key in seen:
                first = self.where(seen[key])
                self.error(key_node, f"{what}: {key!r} appears twice (first at line {first.line})")
                continue
            seen[key] = key_node
            items.append((key, key_node, value_node))
        return items

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        """The items of a list."""
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list, not {_kind(node)}")
            return None
        return list(node.value)

    def value(self, node: Node) -> Any:
        """The plain Python value of a node (scalars, lists, mappings)."""
        return self._constructor.construct_object(node, deep=True)

    def string(self, node: Node, what: str, *, allow_numbers: bool = False) -> str | None:
        """A non-empty string; with `allow_numbers`, any scalar as written (tags like 404 or on)."""
        # YAML 1.1 reads on/off/yes/no as booleans; as a name or tag the text is what was meant.
        ok_tags = (_STR, _INT, _FLOAT, _BOOL) if allow_numbers else (_STR,)
        if not isinstance(node, ScalarNode) or node.tag not in ok_tags:
            self.error(node, f"{what} must be a string, not {_kind(node)}")
            return None
        text = str(node.value).strip()
        if not text:
            self.error(node, f"{what} must not be empty")
            return None
        return text

    def strings(
        self, node: Node, what: str, *, allow_numbers: bool = False
    ) -> tuple[str, ...] | None:
        """One string or a non-empty list of strings."""
        if isinstance(node, SequenceNode):
            if not node.value:
                self.error(node, f"{what} must not be an empty list")
                return None
            out = [self.string(item, what, allow_numbers=allow_numbers) for item in node.value]
            if any(s is None for s in out):
                return None
            return tuple(s for s in out if s is not None)
        one = self.string(node, what, allow_numbers=allow_numbers)
        return None if one is None else (one,)

    def boolean(self, node: Node, what: str) -> bool | None:
        """true or false."""
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            self.error(node, f"{what} must be true or false, not {_kind(node)}")
            return None
        return bool(self.value(node))

    def integer(self, node: Node, what: str) -> int | None:
        """A whole number."""
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            self.error(node, f"{what} must be a whole number, not {_kind(node)}")
            return None
        return int(self.value(node))

    def scalar(self, node: Node, what: str) -> str | int | float | bool | None:
        """A string, number, boolean or null (a custom field value)."""
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a single value, not {_kind(node)}")
            return None
        value = self.value(node)
        if not isinstance(value, str | int | float | bool) and value is not None:
            return str(value)
        return value

    def is_null(self, node: Node) -> bool:
        """Whether the node is YAML null (`~`, `null` or nothing)."""
        return isinstance(node, ScalarNode) and node.tag == _NULL


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        _STR: f"the string {node.value!r}",
        _INT: f"the number {node.value}",
        _FLOAT: f"the number {node.value}",
        _BOOL: f"the boolean {node.value}",
        _NULL: "nothing (null)",
    }.get(node.tag, f"{node.value!r}")
