"""The vectorized query scoring gives the scalar reference's exact floats, order and ties."""

from __future__ import annotations

import heapq
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.related.cache import pack_top, unpack_top
from rules.related.postings import score_pairs
from rules.related.scoring import (
    HUB,
    Averages,
    Posting,
    PostingList,
    accumulate,
    numeric_ids,
    pseudo_tf,
    saturate,
    score_lists,
    shared_terms,
    top_scored,
)

# A small pool of doc ids, so documents appear in several lists and scores tie: either
# all decimal (scored as integers, as ticket ids are) or not.
members = st.sampled_from([f"d{i}".encode() for i in range(30)])
decimal_members = st.sampled_from([str(i).encode() for i in (*range(12), 99, 100, 1000, 10**17)])
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


decimal_list = st.dictionaries(decimal_members, st.tuples(postings, st.floats(0, 1)), max_size=25)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(posting_list, weights), max_size=8), averages, members)
def test_vectorized_scores_equal_the_scalar_loop_exactly(
    terms: list[tuple[dict[bytes, tuple[Posting, float]], float]],
    avg: Averages,
    exclude: bytes,
) -> None:
    check_against_scalar_loop(terms, avg, exclude)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(decimal_list, weights), max_size=8), averages, decimal_members)
def test_integer_ids_score_as_the_scalar_loop_exactly(
    terms: list[tuple[dict[bytes, tuple[Posting, float]], float]],
    avg: Averages,
    exclude: bytes,
) -> None:
    check_against_scalar_loop(terms, avg, exclude)


def check_against_scalar_loop(
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
        postings = score_pairs(reply)
        assert list(postings.members) == [b"7", b"12"]
        assert postings.packed.tolist() == packed
        # Decimal ids travel as integers; the copy's version is stored negated, so code
        # that knows only the other layout never takes it for current.
        assert postings.ids is not None and postings.ids.tolist() == [7, 12]
        blob = pack_top(42, postings)
        assert blob is not None
        assert struct.unpack_from("<q", blob)[0] == -42
        copy = unpack_top(blob, 42)
        assert copy is not None and copy.ids is not None
        assert list(copy.members) == [b"7", b"12"]
        assert copy.packed.tolist() == packed
        assert unpack_top(blob, 43) is None
    other = score_pairs([[b"007", packed[0]], [b"report-1", packed[1]]])
    assert other.ids is None
    blob = pack_top(42, other)
    assert blob is not None
    copy = unpack_top(blob, 42)
    assert copy is not None and copy.ids is None
    assert list(copy.members) == [b"007", b"report-1"]
    assert len(score_pairs([])) == 0
    assert pack_top(1, PostingList([b"a\0b"], np.zeros(1))) is None


def test_only_canonical_decimals_are_read_as_numbers() -> None:
    assert numeric_ids([b"0", b"7", b"123456789012345678"]) is not None
    for odd in (b"007", b"-1", b"+1", b"1.0", b" 1", b"", b"1234567890123456789", b"\xd9\xa3"):
        assert numeric_ids([b"1", odd]) is None, odd
