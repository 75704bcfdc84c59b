"""Text matching: words and phrases, the regex prefilter (never hides a match), taxonomy."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.model import TaxonomyTag
from rules.semver import Version, VersionSpec
from rules.taxonomy import Taxonomy
from rules.text import FilteredPattern, PhraseMatcher, Text, required_literals, words


def test_words_are_casefolded_and_split_on_punctuation() -> None:
    assert words("Can't LOG-in, Straße!") == ("can", "t", "log", "in", "strasse")


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"charged \d+ times", ("charged ",)),
        (r"double[- ]charged", ("charged",)),
        (r"EXC_BAD_ACCESS", ("exc_bad_access",)),
        (r"\bSIG(SEGV|ABRT)\b", ("segv", "abrt")),
        (r"error|failure", ("error", "failure")),
        (r"colou?r", ("colo",)),
        (r"a|bcd", None),  # one alternative has nothing to look for
        (r"\d{3}", None),
        (r"(?-i:Case)sensitive", ("sensitive",)),
    ],
)
def test_required_literals(pattern: str, literals: tuple[str, ...] | None) -> None:
    assert required_literals(pattern) == literals


PATTERNS = [
    r"charged \d+ times",
    r"\bSIG(SEGV|ABRT|KILL)\b",
    r"error|failure",
    r"colou?r",
    r"(?:log|sign)[ -]?in",
    r"kiss",
    r"straße",
    r"http\s*[45]\d\d",
    r"[a-z]+ing\b",
]
ALPHABET = "abceiklnorstgdSIGKEV \u00df\u0131\u017f\u212a\u0130-_0123456789\n"


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet=ALPHABET, max_size=40))
def test_the_prefilter_never_hides_a_match(pattern: str, text: str) -> None:
    expected = re.search(pattern, text, re.IGNORECASE)
    got = FilteredPattern.of(pattern).search(Text.of(text))
    assert (got is None) == (expected is None)


@pytest.mark.parametrize(
    "text", ["\u212aISS", "K\u0130SS", "\u017fign in", "log\u0131n", "SIG\u212aILL", "HTTP 503"]
)
def test_the_prefilter_with_unicode_case_equivalents(text: str) -> None:
    for pattern in PATTERNS:
        expected = re.search(pattern, text, re.IGNORECASE) is not None
        assert (FilteredPattern.of(pattern).search(Text.of(text)) is not None) == expected


PHRASES = [("a",), ("a", "b"), ("b", "a", "c"), ("c",), ("d", "d")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "A", "-", " "]), max_size=12))
def test_phrase_matching_agrees_with_a_plain_scan(parts: list[str]) -> None:
    text = Text.of(" ".join(parts))
    tokens = text.tokens
    expected = {
        p for p in PHRASES if any(tuple(tokens[i : i + len(p)]) == p for i in range(len(tokens)))
    }
    matcher = PhraseMatcher(PHRASES)
    assert matcher.found(text) == expected
    assert matcher.any_in(text) == bool(expected)


def test_taxonomy_gives_each_tag_once_in_file_order_with_what_matched() -> None:
    taxonomy = Taxonomy(
        [
            TaxonomyTag("crash", keywords=("crash", "crashes", "force close")),
            TaxonomyTag("billing", keywords=("invoice",), patterns=(r"charged \d+ times",)),
            TaxonomyTag("api", patterns=(r"HTTP\s*5\d\d",)),
            TaxonomyTag("never", keywords=("nothing here",)),
        ]
    )
    hits = taxonomy.match(Text.of("Got HTTP 502, then it crashes and crash again; Force-close!"))
    assert [(h.tag, h.kind, h.rule, h.matched) for h in hits] == [
        ("crash", "keyword", "crash", "crash"),
        ("api", "pattern", r"HTTP\s*5\d\d", "HTTP 502"),
    ]
    hits = taxonomy.match(Text.of("I was charged 2 times"))
    assert [(h.tag, h.kind, h.matched) for h in hits] == [("billing", "pattern", "charged 2 times")]


def test_many_tags_can_share_a_keyword() -> None:
    taxonomy = Taxonomy(
        [TaxonomyTag("ios", keywords=("iphone",)), TaxonomyTag("mobile", keywords=("iphone",))]
    )
    assert [h.tag for h in taxonomy.match(Text.of("my iPhone"))] == ["ios", "mobile"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.2", "1.10"),
        ("1.2.0-alpha", "1.2.0"),
        ("1.2.0-alpha", "1.2.0-alpha.1"),
        ("1.2.0-alpha.2", "1.2.0-alpha.10"),
        ("1.2.0-alpha.10", "1.2.0-beta"),
        ("v2", "2.0.1"),
    ],
)
def test_versions_order(a: str, b: str) -> None:
    va, vb = Version.parse(a), Version.parse(b)
    assert va is not None and vb is not None
    assert va < vb and not vb < va


def test_versions_equal_and_bad() -> None:
    assert Version.parse("5.2") == Version.parse("5.2.0")
    assert Version.parse("banana") is None
    with pytest.raises(ValueError, match="only works with == or !="):
        VersionSpec.parse(">=5.*")
    with pytest.raises(ValueError, match="is not a version clause"):
        VersionSpec.parse(">= 5 6")
