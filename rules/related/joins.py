"""The join decision: is a candidate the *same issue* as a new report, or only related?

Ranking (scoring.py) orders candidates for suggestions; joining needs more. A raw
similarity (score over the query's self-score) is not calibrated: two short reports that
share "button does nothing" score 0.99 against each other in a young index. So a
report joins a group on its own only on strong evidence:

- equal crash signatures (decide_group in scoring.py), or
- a same-issue score above JOIN_SCORE, computed from pair features that look at the
  titles (a report's own summary of its issue), normalized both ways (the candidate's
  title counts as much as the query's), weigh terms by how rare they are, and count the
  rare terms the whole reports share; the whole reports must be alike too
  (MIN_SIMILARITY). Bodies rank suggestions well but join badly: logs, steps and
  boilerplate are shared by different issues (on hadoop.jsonl, a model on whole-report
  similarity found 3 of the held-out half's 39 duplicates, this one 4, at a lower
  false-join rate on the fitting half);
- and never while the index is young (fewer than MIN_INDEXED reports): an idf over a
  handful of documents makes every word look rare.

The weights are a logistic regression fitted by `bench/related_calibrate.py` on the
first half (in time) of a labeled file, its threshold chosen there, and reported on the
second half (docs/related.md). Pure: index.py reads the candidates' terms and the
document frequencies and hands them here. Hand-written (no scikit-learn) because the
model is six numbers applied to five features; the fit is a few lines of numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Below this many indexed reports, no text join: idf needs a population to mean rarity.
MIN_INDEXED = 200
# Whole reports must be at least this alike both ways for words to join them, whatever
# their titles say: a first line such as "Hi team" or "Feedback" is a title two unrelated
# reports share. Below every join the model makes on hadoop.jsonl (the lowest is 0.40).
MIN_SIMILARITY = 0.3
# A term is rare when fewer than this share of the indexed reports have it.
RARE_SHARE = 0.002


@dataclass(frozen=True)
class PairFeatures:
    """What the join decision knows about a (new report, candidate) pair."""

    # The candidate's text score over the new report's self-score (whole reports, as the
    # index scores suggestions, but the new report's words no indexed report has count
    # too: they are what sets it apart), and the same with the roles swapped. Not in the
    # model: a gate (MIN_SIMILARITY) that the whole reports are alike, not only the titles.
    similarity: float
    reverse_similarity: float
    # The same computed on the two titles alone, both ways (the candidate's title as the
    # query of the new report's, and the new report's as the candidate's).
    title_similarity: float
    title_reverse_similarity: float
    # idf-weighted Jaccard of the two titles' terms.
    title_overlap: float
    # Rare terms (see RARE_SHARE) the two reports share, anywhere in them.
    rare_shared: int
    # Days between the two reports.
    gap_days: float
    # Both name a platform and an app version, and they agree (0 when either is unknown).
    same_platform: bool = False
    same_app_version: bool = False

    def vector(self) -> list[float]:
        """The features as the model reads them (order of WEIGHTS)."""
        return [
            min(self.title_similarity, self.title_reverse_similarity),
            self.title_overlap,
            math.log1p(self.rare_shared),
            math.log1p(max(self.gap_days, 0.0)),
            float(self.same_platform and self.same_app_version),
        ]


FEATURES = (
    "title_similarity_both_ways",
    "title_overlap",
    "log1p_rare_shared",
    "log1p_gap_days",
    "same_platform_and_version",
)


def _idf(n_docs: int, df: int) -> float:
    # The same idf as scoring.idf; a term only the query has (df 0) is as rare as can be.
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def weighted_jaccard(a: set[str], b: set[str], idfs: Mapping[str, float]) -> float:
    """Sum of idf over shared terms over sum of idf over all terms of either (0..1)."""
    union = a | b
    if not union:
        return 0.0
    total = sum(idfs.get(t, 0.0) for t in union)
    if total <= 0:
        return 0.0
    return sum(idfs.get(t, 0.0) for t in a & b) / total


def pair_features(
    *,
    similarity: float,
    reverse_similarity: float,
    title_similarity: float,
    title_reverse_similarity: float,
    query_terms: set[str],
    query_title: set[str],
    candidate_terms: set[str],
    candidate_title: set[str],
    dfs: Mapping[str, int],
    n_docs: int,
    gap_days: float,
    same_platform: bool = False,
    same_app_version: bool = False,
) -> PairFeatures:
    """The pair's features from both reports' terms and the index's document frequencies."""
    idfs = {t: _idf(n_docs, dfs.get(t, 0)) for t in query_title | candidate_title}
    rare_df = max(1.0, RARE_SHARE * n_docs)
    shared = query_terms & candidate_terms
    return PairFeatures(
        similarity=similarity,
        reverse_similarity=reverse_similarity,
        title_similarity=title_similarity,
        title_reverse_similarity=title_reverse_similarity,
        title_overlap=weighted_jaccard(query_title, candidate_title, idfs),
        rare_shared=sum(1 for t in shared if dfs.get(t, 0) <= rare_df),
        gap_days=gap_days,
        same_platform=same_platform,
        same_app_version=same_app_version,
    )


# Fitted by `bench/related_calibrate.py` on the first half (in time) of hadoop.jsonl
# (2026-12-07; 3,747 candidate pairs, 24 of them labeled duplicates). hadoop.jsonl has
# no platforms or app versions, so that feature kept weight 0: it adds nothing until a
# deployment fits the model on its own labels (`related export-labels`).
WEIGHTS = (0.2583, 3.6929, 0.3803, -0.1406, 0.0)
INTERCEPT = -5.5791
# The lowest score whose false-join rate stayed within 0.02 on that fitting half. The
# probability is of "labeled a duplicate", and trackers' labels are incomplete, so it is
# low in absolute terms; what matters is the false-join rate it keeps (docs/related.md).
JOIN_SCORE = 0.0621


def same_issue_score(features: PairFeatures) -> float:
    """The calibrated probability that the pair is the same issue (logistic model)."""
    z = INTERCEPT + sum(w * x for w, x in zip(WEIGHTS, features.vector(), strict=True))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def strong_text_evidence(
    features: PairFeatures, n_docs: int, threshold: float = JOIN_SCORE
) -> tuple[bool, float]:
    """Whether words alone are enough to join, and the score that says so.

    A threshold of 1 or more means words never join (RELATED_JOIN_SCORE=1: suggestions
    only), whatever the score rounds to.
    """
    score = same_issue_score(features)
    alike = min(features.similarity, features.reverse_similarity) >= MIN_SIMILARITY
    words_may_join = threshold < 1.0
    return words_may_join and n_docs >= MIN_INDEXED and alike and score >= threshold, score
