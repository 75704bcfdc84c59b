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
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
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
# Among ASCII characters \w is exactly [A-Za-z0-9_]: every other ASCII byte becomes a
# space (bytes of non-ASCII characters are kept), and str.split() gives the words of
# _WORD.findall, several times faster on a long stack trace (C passes instead of the
# regex engine's). Only a piece with a non-ASCII character goes through the regex.
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_NOT_WORD = bytes(c if c in _WORD_BYTES or c >= 128 else 32 for c in range(256))


def words(text: str) -> tuple[str, ...]:
    """The words of `text`, casefolded: the unit keywords and phrases are matched on."""
    return tuple(_WORD.findall(text.casefold()))


def _words_of(part: str) -> list[str] | tuple[str]:
    # A piece of ASCII word characters is one word; any other goes through the regex.
    return (part,) if part.isascii() else _WORD.findall(part)


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
    _words: str | None = field(default=None, repr=False)
    _joined: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, text: str) -> Text:
        """Normalize `text`."""
        folded = text.casefold()
        spaced = folded
        if not folded.isascii():
            # Non-ASCII characters that are no word characters (no-break spaces, quotes,
            # dashes, arrows: what most reports have) separate words like a space does.
            # re's \w is str.isalnum() or "_" (SRE_UNI_IS_WORD).
            for ch in set(_NON_ASCII.findall(folded)):
                if not ch.isalnum():
                    spaced = spaced.replace(ch, " ")
        if spaced.isascii():
            tokens = spaced.encode("ascii").translate(_NOT_WORD).decode("ascii").split()
        else:
            parts = spaced.encode().translate(_NOT_WORD).decode().split()
            tokens = [w for part in parts for w in _words_of(part)]
        haystack = folded
        if not folded.isascii() and any(c in text for c in _RE_FOLD_CHARS):
            haystack = text.translate(_RE_FOLD).casefold()
        return cls(text, folded, tokens, frozenset(tokens), haystack)

    def words(self) -> str | None:
        """The distinct words joined by spaces, when they are the haystack's words (else None)."""
        if self.haystack is not self.folded:
            return None
        if self._words is None:
            self._words = " ".join(self.token_set)
        return self._words

    def has_literal(self, literal: Literal) -> bool:
        """Whether `literal.text` occurs in `haystack`, looked up in the distinct words first.

        A long stack trace repeats its words: its distinct words, joined, are a fraction
        of its length. A run of word characters occurs in the haystack only inside one of
        its words, so a literal of word characters alone is decided there exactly, and
        any other literal is absent when one of its word runs is. Only when the haystack's
        words are not `tokens` (the rare texts re's IGNORECASE folds differently) is the
        haystack searched directly.
        """
        words = self.words()
        if words is not None:
            for piece in literal.pieces:
                if piece not in words:
                    return False
            if literal.word_only:
                return True
        return literal.text in self.haystack

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
        # Words never contain a space: the phrase's words, next to each other, are the
        # phrase joined by spaces within the words joined by spaces (one C search, where
        # indexing a long stack trace's positions took a Python loop over every word).
        if self._joined is None:
            self._joined = " " + " ".join(self.tokens) + " "
        return " " + " ".join(phrase) + " " in self._joined


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


def literal_requirements(pattern: str) -> tuple[tuple[str, ...], ...]:
    """Every requirement read off `pattern`, most selective first: a match contains at
    least one string of each (required_literals is the first). Empty when there is none.
    """
    try:
        parsed = _sre.parse(pattern, re.IGNORECASE)
    except re.error:
        return ()
    found = _requirements(list(parsed))
    return tuple(sorted(set(found), key=lambda alts: (-min(map(len, alts)), len(alts), alts)))


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
class Literal:
    """A string a pattern requires, with its runs of word characters (Text.has_literal)."""

    text: str
    pieces: tuple[str, ...]
    # Nothing but word characters: found in the text's words means found in the text.
    word_only: bool

    @classmethod
    def of(cls, text: str) -> Literal:
        """The literal and its word runs."""
        pieces = tuple(_WORD.findall(text))
        return cls(text, pieces, pieces == (text,))


class LiteralIndex:
    """Which of many required literals occur in a text, in one pass.

    Hundreds of taxonomy patterns each need a literal; testing each with `in` scans the
    text once per literal, which on a long stack trace was most of a report's routing
    time. An Aho-Corasick automaton (pyahocorasick, a maintained C library) finds every
    literal, overlapping ones included, in one pass over the haystack (measured faster
    than a pass over the distinct words, which must be joined first).
    """

    def __init__(self, literals: Iterable[Literal]) -> None:
        import ahocorasick  # type: ignore[import-not-found,unused-ignore]

        self.literals = sorted({lit.text for lit in literals})
        self.automaton: Any = None
        if self.literals:
            self.automaton = ahocorasick.Automaton()
            for t in self.literals:
                self.automaton.add_word(t, t)
            self.automaton.make_automaton()

    def present(self, text: Text) -> set[str]:
        """The literals that occur in `text`'s haystack."""
        if self.automaton is None:
            return set()
        return {t for _, t in self.automaton.iter(text.haystack)}


@dataclass(frozen=True)
class FilteredPattern:
    """A compiled pattern and the literals that must be in the text before it is worth running."""

    source: str
    regex: re.Pattern[str]
    literals: tuple[str, ...] | None
    # Every requirement (a match has one literal of each), most selective first: a pattern
    # like (?:invokemethod|x)[- ]?successully is skipped when "successully" is absent even
    # though "invokemethod" is in every Java stack trace.
    requirements: tuple[tuple[Literal, ...], ...] = ()

    @classmethod
    def of(cls, pattern: str) -> FilteredPattern:
        """Compile `pattern` (raises re.error) and read its prefilter."""
        requirements = tuple(tuple(map(Literal.of, alts)) for alts in literal_requirements(pattern))
        return cls(pattern, compile_pattern(pattern), required_literals(pattern), requirements)

    @property
    def checks(self) -> tuple[Literal, ...] | None:
        """The most selective requirement (None when the pattern has none)."""
        return self.requirements[0] if self.requirements else None

    def worth_running(self, text: Text) -> bool:
        """False when a required literal is missing from `text` (the regex cannot match)."""
        has = text.has_literal
        return all(any(map(has, alts)) for alts in self.requirements)

    def search(self, text: Text) -> re.Match[str] | None:
        """The first match in `text`, skipping the regex when a required literal is absent."""
        if not self.worth_running(text):
            return None
        return self.regex.search(text.original)
