"""Text as rules see it: normalized once into words, so keywords are set look-ups, not scans.

Keywords and `text: {contains: ...}` phrases match whole words, case-insensitively
(casefold), with any punctuation or spacing between the words of a phrase:
"can't log in" matches "Can't   log-in". Regex patterns run on the original text
with IGNORECASE, behind a literal prefilter so most are never run at all.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\w+")
# re's own parser: the only exact way to know which literals a pattern requires.
_sre: Any = importlib.import_module("re._parser")
_LITERAL = _sre.LITERAL
_SUBPATTERN = _sre.SUBPATTERN
_BRANCH = _sre.BRANCH
_MIN_PREFILTER = 3
# The only non-ASCII characters re's IGNORECASE equates with ASCII letters (found by
# trying every code point): U+0130, U+0131, U+017F and the Kelvin sign. Mapping them
# before casefolding keeps the prefilter from hiding a match: casefold turns U+0130
# into "i" plus a combining dot, which no longer contains the literal.
_RE_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
_RE_FOLD_CHARS = tuple(map(chr, _RE_FOLD))


def words(text: str) -> tuple[str, ...]:
    """The words of `text`, casefolded: the unit keywords and phrases are matched on."""
    return tuple(_WORD.findall(text.casefold()))


@dataclass
class Text:
    """A text normalized once: casefolded, split into words, with a set for O(1) look-ups."""

    original: str
    folded: str
    tokens: list[str]
    token_set: frozenset[str]
    # What pattern prefilters look in: casefolded, plus re's own ASCII equivalences.
    haystack: str
    _positions: dict[str, list[int]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, text: str) -> Text:
        """Normalize `text`."""
        folded = text.casefold()
        tokens = _WORD.findall(folded)
        haystack = folded
        if not folded.isascii() and any(c in text for c in _RE_FOLD_CHARS):
            haystack = text.translate(_RE_FOLD).casefold()
        return cls(text, folded, tokens, frozenset(tokens), haystack)

    def positions(self, token: str) -> list[int]:
        """Where `token` occurs in the words (built on first use, for multi-word phrases)."""
        if self._positions is None:
            index: dict[str, list[int]] = {}
            for i, tok in enumerate(self.tokens):
                index.setdefault(tok, []).append(i)
            self._positions = index
        return self._positions.get(token, [])

    def has_phrase(self, phrase: tuple[str, ...]) -> bool:
        """Whether the words of `phrase` occur here, in order and next to each other."""
        if len(phrase) == 1:
            return phrase[0] in self.token_set
        if not self.token_set.issuperset(phrase):
            return False
        n = len(phrase)
        tokens = self.tokens
        return any(tuple(tokens[i : i + n]) == phrase for i in self.positions(phrase[0]))


class PhraseMatcher:
    """Finds which of many phrases occur in a Text: one set intersection, then multi-word checks."""

    def __init__(self, phrases: Iterable[tuple[str, ...]]) -> None:
        self.single: frozenset[str] = frozenset(p[0] for p in phrases if len(p) == 1)
        multi: dict[str, list[tuple[str, ...]]] = {}
        for p in phrases:
            if len(p) > 1:
                multi.setdefault(p[0], []).append(p)
        self.multi = multi
        self.multi_first = frozenset(multi)

    def found(self, text: Text) -> set[tuple[str, ...]]:
        """The phrases (as word tuples) that occur in `text`."""
        out: set[tuple[str, ...]] = {(w,) for w in text.token_set & self.single}
        for first in text.token_set & self.multi_first:
            for phrase in self.multi[first]:
                if text.has_phrase(phrase):
                    out.add(phrase)
        return out

    def any_in(self, text: Text) -> bool:
        """Whether at least one phrase occurs in `text`."""
        if not text.token_set.isdisjoint(self.single):
            return True
        for first in text.token_set & self.multi_first:
            if any(text.has_phrase(p) for p in self.multi[first]):
                return True
        return False


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rule-file regex: case-insensitive, searched anywhere in the text."""
    return re.compile(pattern, re.IGNORECASE)


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Casefolded ASCII strings at least one of which every match of `pattern` contains.

    None when no such strings of 3+ characters can be read off the pattern; then
    the pattern must always run. A prefilter like RE2's FilteredRE2, kept small.
    """
    try:
        parsed = _sre.parse(pattern, re.IGNORECASE)
    except re.error:
        return None
    return _best(_requirements(list(parsed)))


def _requirements(items: Sequence[tuple[Any, Any]]) -> list[tuple[str, ...]]:
    """Each entry is one requirement: a match contains at least one of its strings."""
    found: list[tuple[str, ...]] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) >= _MIN_PREFILTER:
            found.append(("".join(run),))
        run.clear()

    for op, av in items:
        if op is _LITERAL and 32 <= av < 127:
            run.append(chr(av).lower())
            continue
        close_run()
        if op is _SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if not add_flags and not del_flags:
                found.extend(_requirements(list(sub)))
        elif op is _BRANCH:
            alternatives = [_best(_requirements(list(sub))) for sub in av[1]]
            if all(alternatives):
                found.append(tuple(s for alt in alternatives if alt for s in alt))
    close_run()
    return found


def _best(requirements: list[tuple[str, ...]]) -> tuple[str, ...] | None:
    # The most selective requirement: the one whose shortest string is longest.
    if not requirements:
        return None
    return max(requirements, key=lambda alts: (min(map(len, alts)), -len(alts)))


@dataclass(frozen=True)
class FilteredPattern:
    """A compiled pattern and the literals that must be in the text before it is worth running."""

    source: str
    regex: re.Pattern[str]
    literals: tuple[str, ...] | None

    @classmethod
    def of(cls, pattern: str) -> FilteredPattern:
        """Compile `pattern` (raises re.error) and read its prefilter."""
        return cls(pattern, compile_pattern(pattern), required_literals(pattern))

    def search(self, text: Text) -> re.Match[str] | None:
        """The first match in `text`, skipping the regex when a required literal is absent."""
        if self.literals is not None and not any(lit in text.haystack for lit in self.literals):
            return None
        return self.regex.search(text.original)
