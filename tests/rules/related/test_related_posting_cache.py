"""The posting cache: queries read cached best postings and answer exactly as without them."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

from redis import Redis

from rules.related.cache import ADDITIONS_MERGED, unpack_top
from rules.related.index import IndexedDoc, RelatedIndex
from rules.related.postings import term_key
from rules.related.scoring import HUB, Match

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WORDS = [
    "export",
    "csv",
    "crash",
    "login",
    "sso",
    "dark",
    "mode",
    "sidebar",
    "invoice",
    "print",
    "dialog",
    "sync",
    "upload",
    "photo",
    "camera",
    "video",
    "timeout",
    "slow",
    "battery",
    "notification",
    "push",
    "offline",
    "cache",
    "token",
    "expired",
]
# Three postings a term: most lists are longer, so adds and removals land both inside
# and outside the cached best postings.
SMALL = dataclasses.replace(HUB, posting_limit=3)


class Clock:
    """A settable clock, so window expiry is exercised without waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


def report(rng: random.Random, doc_id: str, day: float) -> IndexedDoc:
    sig = rng.choice([None, None, "NPE at Player.onResume", "OOM at Cache.put"])
    return IndexedDoc(
        doc_id,
        T0 + timedelta(days=day),
        " ".join(rng.choices(WORDS, k=rng.randint(1, 5))),
        " ".join(rng.choices(WORDS, k=rng.randint(0, 30))),
        crash_signature=sig,
        platform=rng.choice(["ios", "android"]),
    )


def zrange_calls(redis: Redis) -> int:
    stats = redis.info("commandstats").get("cmdstat_zrange", {"calls": 0})
    return int(stats["calls"])


def answers(idx: RelatedIndex, queries: list[IndexedDoc]) -> list[list[Match]]:
    return [idx.query(q, k=5) for q in queries]


def test_cached_and_uncached_queries_agree_through_adds_removals_and_expiry(
    redis: Redis,
) -> None:
    rng = random.Random(8)
    clock = Clock(T0)
    kw: dict = {"prefix": "t:rel", "method": SMALL, "clock": clock, "window_days": 30}
    cached = RelatedIndex(redis, **kw)
    plain = RelatedIndex(redis, posting_cache=False, **kw)
    queries = [report(rng, f"q{i}", 40) for i in range(15)]
    compared = 0
    for step in range(25):
        clock.now = T0 + timedelta(days=step * 2)
        batch = [
            report(rng, str(rng.randrange(80)), step * 2 - rng.uniform(0, 40)) for _ in range(6)
        ]
        if step % 4 == 3:
            batch[0] = dataclasses.replace(batch[0], status="solved")
        cached.add_many(batch)
        if step % 5 == 4:
            cached.remove(str(rng.randrange(80)))
        # Twice: the first query of a term reads its list, the second its cached copy.
        for _ in range(2):
            expected = answers(plain, queries)
            assert answers(cached, queries) == expected
            compared += sum(map(len, expected))
    assert compared > 500  # the queries did find related reports to compare


def test_a_repeated_query_reads_no_sorted_set(redis: Redis) -> None:
    rng = random.Random(3)
    idx = RelatedIndex(redis, prefix="t:rel", method=SMALL, window_days=None)
    idx.add_many([report(rng, str(i), 0) for i in range(40)])
    query = report(rng, "q", 1)
    first = idx.query(query)
    calls = zrange_calls(redis)
    assert idx.query(query) == first != []
    assert zrange_calls(redis) == calls
    plain = RelatedIndex(redis, prefix="t:rel", method=SMALL, posting_cache=False)
    # A report that enters a term's best postings is written into its cached copies: the
    # next query finds it without reading any sorted set.
    strong = dataclasses.replace(query, id="new", title=" ".join([query.title] * 3))
    idx.add(strong)
    calls = zrange_calls(redis)
    again = idx.query(query)
    assert again[0].doc_id == "new"
    assert zrange_calls(redis) == calls
    assert again == plain.query(query)
    # Removing it drops those copies (what moves up into the best postings is not in them).
    idx.remove("new")
    calls = zrange_calls(redis)
    after = idx.query(query)
    assert "new" not in [m.doc_id for m in after]
    assert zrange_calls(redis) > calls
    assert after == plain.query(query)


def test_an_index_built_before_the_cache_answers_the_same(redis: Redis) -> None:
    rng = random.Random(5)
    idx = RelatedIndex(redis, prefix="t:rel", method=SMALL, window_days=None)
    idx.add_many([report(rng, str(i), 0) for i in range(40)])
    queries = [report(rng, f"q{i}", 1) for i in range(10)]
    answers(idx, queries)
    # Versions and copies gone, as on an index written by the code before the cache.
    redis.delete("t:rel:ver", *redis.keys("t:rel:top:*"))
    plain = RelatedIndex(redis, prefix="t:rel", method=SMALL, posting_cache=False)
    assert answers(idx, queries) == answers(plain, queries)
    idx.add_many([report(rng, str(i), 0) for i in range(40, 60)])
    assert answers(idx, queries) == answers(plain, queries)


def current_copies_match_sorted_sets(redis: Redis, prefix: str, limit: int) -> tuple[int, int]:
    """Every cached copy still of its term's version, with its additions, holds exactly
    ZRANGE's best postings. Returns how many were checked, and how many had additions."""
    checked = with_additions = 0
    for key in redis.scan_iter(f"{prefix}:top:*"):
        h = key.decode().rsplit(":", 1)[1]
        version, blob = redis.hget(f"{prefix}:ver", h), redis.get(key)
        additions = redis.get(f"{prefix}:topadd:{h}")
        assert isinstance(blob, bytes)
        assert additions is None or isinstance(additions, bytes)
        copy = unpack_top(blob, int(version), additions, limit) if version is not None else None
        if copy is None:
            continue
        best = redis.zrange(f"{prefix}:post:{h}", 0, limit - 1, desc=True, withscores=True)
        assert [(m, float(s)) for m, s in zip(copy.members, copy.packed, strict=True)] == best
        checked += 1
        with_additions += bool(additions)
    return checked, with_additions


def test_copies_take_each_added_report_at_its_rank_ties_included(redis: Redis) -> None:
    """The worker's pattern: query with a report, then index it, one at a time."""
    rng = random.Random(11)
    kw: dict = {"prefix": "t:rel", "method": SMALL, "window_days": None}
    idx = RelatedIndex(redis, **kw)
    plain = RelatedIndex(redis, posting_cache=False, **kw)
    idx.add_many([report(rng, str(i), 0) for i in range(30)])
    queries = [report(rng, f"q{i}", 1) for i in range(8)]
    answers(idx, queries)  # fill the copies
    checked = with_additions = 0
    for step in range(60):
        doc = report(rng, str(100 + step), 1)
        if step % 3 == 0:
            # The same words as an earlier report: equal scores, ordered by member
            # (ids of different lengths: "9" sorts after "10").
            twin = queries[step % len(queries)]
            doc = dataclasses.replace(twin, id=str(rng.choice([7, 9, 10, 1000 + step])))
        idx.query(doc, k=5)
        idx.add(doc)
        counts = current_copies_match_sorted_sets(redis, "t:rel", SMALL.posting_limit)
        checked, with_additions = checked + counts[0], with_additions + counts[1]
        assert answers(idx, queries) == answers(plain, queries)
    # Copies stayed current through the adds by way of their additions.
    assert with_additions > 100
    assert checked > 300


def test_a_copy_with_many_additions_is_written_back_merged(redis: Redis) -> None:
    idx = RelatedIndex(redis, prefix="t:rel", window_days=None)
    plain = RelatedIndex(redis, prefix="t:rel", window_days=None, posting_cache=False)
    rng = random.Random(2)
    idx.add_many([report(rng, str(i), 0) for i in range(20)])
    query = IndexedDoc("q", T0, "export crash", "the export crashes")
    idx.query(query)
    key = f"t:rel:topadd:{term_key('export')}"
    for i in range(60):
        idx.add(IndexedDoc(f"n{i}", T0, "export", "export fails again"))
    assert len(redis.get(key) or b"") >= ADDITIONS_MERGED
    assert idx.query(query) == plain.query(query)
    # That query merged the additions into the copy: none are left, and it is current.
    assert redis.get(key) is None
    expected = plain.query(query)
    calls = zrange_calls(redis)
    assert idx.query(query) == expected
    assert zrange_calls(redis) == calls
