"""Movers, new tags, sparklines and taxonomy candidates, on counts where the answer is known."""

from __future__ import annotations

import math

from rules.trends import (
    movers,
    new_tags,
    poisson_upper_tail,
    retire_candidates,
    sparkline,
    suggest_terms,
    top_tags,
)


def test_the_poisson_tail_matches_its_closed_form() -> None:
    # P(X >= 3 | 1) = 1 - e^-1 (1 + 1 + 1/2)
    assert math.isclose(poisson_upper_tail(3, 1.0), 1 - math.exp(-1) * 2.5, rel_tol=1e-12)
    assert poisson_upper_tail(0, 5.0) == 1.0
    # Far in the tail the probability is tiny but not rounded to zero.
    assert 0 < poisson_upper_tail(90, 40.0) < 1e-9
    # Against a long explicit sum of the pmf.
    lam = 12.5
    direct = sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(20, 120))
    assert math.isclose(poisson_upper_tail(20, lam), direct, rel_tol=1e-9)


def test_a_big_tag_doubling_outranks_a_small_one_tripling() -> None:
    counts = {
        "export": [40, 41, 39, 40, 42, 38, 40, 40, 90],
        "dark_mode": [1, 1, 1, 1, 1, 1, 1, 1, 3],
        "login": [20, 22, 19, 21, 20, 20, 18, 21, 22],  # steady: no mover
        "sso": [2, 2, 3, 2, 2, 2, 2, 2, 9],
    }
    found = movers(counts)
    assert [m.tag for m in found] == ["export", "sso"]
    assert found[0].count == 90 and math.isclose(found[0].baseline, 40.0)
    # A tag seen for the first time is listed as new, not ranked as a mover.
    assert [m.tag for m in movers(counts, exclude=["export"])] == ["sso"]


def test_new_top_and_sparkline() -> None:
    assert new_tags({"a": "2026-W50", "b": "2026-W41"}, "2026-W50") == ["a"]
    assert top_tags({"a": 3, "b": 7, "c": 3, "d": 0}, limit=2) == [("b", 7), ("a", 3)]
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([5, 10]) == "▅█"


def test_retire_candidates_wait_until_the_counters_are_old_enough() -> None:
    day = 24 * 3600.0
    now = 1000 * day
    last = {"used": now - 5 * day, "stale": now - 91 * day}
    tags = ["used", "stale", "never"]
    assert retire_candidates(tags, last, since=now - 10 * day, now=now) == ["stale"]
    assert retire_candidates(tags, last, since=now - 100 * day, now=now) == ["never", "stale"]


def test_suggestions_are_frequent_distinctive_phrases_not_filler_or_known_keywords() -> None:
    texts = [
        "Where is the dark mode toggle? I can't find it",
        "Please bring back dark mode toggle",
        "dark mode toggle missing since the update, thanks",
        "The invoice total is wrong",
        "invoice shows the wrong VAT",
        "hello, the app is slow",
    ]
    found = suggest_terms(texts, known=["invoice"])
    assert found[0].phrase == "dark mode toggle" and found[0].reports == 3
    phrases = [s.phrase for s in found]
    # Covered by the longer phrase, filler, or already a taxonomy keyword:
    for gone in ("dark", "mode", "dark mode", "the", "please", "invoice", "app"):
        assert gone not in phrases
    assert "wrong" in phrases


def test_overlapping_pieces_of_one_long_phrase_are_suggested_as_that_phrase() -> None:
    texts = ["The footer colour looks odd on my tablet"] * 3 + ["tablet sync fails"]
    found = suggest_terms(texts)
    # "tablet" stands on its own: it is in a fourth report.
    assert [(s.phrase, s.reports) for s in found] == [
        ("tablet", 4),
        ("footer colour looks odd on my tablet", 3),
    ]
