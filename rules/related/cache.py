"""Cached copies of each term's best postings, which queries read instead of the sorted sets.

Apart from postings.py because the cache is a protocol of its own (Lua run inside the
index's transactions, a packed format, versions) on top of the posting lists.
CachedPostingLists is PostingLists with it: its writes keep the terms' versions and
copies right, read_cached reads the lists from the copies that are current, and fill
stores the copies a query read. The layout is in index.py.

A query reads each term's best `posting_limit` postings. Reading them as one packed
string (MGET, decoded by numpy) costs a fraction of ZRANGE WITHSCORES. A write that
changes a term's best postings (a posting added or removed within the limit's ranks)
gives the term a new version from {p}:epoch, in the same transaction. A cached copy
carries the version it was read at and is used only while it is current, so a query
reads exactly what ZRANGE would. Postings that enter the best postings of a term whose
copy is current are appended, in the same transaction, to the copy's additions
({p}:topadd:{h}, each tagged with the version it made), and the query merges them in
Redis's order: a worker that indexes each report after querying with it keeps its copies
current, at the cost of a short append in Redis instead of a rewrite of the copy. A
removal within the best postings drops the copy (what moves up is not in it). A query
that finds many additions writes the merged copy back. Every writer of one prefix must
use the same posting_limit (they share a method anyway: same tokenizer, same postings).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from redis.client import Pipeline

from rules.related.postings import PostingLists, _collector_paused, score_pairs, term_key, text
from rules.related.scoring import PostingList, numeric_ids

# Run in the write's transaction, before its ZREMs and after its ZADDs. KEYS: ver, epoch.
# ARGV: prefix, limit, then per term: hash, count, members. A term whose best postings
# change gets a new version. Posting keys are built here from the prefix: the index runs
# on one Redis, never a cluster.
_TOUCH = """
local prefix, limit = ARGV[1], tonumber(ARGV[2])
local i = 3
while i <= #ARGV do
  local h, count = ARGV[i], tonumber(ARGV[i + 1])
  local post = prefix .. ':post:' .. h
  for j = i + 2, i + 1 + count do
    local rank = redis.call('ZREVRANK', post, ARGV[j])
    if rank and rank < limit then
      redis.call('HSET', KEYS[1], h, redis.call('INCR', KEYS[2]))
      redis.call('DEL', prefix .. ':top:' .. h, prefix .. ':topadd:' .. h)
      break
    end
  end
  i = i + 2 + count
end
"""

# Run in the write's transaction, after its ZADDs. KEYS: ver, epoch. ARGV: prefix, limit,
# ttl, the most bytes of additions a copy keeps, then per term: hash, count, then the
# members added with their scores. A term whose best postings they enter gets a new
# version. If its cached copy is current (its additions' last version, or else its own,
# is the version before), each entering posting is appended to the additions as the
# member then <dHq (score, member length, the new version): read from the end, the last
# 8 bytes are the version the copy is current at. Else the copy is dropped. A negative
# count only drops (a bulk load: not worth appending).
_ADDED = """
local prefix, limit, ttl, most = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local i = 5
while i <= #ARGV do
  local h, count = ARGV[i], tonumber(ARGV[i + 1])
  local post = prefix .. ':post:' .. h
  local entering = {}
  for j = i + 2, i + 2 * math.abs(count), 2 do
    local rank = redis.call('ZREVRANK', post, ARGV[j])
    if rank and rank < limit then
      entering[#entering + 1] = j
    end
  end
  if #entering > 0 then
    local top, adds = prefix .. ':top:' .. h, prefix .. ':topadd:' .. h
    local old = tonumber(redis.call('HGET', KEYS[1], h))
    local version = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[1], h, version)
    local at = redis.call('GETRANGE', adds, -8, -1)
    if at == '' then
      at = redis.call('GETRANGE', top, 0, 7)
    end
    -- A copy of decimal ids stores its version negated (pack_top).
    local current = count > 0 and old ~= nil and string.len(at) == 8
      and math.abs(struct.unpack('<i8', at)) == old
    local records = {}
    for _, j in ipairs(entering) do
      local member, score = ARGV[j], tonumber(ARGV[j + 1])
      if not current or string.find(member, '\\0', 1, true) then
        current = false
        break
      end
      records[#records + 1] = member .. struct.pack('<dHi8', score, string.len(member), version)
    end
    local length = current and redis.call('APPEND', adds, table.concat(records))
    if length and length <= most then
      if redis.call('TTL', adds) < 0 then
        redis.call('EXPIRE', adds, ttl)
      end
    else
      redis.call('DEL', top, adds)
    end
  end
  i = i + 2 + 2 * math.abs(count)
end
"""

# Write the copies a query read in full, each with its additions cleared, atomically
# (an addition appended since the read carries a later version: the copy is not used).
# KEYS: per term, copy then additions. ARGV: ttl, then the copies.
_FILL = """
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[(i + 1) / 2 + 1], 'EX', ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
"""

# A term whose batch adds more postings than this drops its cached copy instead of
# appending to its additions (a bulk load or backfill; workers add one at a time).
MAX_INSERTED = 16
# A query that finds this many bytes of additions on a copy (some 40 postings) writes the
# merged copy back; a writer drops a copy whose additions reach four times as many.
ADDITIONS_MERGED = 1024

# The current versions of terms, giving one to a term that has none yet (an index built
# before the cache). KEYS: ver, epoch. ARGV: term hashes.
_VERSIONS = """
local out = {}
for i, h in ipairs(ARGV) do
  local v = redis.call('HGET', KEYS[1], h)
  if not v then
    v = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[1], h, v)
  end
  out[i] = tonumber(v)
end
return out
"""

# A cached copy expires when no query has wanted it for this long (memory is bounded by
# the vocabulary queries use, not the whole vocabulary).
TOP_TTL_S = 6 * 3600
_TOP_HEADER = struct.Struct("<qI")  # version, number of postings


def _by_score(entry: tuple[str, int]) -> tuple[int, str]:
    return entry[1], entry[0]


def pack_top(version: int, postings: PostingList) -> bytes | None:
    """A term's best postings as one string, or None if a member cannot be packed.

    Doc ids that are all decimal are packed as little-endian int64s, and the version as
    its negative: code that knows only the other layout sees a version that is never
    current, and reads the sorted set instead.
    """
    scores = postings.packed.astype("<f8", copy=False).tobytes()
    n = len(postings)
    if postings.ids is not None:
        ids = postings.ids.astype("<i8", copy=False).tobytes()
        return _TOP_HEADER.pack(-version, n) + scores + ids
    members = postings.members
    if any(b"\0" in m for m in members):
        return None
    return _TOP_HEADER.pack(version, n) + scores + b"\0".join(members)


_ADDITION = struct.Struct("<dHq")  # score, member length, version; after the member


def unpack_top(
    blob: bytes, version: int, additions: bytes | None = None, limit: int = 0
) -> PostingList | None:
    """The postings of a cached copy and its additions (cut to `limit`), or None if the
    copy is not of `version`."""
    stored, n = _TOP_HEADER.unpack_from(blob)
    numeric = stored < 0
    current = -stored if numeric else stored
    if additions:
        current = _ADDITION.unpack_from(additions, len(additions) - _ADDITION.size)[2]
    if current != version:
        return None
    start = _TOP_HEADER.size
    # Views on the blob, no copies: little-endian numbers on any machine.
    scores = np.frombuffer(blob, dtype="<f8", count=n, offset=start)
    if numeric:
        ids = np.frombuffer(blob, dtype="<i8", count=n, offset=start + 8 * n)
        postings = PostingList.numeric(ids.astype(np.int64, copy=False), scores)
    else:
        postings = PostingList(blob[start + 8 * n :].split(b"\0") if n else [], scores)
    if additions:
        return _merged(postings, _additions(additions), limit)
    return postings


def _additions(data: bytes) -> list[tuple[float, bytes]]:
    """The (score, member) pairs appended to a copy, in the order they were appended."""
    out = []
    end = len(data)
    while end > 0:
        score, length, _version = _ADDITION.unpack_from(data, end - _ADDITION.size)
        start = end - _ADDITION.size - length
        out.append((score, data[start : end - _ADDITION.size]))
        end = start
    out.reverse()
    return out


def _merged(base: PostingList, added: list[tuple[float, bytes]], limit: int) -> PostingList:
    """`base` with postings inserted where ZRANGE REV puts them (equal scores: member
    descending), cut to `limit`. None of them is in `base`: a removal drops the copy."""
    scores = base.packed.tolist()
    added_ids = numeric_ids([m for _, m in added]) if base.ids is not None else None
    keys: list[Any]
    if base.ids is not None and added_ids is not None:
        keys, new_keys, numeric = base.ids.tolist(), added_ids.tolist(), True
    else:
        keys, new_keys, numeric = list(base.members), [m for _, m in added], False

    def as_bytes(key: Any) -> bytes:
        return b"%d" % key if isinstance(key, int) else key

    for (score, _), key in zip(added, new_keys, strict=True):
        # Scores descend: find the first not above this one, then go past equal scores
        # whose ids sort after this one (as bytes, as Redis compares them).
        lo, hi = 0, len(scores)
        while lo < hi:
            mid = (lo + hi) // 2
            if scores[mid] > score:
                lo = mid + 1
            else:
                hi = mid
        while lo < len(scores) and scores[lo] == score and as_bytes(keys[lo]) > as_bytes(key):
            lo += 1
        keys.insert(lo, key)
        scores.insert(lo, score)
    del keys[limit:], scores[limit:]
    packed = np.array(scores, dtype=np.float64)
    if numeric:
        return PostingList.numeric(np.array(keys, dtype=np.int64), packed)
    return PostingList(keys, packed)


class CachedPostingLists(PostingLists):
    """Posting lists whose best postings are also kept as copies that queries can read."""

    def _top(self, term: str) -> str:
        return f"{self.prefix}:top:{term_key(term)}"

    def _topadd(self, term: str) -> str:
        return f"{self.prefix}:topadd:{term_key(term)}"

    @property
    def _epoch(self) -> str:
        return f"{self.prefix}:epoch"

    # ------------------------------------------------------------------ writing

    def add(self, pipe: Pipeline, postings: dict[str, dict[str, int]]) -> None:
        """Queue postings' writes (term -> member -> packed posting) and their copies'."""
        super().add(pipe, postings)
        # After the ZADDs: the script finds the new postings' ranks.
        self._added(pipe, postings)

    def remove(self, pipe: Pipeline, postings: dict[str, list[str]]) -> list[str]:
        """Queue the removal of postings (term -> members); returns the terms' hashes."""
        # Before the ZREMs: the script finds the ranks the postings had.
        self._touch(pipe, postings)
        return super().remove(pipe, postings)

    def _touch(self, pipe: Pipeline, members: dict[str, list[str]]) -> None:
        """Queue new versions for the terms whose best postings `members` are (or were) in."""
        limit = self.limit
        if not limit or not members:
            return
        args: list[str | int] = [self.prefix, limit]
        for term, ids in members.items():
            args += [term_key(term), len(ids), *ids]
        pipe.eval(_TOUCH, 2, self._ver, self._epoch, *args)

    def _added(self, pipe: Pipeline, postings: dict[str, dict[str, int]]) -> None:
        """Queue the cache's update for postings just added (term -> member -> score)."""
        limit = self.limit
        if not limit or not postings:
            return
        args: list[str | int] = [self.prefix, limit, TOP_TTL_S, 4 * ADDITIONS_MERGED]
        for term, members in postings.items():
            if len(members) > MAX_INSERTED:
                # Only the best new posting can tell whether the best postings change
                # (Redis orders equal scores by member, as max does here).
                members = dict([max(members.items(), key=_by_score)])
                args += [term_key(term), -1]
            else:
                args += [term_key(term), len(members)]
            for member, score in members.items():
                args += [member, score]
        pipe.eval(_ADDED, 2, self._ver, self._epoch, *args)

    # ------------------------------------------------------------------ reading

    def read_cached(
        self, chosen: list[str], same_crash: str | None, k: int, fresh: dict[str, bytes]
    ) -> tuple[list[PostingList], set[str]]:
        """The same as read, from the cached copies that are still current.

        Lists read in full, and copies with many additions, are packed into `fresh`
        (term -> copy) for the caller to store (`fill`).
        """
        if not chosen:
            return self.read(chosen, same_crash, k)
        hashes = [term_key(t) for t in chosen]
        limit = self.limit
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self._ver, hashes)
        pipe.mget([self._top(t) for t in chosen] + [self._topadd(t) for t in chosen])
        if same_crash:
            pipe.zrevrange(same_crash, 0, k - 1)
        versions, copies, *rest = pipe.execute()
        same_sig = {text(d) for d in rest[0]} if same_crash else set()
        lists: list[PostingList | None] = []
        for term, version, blob, additions in zip(
            chosen, versions, copies[: len(chosen)], copies[len(chosen) :], strict=True
        ):
            if blob is None or version is None:
                lists.append(None)
                continue
            postings = unpack_top(blob, int(version), additions, limit)
            lists.append(postings)
            if postings is not None and additions and len(additions) >= ADDITIONS_MERGED:
                merged = pack_top(int(version), postings)
                if merged is not None:
                    fresh[term] = merged
        missed = [i for i, postings in enumerate(lists) if postings is None]
        if missed:
            # Versions and lists read in one transaction: each copy is exact for its version.
            end = self.limit - 1
            pipe = self.redis.pipeline(transaction=True)
            pipe.eval(_VERSIONS, 2, self._ver, self._epoch, *(hashes[i] for i in missed))
            for i in missed:
                pipe.execute_command("ZRANGE", self._post(chosen[i]), 0, end, "REV", "WITHSCORES")
            with _collector_paused():
                read_versions, *replies = pipe.execute()
                for i, version, reply in zip(missed, read_versions, replies, strict=True):
                    postings = score_pairs(reply)
                    lists[i] = postings
                    blob = pack_top(int(version), postings)
                    if blob is not None:
                        fresh[chosen[i]] = blob
                del replies, reply
        empty = PostingList.of({})
        return [empty if postings is None else postings for postings in lists], same_sig

    def fill(self, pipe: Pipeline, fresh: dict[str, bytes]) -> None:
        """Queue the writing of the copies a query packed (term -> copy)."""
        if fresh:
            keys = [k for term in fresh for k in (self._top(term), self._topadd(term))]
            pipe.eval(_FILL, len(keys), *keys, TOP_TTL_S, *fresh.values())
