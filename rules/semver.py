"""App and OS versions as written ("5.2", "5.2.1-beta.3", "17.4 (1234)") and version specs."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

_VERSION = re.compile(
    r"^\s*v?(?P<core>\d+(?:\.\d+)*)(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?"
    # Mobile builds often append the build number: "5.2.1 (431)".
    r"(?:\s*\(\s*\w+\s*\))?\s*$"
)
_CLAUSE = re.compile(r"^\s*(?P<op>>=|<=|==|!=|>|<|=)?\s*(?P<version>[^\s,]+)\s*$")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version: parts compared as numbers; a pre-release sorts before its release."""

    core: tuple[int, ...]
    pre: tuple[int | str, ...] = ()

    def __post_init__(self) -> None:
        # Computed once: rules compare the same report version many times.
        object.__setattr__(self, "_sort_key", self._key())

    @classmethod
    def parse(cls, text: str, *, trim: bool = True) -> Version | None:
        """The version in `text`, or None when it is not one."""
        m = _VERSION.match(text)
        if m is None:
            return None
        core = tuple(int(p) for p in m["core"].split("."))
        # "5.2" == "5.2.0": trailing zeros do not make a different version.
        while trim and len(core) > 1 and core[-1] == 0:
            core = core[:-1]
        pre: tuple[int | str, ...] = ()
        if m["pre"]:
            pre = tuple(int(p) if p.isdigit() else p.lower() for p in m["pre"].split("."))
        return cls(core, pre)

    def _key(self) -> tuple[object, ...]:
        # SemVer 2.0 section 11: no pre-release > any pre-release; numeric ids < alphanumeric ones.
        pre_key = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.core, 0 if self.pre else 1, pre_key)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        key: tuple[object, ...] = self.__dict__["_sort_key"]
        return key < other.__dict__["_sort_key"]

    def __str__(self) -> str:
        text = ".".join(map(str, self.core))
        return text + ("-" + ".".join(map(str, self.pre)) if self.pre else "")


@dataclass(frozen=True)
class VersionSpec:
    """Comma-separated clauses that must all hold: ">=5.2, <6", "==5.3.*", "5.2.1"."""

    text: str
    clauses: tuple[tuple[str, Version, bool], ...]  # (operator, version, wildcard)

    @classmethod
    def parse(cls, text: str) -> VersionSpec:
        """Parse a spec; raise ValueError saying which clause is wrong."""
        clauses = []
        for raw in str(text).split(","):
            m = _CLAUSE.match(raw)
            if m is None:
                raise ValueError(f"{raw.strip()!r} is not a version clause like '>=5.2'")
            op = m["op"] or "=="
            version_text = m["version"]
            wildcard = version_text.endswith(".*")
            if wildcard:
                if op not in ("==", "=", "!="):
                    raise ValueError(
                        f"a wildcard version only works with == or !=: {raw.strip()!r}"
                    )
                version_text = version_text[:-2]
            # A wildcard's zeros matter: "5.0.*" must not match 5.1.
            version = Version.parse(version_text, trim=not wildcard)
            if version is None:
                raise ValueError(f"{version_text!r} is not a version (expected e.g. 5.2.1)")
            clauses.append((op, version, wildcard))
        return cls(str(text), tuple(clauses))

    def contains(self, version: Version) -> bool:
        """Whether `version` satisfies every clause."""
        for op, bound, wildcard in self.clauses:
            if wildcard:
                n = len(bound.core)
                padded = version.core + (0,) * max(0, n - len(version.core))
                same = padded[:n] == bound.core
                if same != (op != "!="):
                    return False
            elif not _OPS[op](version, bound):
                return False
        return True

    def __str__(self) -> str:
        return self.text
