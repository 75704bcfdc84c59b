"""The fast engine (closures, rule index, one-pass taxonomy) decides as the plain walk does."""

from __future__ import annotations

import random

import pytest

from bench.rules_bench import Straightforward, make_reports, make_rules, make_taxonomy, same
from rules.engine import evaluate
from rules.loader import parse_rules


def synthetic_words(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    found: set[str] = set()
    while len(found) < n:
        found.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_engine_agrees_with_the_straightforward_evaluation(seed: int) -> None:
    rng = random.Random(seed)
    vocab = synthetic_words(rng, 300)
    texts = []
    for _ in range(60):
        chosen = [rng.choice(vocab) for _ in range(rng.randint(20, 120))]
        # Punctuation and case the way people write.
        text = " ".join(w.capitalize() if rng.random() < 0.1 else w for w in chosen)
        texts.append(text.replace(" ", ", ", 3) + ".\nDetails follow")
    taxonomy = make_taxonomy(rng, vocab, 80)
    ruleset = parse_rules(make_rules(rng, taxonomy, vocab, 200), "generated.yml")
    naive = Straightforward(ruleset)
    decisions = [(evaluate(r, ruleset), naive.decide(r)) for r in make_reports(rng, texts)]
    assert all(same(hub, plain) for hub, plain in decisions)
    # The generated rules are not vacuous: they route, chain and tag.
    assert sum(len(hub.matched_rules) for hub, _ in decisions) > len(decisions)
    assert any(hub.group not in (None, "Support") for hub, _ in decisions)
    assert any(change.cause.by == "taxonomy" for hub, _ in decisions for change in hub.tag_changes)
