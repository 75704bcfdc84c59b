"""The vectorized query scoring gives the scalar reference's exact floats, order and ties."""

from __future__ import annotations

import heapq

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.related.index import _pack_top, _score_pairs, _unpack_top
from rules.related.scoring import (
    HUB,
    Averages,
    Posting,
    PostingList,
    accumulate,
    pseudo_tf,
    saturate,
    score_lists,
    shared_terms,
    top_scored,
)

# A small pool of doc ids, so documents appear in several lists and scores tie.
members = st.sampled_from([f"d{i}".encode() for i in range(30)])
postings = st.builds(
    Posting,
    st.integers(0, 70),
    st.integers(0, 1100),
    st.integers(0, 130),
    st.integers(0, 17000),
)
posting_list = st.dictionaries(members, st.tuples(postings, st.floats(0, 1)), max_size=25)
weights = st.floats(0.01, 50.0)
averages = st.builds(Averages, st.floats(0.0, 40.0), st.floats(0.0, 3000.0))


def _lists(raw: list[dict[bytes, tuple[Posting, float]]]) -> list[dict[bytes, float]]:
    return [{m: float(p.pack(impact)) for m, (p, impact) in lst.items()} for lst in raw]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(posting_list, weights), max_size=8), averages, members)
def test_vectorized_scores_equal_the_scalar_loop_exactly(
    terms: list[tuple[dict[bytes, tuple[Posting, float]], float]],
    avg: Averages,
    exclude: bytes,
) -> None:
    lists = _lists([lst for lst, _ in terms])
    ws = [w for _, w in terms]
    reference: dict[bytes, float] = {}
    for w, lst in zip(ws, lists, strict=True):
        accumulate(HUB, w, lst.items(), avg, reference)
    scored = score_lists(HUB, ws, [PostingList.of(lst) for lst in lists], avg)

    # Exact equality, not approx: Match.score and similarity must not move.
    assert {scored.members[i]: scored.totals[i] for i in scored.first.tolist()} == reference
    for n in (1, 3, 200):
        without = {m: s for m, s in reference.items() if m != exclude}
        expected = [(m, without[m]) for m in heapq.nlargest(n, without, key=without.__getitem__)]
        assert top_scored(scored, n, exclude) == expected

    wanted = list(reference)[:4]
    expected_shared: dict[bytes, list[tuple[int, float]]] = {}
    for t, (w, lst) in enumerate(zip(ws, lists, strict=True)):
        for m in wanted:
            if m in lst:
                c = w * saturate(pseudo_tf(HUB, Posting.unpack(lst[m]), avg))
                expected_shared.setdefault(m, []).append((t, c))
    assert shared_terms(scored, wanted, ws) == expected_shared


def test_ties_keep_the_order_documents_first_appear_in() -> None:
    same = float(Posting(1, 1, 5, 50).pack(0.5))
    lists = [PostingList.of({b"b": same, b"a": same}), PostingList.of({b"c": same, b"a": 0.0})]
    scored = score_lists(HUB, [1.0, 1.0], lists, Averages(5.0, 50.0))
    # Three equal scores (a's second posting adds 0.0), cut at 2: the first two to appear.
    assert [m for m, _ in top_scored(scored, 2)] == [b"b", b"a"]
    assert [m for m, _ in top_scored(scored, 3, exclude=b"b")] == [b"a", b"c"]


def test_no_postings_score_nothing() -> None:
    scored = score_lists(HUB, [], [], Averages(1.0, 1.0))
    assert top_scored(scored, 200) == []
    assert shared_terms(scored, [b"x"], []) == {}


def test_a_cached_copy_and_both_reply_shapes_decode_to_the_same_postings() -> None:
    packed = [float(Posting(3, 9, 7, 120).pack(0.8)), float(Posting(0, 2, 9, 3000).pack(0.1))]
    resp2 = [b"7", str(int(packed[0])).encode(), b"12", repr(packed[1]).encode()]
    resp3 = [[b"7", packed[0]], [b"12", packed[1]]]
    for reply in (resp2, resp3):
        postings = _score_pairs(reply)
        assert postings.members == [b"7", b"12"]
        assert postings.packed.tolist() == packed
        blob = _pack_top(42, postings)
        assert blob is not None
        copy = _unpack_top(blob, 42)
        assert copy is not None
        assert copy.members == postings.members
        assert copy.packed.tolist() == packed
        assert _unpack_top(blob, 43) is None
    assert len(_score_pairs([])) == 0
    assert _pack_top(1, PostingList([b"a\0b"], np.zeros(1))) is None
