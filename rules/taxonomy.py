"""The taxonomy: tag -> keywords / patterns, matched against a report's text in one pass.

All keywords of all tags go into one PhraseMatcher (a set intersection on the
text's words), so 700 tags cost about what 7 do; patterns sit behind literal
prefilters (see rules.text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.model import TaxonomyTag
from rules.text import FilteredPattern, PhraseMatcher, Text, words


@dataclass(frozen=True)
class TaxonomyHit:
    """A tag the taxonomy gave, and the keyword or pattern (and text) that matched."""

    tag: str
    kind: str  # "keyword" or "pattern"
    rule: str  # the keyword or the pattern as written in the file
    matched: str  # the text that matched (for a keyword, the keyword's words)


class Taxonomy:
    """A compiled taxonomy: `match(text)` returns every tag whose keyword or pattern occurs."""

    def __init__(self, tags: Sequence[TaxonomyTag]) -> None:
        self.order = {t.tag: i for i, t in enumerate(tags)}
        # phrase (words) -> [(tag, rank of the keyword in its tag, keyword as written)]
        self.keyword_tags: dict[tuple[str, ...], list[tuple[str, int, str]]] = {}
        self.patterns: list[tuple[str, FilteredPattern]] = []
        for t in tags:
            for rank, keyword in enumerate(t.keywords):
                phrase = words(keyword)
                if phrase:
                    self.keyword_tags.setdefault(phrase, []).append((t.tag, rank, keyword))
            for pattern in t.patterns:
                self.patterns.append((t.tag, FilteredPattern.of(pattern)))
        self.keywords = PhraseMatcher(self.keyword_tags)

    def match(self, text: Text) -> list[TaxonomyHit]:
        """One hit per tag (its first keyword listed, else its first pattern), in file order."""
        best: dict[str, tuple[int, TaxonomyHit]] = {}
        for phrase in self.keywords.found(text):
            for tag, rank, keyword in self.keyword_tags[phrase]:
                # A deterministic explanation whatever order the set gave: the first-listed keyword.
                if tag not in best or rank < best[tag][0]:
                    best[tag] = (rank, TaxonomyHit(tag, "keyword", keyword, " ".join(phrase)))
        hits = {tag: hit for tag, (_, hit) in best.items()}
        haystack = text.haystack
        # Inlined FilteredPattern.search: with hundreds of patterns the call is the cost.
        for tag, pattern in self.patterns:
            literals = pattern.literals
            if tag in hits or (literals is not None and not any(x in haystack for x in literals)):
                continue
            m = pattern.regex.search(text.original)
            if m is not None:
                hits[tag] = TaxonomyHit(tag, "pattern", pattern.source, m.group(0))
        return sorted(hits.values(), key=lambda h: self.order[h.tag])
