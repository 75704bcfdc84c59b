"""Tag trends as pure decisions: movers, new tags, sparklines, candidates for the taxonomy.

A *mover* is a tag whose count this week is significantly above its recent weeks. The
test: with λ the mean of the tag's previous weeks (at least `FLOOR`, so a tag that was
quiet is not infinitely surprising), the Poisson upper tail p = P(X >= this week's
count | λ). A tag is a mover when p < `ALPHA` and it came up at least `MIN_COUNT` times;
movers are ranked by p, smallest first. So a tag going 1 -> 3 (p = 0.08) is no mover,
while 40 -> 90 (p ~ 1e-11) is near the top. The tail is a few lines of `math` (lgamma
in log space, summed from x up): scipy is not a dependency for one function.

The counts come from integrations/queue/tag_counts.py (tag -> reports per ISO week,
oldest first, this week last).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rules.related.tokenize import STOPWORDS

ALPHA = 0.01
MIN_COUNT = 3
FLOOR = 0.5
BASELINE_WEEKS = 8
BARS = "▁▂▃▄▅▆▇█"


def poisson_upper_tail(x: int, lam: float) -> float:
    """P(X >= x) for X ~ Poisson(lam)."""
    if x <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if x <= lam:
        # Not in the tail: 1 - P(X < x), which is not small, so no precision is lost.
        below = sum(math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(x))
        return max(0.0, min(1.0, 1.0 - below))
    # In the tail the terms only shrink: sum them from x until they stop mattering.
    total, k = 0.0, x
    while True:
        term = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
        total += term
        if term < total * 1e-15 or term == 0.0:
            return min(1.0, total)
        k += 1


@dataclass(frozen=True)
class Mover:
    """A tag this week above its recent weeks: count, baseline mean, tail probability."""

    tag: str
    count: int
    baseline: float
    p_value: float
    history: tuple[int, ...]


def movers(
    counts: Mapping[str, Sequence[int]],
    *,
    baseline_weeks: int = BASELINE_WEEKS,
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
    exclude: Iterable[str] = (),
) -> list[Mover]:
    """Tags whose last week is significantly above the mean of the `baseline_weeks` before.

    `exclude`: tags not to rank (new tags, listed apart). Most significant first.
    """
    skip = set(exclude)
    out = []
    for tag, series in counts.items():
        if tag in skip or len(series) < 2:
            continue
        count = series[-1]
        before = series[-1 - baseline_weeks : -1]
        baseline = sum(before) / len(before)
        p = poisson_upper_tail(count, max(baseline, FLOOR))
        if count >= min_count and count > baseline and p < alpha:
            out.append(Mover(tag, count, baseline, p, tuple(series)))
    return sorted(out, key=lambda m: (m.p_value, -(m.count - m.baseline), m.tag))


def new_tags(first_seen: Mapping[str, str], week: str) -> list[str]:
    """Tags counted for the first time in `week`."""
    return sorted(tag for tag, seen in first_seen.items() if seen == week)


def top_tags(this_week: Mapping[str, int], limit: int = 10) -> list[tuple[str, int]]:
    """The most frequent tags of a week, ties by name."""
    ranked = sorted(((t, n) for t, n in this_week.items() if n > 0), key=lambda x: (-x[1], x[0]))
    return ranked[:limit]


def sparkline(values: Sequence[int]) -> str:
    """Counts as a line of block characters (▁ lowest .. █ highest), readable anywhere."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] for v in values)


def retire_candidates(
    taxonomy: Iterable[str],
    last_matched: Mapping[str, float],
    *,
    since: float | None,
    now: float,
    days: int = 90,
) -> list[str]:
    """Taxonomy tags whose keywords and patterns matched no report in `days` days.

    A tag never matched counts only once the counters are that old (`since`).
    """
    cutoff = now - days * 24 * 3600
    old_enough = since is not None and since <= cutoff
    out = []
    for tag in taxonomy:
        last = last_matched.get(tag)
        if (last is None and old_enough) or (last is not None and last < cutoff):
            out.append(tag)
    return sorted(out)


# ---------------------------------------------------------------- tag suggestions

_WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")
# Words a report's text is full of that no tag could be about.
_NOISE_WORDS = """app please thanks thank hi hello hey just get got would could since still one
like really also use using used try tried trying when what work works need want see seems
time today yesterday way thing things know think problem issue report help sure able anyone
someone something every always never again even much many lot new make made"""
_NOISE = frozenset(_NOISE_WORDS.split())


@dataclass(frozen=True)
class Suggestion:
    """A word or phrase common among untagged reports: how many reports had it, and one."""

    phrase: str
    reports: int
    example: str


def _terms(text: str, known: frozenset[str]) -> set[str]:
    out = set()
    # Phrases stay within a line (a subject, a sentence of the description).
    for line in re.split(r"[\n.!?;]+", text.casefold()):
        tokens = [w for w in _WORD.findall(line) if len(w) <= 30]
        # Up to five words: a phrase as people write it, not its overlapping pieces.
        for n in (1, 2, 3, 4, 5):
            for i in range(len(tokens) - n + 1):
                gram = tokens[i : i + n]
                # A phrase neither starts nor ends with a filler word, and is no known keyword.
                if any(g in STOPWORDS or g in _NOISE for g in (gram[0], gram[-1])):
                    continue
                if n == 1 and len(gram[0]) < 3:
                    continue
                phrase = " ".join(gram)
                if phrase not in known:
                    out.add(phrase)
    return out


def suggest_terms(
    texts: Sequence[str], *, known: Iterable[str] = (), limit: int = 15, min_reports: int = 2
) -> list[Suggestion]:
    """The most frequent distinctive words and phrases among `texts` (untagged reports).

    Counted once per report (document frequency); filler words and the taxonomy's own
    keywords (`known`) are left out; a word that mostly occurs inside a longer frequent
    phrase gives way to the phrase.
    """
    known_set = frozenset(" ".join(k.casefold().split()) for k in known)
    df: Counter[str] = Counter()
    first: dict[str, str] = {}
    for text in texts:
        for term in _terms(text, known_set):
            df[term] += 1
            first.setdefault(term, text.strip().splitlines()[0][:120] if text.strip() else "")
    frequent = {t: n for t, n in df.items() if n >= min_reports}
    kept: list[Suggestion] = []
    for term, n in sorted(frequent.items(), key=lambda x: (-x[1], -len(x[0].split()), x[0])):
        # A shorter term covered by an already kept phrase of (nearly) the same count is noise.
        if any(f" {term} " in f" {k.phrase} " and k.reports >= 0.8 * n for k in kept):
            continue
        # Two overlapping pieces of one longer phrase, from as many reports: one phrase.
        for i, k in enumerate(kept):
            merged = _join(k.phrase, term) if k.reports == n else None
            if merged is not None:
                kept[i] = Suggestion(merged, n, k.example)
                break
        else:
            kept.append(Suggestion(term, n, first[term]))
        if len(kept) >= limit:
            break
    return kept


def _join(a: str, b: str) -> str | None:
    """`a` and `b` as one phrase where the end of one is the start of the other (2+ words)."""
    aw, bw = a.split(), b.split()
    for size in range(min(len(aw), len(bw)) - 1, 1, -1):
        if aw[-size:] == bw[:size]:
            return " ".join(aw + bw[size:])
        if bw[-size:] == aw[:size]:
            return " ".join(bw + aw[size:])
    return None
