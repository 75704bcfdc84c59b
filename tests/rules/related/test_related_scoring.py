"""Pure scoring pieces: packed postings, idf, the recency prior, grouping decisions."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from rules.related.joins import (
    JOIN_SCORE,
    MIN_INDEXED,
    MIN_SIMILARITY,
    PairFeatures,
    same_issue_score,
)
from rules.related.scoring import (
    HUB,
    Evidence,
    Match,
    Posting,
    decide_group,
    field_terms,
    idf,
    new_group_id,
    query_weights,
    recency,
    summary_line,
)

counts = st.integers(min_value=0, max_value=60)


@given(counts, st.integers(0, 1000), st.integers(0, 120), st.integers(0, 16000), st.floats(0, 1))
def test_posting_survives_packing(tt: int, tb: int, lt: int, lb: int, impact: float) -> None:
    posting = Posting(tt, tb, lt, lb)
    assert Posting.unpack(float(posting.pack(impact))) == posting


def test_packed_postings_order_by_impact_first() -> None:
    strong = Posting(0, 1, 0, 10).pack(0.9)
    weak = Posting(60, 1000, 100, 16000).pack(0.1)
    assert strong > weak


def test_counts_beyond_the_fields_bits_are_capped() -> None:
    assert Posting.unpack(Posting(500, 5000, 500, 10**6).pack(0.5)) == Posting(63, 1023, 127, 16383)


def test_rarer_terms_weigh_more() -> None:
    assert idf(1000, 1) > idf(1000, 10) > idf(1000, 900) > 0


def test_recency_prior_is_between_one_and_two() -> None:
    assert recency(HUB, 0) == 2.0
    assert 1.0 < recency(HUB, 90 * 86400) < recency(HUB, 86400) < 2.0
    assert recency(HUB, 10 * 365 * 86400) < 1.0001


def test_a_report_without_a_title_is_titled_by_its_first_line() -> None:
    assert summary_line("\n  Export   does nothing\nsince Monday") == "Export does nothing"
    assert len(summary_line("word " * 40)) <= 80
    terms = field_terms(HUB, " ", "Export does nothing\nsince Monday")
    assert set(terms.title) == set(field_terms(HUB, "Export does nothing", "").title)
    assert "monday" in terms.body and "export" in terms.body


def test_query_weights_count_title_words_twice() -> None:
    weights = query_weights(HUB, field_terms(HUB, "export fails", "the export button"))
    assert weights["export"] == 3.0
    assert weights["button"] == 1.0


def _match(doc_id: str, similarity: float, *, sig: bool = False, group: str | None = None) -> Match:
    return Match(doc_id, similarity, similarity, Evidence(signature_equal=sig), group_id=group)


def _features(alike: float) -> PairFeatures:
    """Pair features of two reports as alike as `alike` (0: nothing shared, 1: copies)."""
    return PairFeatures(
        similarity=alike,
        reverse_similarity=alike,
        title_similarity=alike,
        title_reverse_similarity=alike,
        title_overlap=alike,
        rare_shared=int(10 * alike),
        gap_days=1.0,
    )


MATURE = MIN_INDEXED * 10


def test_a_report_alike_enough_joins_its_matchs_group() -> None:
    features = {"a": _features(0.2), "b": _features(0.95)}
    decision = decide_group(
        "new", [_match("a", 0.2), _match("b", 0.6, group="g7")], features=features, n_docs=MATURE
    )
    assert (decision.group_id, decision.joined) == ("g7", True)
    assert decision.match is not None and decision.match.doc_id == "b"
    assert decision.scores["b"] >= JOIN_SCORE > decision.scores["a"]


def test_equal_titles_over_different_reports_do_not_join() -> None:
    # "Hi team" over two different issues: the titles agree, the reports do not.
    titles_only = replace(_features(1.0), similarity=0.2, reverse_similarity=0.9)
    assert same_issue_score(titles_only) >= JOIN_SCORE
    decision = decide_group("new", [_match("a", 0.9)], features={"a": titles_only}, n_docs=MATURE)
    assert not decision.joined
    assert "alike only in their titles" in decision.reason
    alike = replace(titles_only, similarity=MIN_SIMILARITY)
    assert decide_group("new", [_match("a", 0.9)], features={"a": alike}, n_docs=MATURE).joined


def test_a_match_without_a_group_founds_one_named_after_it() -> None:
    decision = decide_group(
        "new", [_match("a", 0.9)], features={"a": _features(1.0)}, n_docs=MATURE
    )
    assert (decision.group_id, decision.joined) == (new_group_id("a"), True)


def test_below_the_threshold_a_report_starts_its_own_group() -> None:
    decision = decide_group(
        "new", [_match("a", 0.49, group="g1")], features={"a": _features(0.3)}, n_docs=MATURE
    )
    assert (decision.group_id, decision.joined, decision.match) == (
        new_group_id("new"),
        False,
        None,
    )
    assert decision.reason.startswith("best same-issue score")
    # Still a candidate: suggested, not joined.
    assert [m.doc_id for m in decision.matches] == ["a"]


def test_similarity_alone_never_joins() -> None:
    # A raw similarity of 0.99 is what once joined two different "button does nothing"
    # reports: without the pair's features there is no text join.
    decision = decide_group("new", [_match("a", 0.99)], n_docs=MATURE)
    assert not decision.joined


def test_a_young_index_never_joins_on_words() -> None:
    decision = decide_group(
        "new", [_match("a", 1.0)], features={"a": _features(1.0)}, n_docs=MIN_INDEXED - 1
    )
    assert not decision.joined
    assert decision.reason == (
        f"young index ({MIN_INDEXED - 1} reports; words join from {MIN_INDEXED}): suggestions only"
    )
    one = decide_group("new", [_match("a", 1.0)], features={"a": _features(1.0)}, n_docs=1)
    assert one.reason == f"young index (1 report; words join from {MIN_INDEXED}): suggestions only"


def test_only_other_crashes_as_candidates_are_suggested_and_the_reason_says_so() -> None:
    other = Match("a", 1.0, 0.9, Evidence(signature_differs=True))
    decision = decide_group("new", [other], features={"a": _features(1.0)}, n_docs=MATURE)
    assert not decision.joined and decision.matches == (other,)
    assert decision.reason == (
        "its candidates are other crashes (different signatures): suggestions only"
    )


def test_a_threshold_of_one_means_words_never_join() -> None:
    # RELATED_JOIN_SCORE=1: suggestions only, however alike; a crash signature still joins.
    perfect = {"a": _features(1.0)}
    decision = decide_group("new", [_match("a", 1.0)], 1.0, features=perfect, n_docs=MATURE)
    assert not decision.joined and decision.matches[0].doc_id == "a"
    assert decision.reason.endswith("words never join here (join score set to 1): suggestions only")
    assert decide_group("new", [_match("a", 1.0)], 0.05, features=perfect, n_docs=MATURE).joined
    crash = decide_group("new", [_match("s", 0.1, sig=True)], 1.0, n_docs=MATURE)
    assert crash.joined and crash.reason == "same crash signature"


def test_people_s_not_related_wins_over_any_evidence() -> None:
    decision = decide_group(
        "new",
        [_match("a", 1.0, sig=True)],
        features={"a": _features(1.0)},
        n_docs=MATURE,
        rejected={"a"},
    )
    assert not decision.joined and decision.matches == ()


def test_the_same_issue_score_grows_with_the_evidence() -> None:
    scores = [same_issue_score(_features(x / 10)) for x in range(11)]
    assert scores == sorted(scores) and 0 < scores[0] < scores[-1] < 1


def test_equal_crash_signature_joins_whatever_the_text() -> None:
    decision = decide_group("new", [_match("a", 0.9, group="g1"), _match("b", 0.01, sig=True)])
    assert (decision.group_id, decision.joined, decision.reason) == (
        new_group_id("b"),
        True,
        "same crash signature",
    )


def test_no_candidates_means_a_new_group() -> None:
    assert decide_group("new", []).group_id == new_group_id("new")


def test_a_different_crash_never_joins_on_words_alone() -> None:
    other_crash = Match("a", 0.95, 0.95, Evidence(signature_differs=True), group_id="g1")
    decision = decide_group(
        "new", [other_crash, _match("b", 0.2)], features={"a": _features(1.0)}, n_docs=MATURE
    )
    assert not decision.joined and decision.group_id == new_group_id("new")
