"""The fast paths of rules/text.py decide exactly as the plain scans they replace."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.model import TaxonomyTag
from rules.taxonomy import Taxonomy
from rules.text import FilteredPattern, Literal, LiteralIndex, Text, literal_requirements

# Word characters, ASCII separators, and the non-ASCII a report carries: no-break
# spaces, quotes, dashes, CJK and accented letters, and re's IGNORECASE oddities.
ALPHABET = "abcxyzAZ09_ .-:\n\t\u00a0\u2019\u2013\u5173\u00dc\u00df\u0130\u0131\u017f\u212a"
texts = st.text(alphabet=ALPHABET, max_size=60)
LITERALS = ["abc", "xyz", "bca", "a_0", "zz", "c x", "b-c", "9:", "\u00fcb", "x\u00a0a"]


@settings(max_examples=400, deadline=None)
@given(texts)
def test_words_are_what_the_regex_finds(text: str) -> None:
    assert Text.of(text).tokens == re.findall(r"\w+", text.casefold())


@settings(max_examples=400, deadline=None)
@given(texts)
def test_literals_and_phrases_are_found_as_plain_scans_find_them(text: str) -> None:
    t = Text.of(text)
    for lit in LITERALS:
        assert t.has_literal(Literal.of(lit)) == (lit in t.haystack)
    index = LiteralIndex(Literal.of(x) for x in LITERALS)
    assert index.present(t) == {x for x in LITERALS if x in t.haystack}
    tokens = t.tokens
    for phrase in [("abc",), ("abc", "xyz"), ("a", "b", "c"), ("x", "x")]:
        plain = any(tuple(tokens[i : i + len(phrase)]) == phrase for i in range(len(tokens)))
        assert t.has_phrase(phrase) == plain


def test_every_requirement_of_a_pattern_is_used() -> None:
    pattern = r"(?:invokemethod|credentials)[- ]?successfully"
    # Most selective first: the longest shortest string.
    assert literal_requirements(pattern) == (("successfully",), ("invokemethod", "credentials"))
    filtered = FilteredPattern.of(pattern)
    # A stack trace full of the first requirement, without the second: the regex never runs.
    assert not filtered.worth_running(Text.of("at sun.reflect.InvokeMethod " * 50))
    assert filtered.search(Text.of("InvokeMethod successfully")) is not None


PATTERNS = [r"ab\w*c\b", r"(?:xy|zz)[- ]?abc", r"c x\d", r"\b9:\s*\S+", r"a_0|bca", r"\d+"]


@settings(max_examples=300, deadline=None)
@given(texts)
def test_taxonomy_patterns_match_as_a_plain_search_does(text: str) -> None:
    taxonomy = Taxonomy(
        [TaxonomyTag(f"t{i}", patterns=(p, r"zzz\d")) for i, p in enumerate(PATTERNS)]
    )
    hits = {h.tag: h.matched for h in taxonomy.match(Text.of(text))}
    expected = {}
    for i, p in enumerate(PATTERNS):
        m = re.search(p, text, re.IGNORECASE) or re.search(r"zzz\d", text, re.IGNORECASE)
        if m is not None:
            expected[f"t{i}"] = m.group(0)
    assert hits == expected
