"""Posting lists in Redis: one sorted set per term, and the terms' document frequencies.

Apart from index.py because the index uses them through a few calls: queue postings'
writes, queue their removal, drop emptied terms, read the lists. Their cached copies,
which a query reads instead while they are current, are cache.py's (CachedPostingLists
adds them to these calls). The layout is in index.py.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from redis import Redis
from redis.client import Pipeline

from rules.related.scoring import PostingList, numeric_ids


def term_key(term: str) -> str:
    """A short stable hash of a term: key names stay bounded whatever the identifier."""
    return hashlib.blake2b(term.encode(), digest_size=6).hexdigest()


def text(value: Any) -> str:
    """A value read from Redis as text (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


# Deletes the df (and version) of terms whose count fell to zero. KEYS: df, ver. ARGV:
# term hashes.
_DROP_ZERO_DFS = """
for _, field in ipairs(ARGV) do
  local n = tonumber(redis.call('HGET', KEYS[1], field))
  if n ~= nil and n <= 0 then
    redis.call('HDEL', KEYS[1], field)
    redis.call('HDEL', KEYS[2], field)
  end
end
"""


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while posting replies are read and converted.

    Over RESP3 (redis-py 8's default) ZRANGE WITHSCORES answers each posting as a
    [member, score] list of its own: some 10,000 containers a query, freed by reference
    counting as soon as they are turned into arrays. Counted as allocations, they set off
    the collector's full runs every few queries, which walk the whole heap, and those runs
    were the query's p99 (docs/related.md). They hold no cycles: pausing it finds nothing
    less, and the count falls back as they are freed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def score_pairs(reply: list[Any]) -> PostingList:
    """A raw ZRANGE WITHSCORES reply as a posting list, in its order, on RESP3 or RESP2."""
    if not reply:
        return PostingList.of({})
    if not isinstance(reply[0], list | tuple):
        # RESP2: member, score, member, score, ... with scores as text (parsed by float(),
        # as before: the same doubles).
        n = len(reply) // 2
        members = reply[0::2]
        scores = np.fromiter(map(float, reply[1::2]), np.float64, n)
        return PostingList(members, scores, numeric_ids(members))
    # RESP3 pairs already hold floats.
    pairs, values = zip(*reply, strict=True)
    members = list(pairs)
    return PostingList(members, np.array(values, dtype=np.float64), numeric_ids(members))


class PostingLists:
    """The posting lists of one index and their document frequencies."""

    def __init__(self, redis: Redis, prefix: str, limit: int) -> None:
        self.redis = redis
        self.prefix = prefix
        # The method's posting_limit: how many best postings a query reads (0 = all).
        self.limit = limit

    def _post(self, term: str) -> str:
        return f"{self.prefix}:post:{term_key(term)}"

    @property
    def df(self) -> str:
        """The key of the hash of document frequencies (term hash -> count)."""
        return f"{self.prefix}:df"

    @property
    def _ver(self) -> str:
        # The hash of the terms' versions (cache.py's): a term's goes when its df does.
        return f"{self.prefix}:ver"

    # ------------------------------------------------------------------ writing

    def add(self, pipe: Pipeline, postings: dict[str, dict[str, int]]) -> None:
        """Queue postings' writes (term -> member -> packed posting)."""
        # One ZADD per term for the whole batch, not one per term and document.
        for term, members in postings.items():
            pipe.zadd(self._post(term), members)
            pipe.hincrby(self.df, term_key(term), len(members))

    def remove(self, pipe: Pipeline, postings: dict[str, list[str]]) -> list[str]:
        """Queue the removal of postings (term -> members); returns the terms' hashes."""
        for term, members in postings.items():
            pipe.zrem(self._post(term), *members)
            pipe.hincrby(self.df, term_key(term), -len(members))
        return [term_key(t) for t in postings]

    def drop_zero_dfs(self, term_keys: list[str]) -> None:
        """Delete df entries of terms no indexed report has any more (vocabulary churns)."""
        if term_keys:
            # Atomic in Lua, so a term indexed again meanwhile keeps its count.
            self.redis.eval(_DROP_ZERO_DFS, 2, self.df, self._ver, *term_keys)

    # ------------------------------------------------------------------ reading

    def read(
        self, chosen: list[str], same_crash: str | None, k: int
    ) -> tuple[list[PostingList], set[str]]:
        """The chosen terms' posting lists, read from the sorted sets, and the k latest ids
        of the sorted set `same_crash` (one round trip for both)."""
        end = self.limit - 1 if self.limit else -1
        pipe = self.redis.pipeline(transaction=False)
        for term in chosen:
            # Raw ZRANGE: redis-py's WITHSCORES callback re-encodes every score as text and
            # parses it back, which costs more than the whole scoring loop.
            pipe.execute_command("ZRANGE", self._post(term), 0, end, "REV", "WITHSCORES")
        if same_crash:
            pipe.zrevrange(same_crash, 0, k - 1)
        with _collector_paused():
            replies = pipe.execute()
            same_sig = {text(d) for d in replies.pop()} if same_crash else set()
            lists = [score_pairs(reply) for reply in replies]
            del replies
        return lists, same_sig
