"""The taxonomy: tag -> keywords / patterns, matched against a report's text in one pass.

All keywords of all tags go into one PhraseMatcher (a set intersection on the
text's words), so 700 tags cost about what 7 do; patterns sit behind literal
prefilters (see rules.text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.model import TaxonomyTag
from rules.text import FilteredPattern, LiteralIndex, PhraseMatcher, Text, words


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
        # (tag, pattern, its requirements as literal texts: one of each must be present)
        self.patterns: list[tuple[str, FilteredPattern, tuple[tuple[str, ...], ...]]] = []
        for t in tags:
            for rank, keyword in enumerate(t.keywords):
                phrase = words(keyword)
                if phrase:
                    self.keyword_tags.setdefault(phrase, []).append((t.tag, rank, keyword))
            for pattern in t.patterns:
                filtered = FilteredPattern.of(pattern)
                needs = tuple(tuple(x.text for x in alts) for alts in filtered.requirements)
                self.patterns.append((t.tag, filtered, needs))
        self.keywords = PhraseMatcher(self.keyword_tags)
        self.literals = LiteralIndex(
            x for _, p, _ in self.patterns for alts in p.requirements for x in alts
        )
        # Only a pattern whose first requirement is met is looked at: the index from each
        # literal to those patterns, and the patterns with no requirement (always run).
        self.by_literal: dict[str, list[int]] = {}
        self.always: list[int] = []
        for i, (_, _, needs) in enumerate(self.patterns):
            if not needs:
                self.always.append(i)
            for lit in needs[0] if needs else ():
                self.by_literal.setdefault(lit, []).append(i)

    def match(self, text: Text) -> list[TaxonomyHit]:
        """One hit per tag (its first keyword listed, else its first pattern), in file order."""
        best: dict[str, tuple[int, TaxonomyHit]] = {}
        for phrase in self.keywords.found(text):
            for tag, rank, keyword in self.keyword_tags[phrase]:
                # A deterministic explanation whatever order the set gave: the first-listed keyword.
                if tag not in best or rank < best[tag][0]:
                    best[tag] = (rank, TaxonomyHit(tag, "keyword", keyword, " ".join(phrase)))
        hits = {tag: hit for tag, (_, hit) in best.items()}
        present = self.literals.present(text)
        candidates = set(self.always)
        for lit in present:
            candidates.update(self.by_literal.get(lit, ()))
        # FilteredPattern.search, with every literal looked up at once; in file order, so
        # a tag's first matching pattern explains it.
        for i in sorted(candidates):
            tag, pattern, needs = self.patterns[i]
            if tag in hits or not all(not present.isdisjoint(alts) for alts in needs[1:]):
                continue
            m = pattern.regex.search(text.original)
            if m is not None:
                hits[tag] = TaxonomyHit(tag, "pattern", pattern.source, m.group(0))
        return sorted(hits.values(), key=lambda h: self.order[h.tag])
