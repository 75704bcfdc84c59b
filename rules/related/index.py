"""The related-issue index in Redis: shared by every worker, bounded in time, fast to query.

Redis layout under `prefix` (default `hub:related`):

    {p}:doc:{id}     hash    title, created_at, platform, app_version, sig, status,
                             group, terms (the document's terms, to remove its postings)
    {p}:post:{h}     zset    posting list of term hash h: doc id -> packed posting
                             (impact, field tfs, field lengths; see scoring.Posting)
    {p}:stats        hash    n, title_len, body_len (sums, for average field lengths)
    {p}:df           hash    term hash h -> document frequency (= ZCARD of {p}:post:{h})
    {p}:time         zset    doc id -> created_at (window expiry, recency)
    {p}:sig:{h}      zset    doc id -> created_at, per crash signature hash
    {p}:group:{g}    zset    doc id -> joined at: the reports of group g (count = ZCARD)
    {p}:top:{h}      string  cached copy of the best postings of term hash h (see below)
    {p}:topadd:{h}   string  postings added to that copy since it was written
    {p}:ver          hash    term hash h -> version of the best postings of h
    {p}:epoch        string  counter the versions are drawn from (never repeats)

The posting cache: a query reads each term's best `posting_limit` postings. Reading them
as one packed string (MGET, decoded by numpy) costs a fraction of ZRANGE WITHSCORES.
A write that changes a term's best postings (a posting added or removed within the limit's
ranks) gives the term a new version from {p}:epoch, in the same transaction. A
cached copy carries the version it was read at and is used only while it is current, so
a query reads exactly what ZRANGE would. Postings that enter the best postings of a term
whose copy is current are appended, in the same transaction, to the copy's additions
({p}:topadd:{h}, each tagged with the version it made), and the query merges them in
Redis's order: a worker that indexes each report after querying with it keeps its copies
current, at the cost of a short append in Redis instead of a rewrite of the copy. A
removal within the best postings drops the copy (what moves up is not in it). A query
that finds many additions writes the merged copy back. Every writer of one prefix must
use the same posting_limit (they share a method anyway: same tokenizer, same postings).

A query costs four round trips whatever the index size: the query terms' document
frequencies, their posting lists (best impact first, bounded), the candidates'
creation times (for the recency prior), and the fields of the k best. A fifth reads the
posting lists whose cached copies are missing or out of date.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from redis import Redis
from redis.client import Pipeline

from integrations import logs
from rules.related.scoring import (
    HUB,
    JOIN_THRESHOLD,
    Averages,
    Evidence,
    FieldTerms,
    GroupDecision,
    Match,
    Method,
    PostingList,
    decide_group,
    field_terms,
    idf,
    numeric_ids,
    postings_of,
    pseudo_tf,
    query_weights,
    recency,
    saturate,
    score_lists,
    shared_terms,
    top_scored,
)

log = logging.getLogger(__name__)

CLOSED_STATUSES = frozenset({"solved", "closed"})
# Bounds that keep one query's work small on any index size.
MAX_DISTINCT_QUERY_TERMS = 400
MAX_CANDIDATES = 200
SHARED_TERMS_SHOWN = 8


@dataclass(frozen=True)
class IndexedDoc:
    """A report or ticket as the related-issue index sees it."""

    id: str
    created_at: datetime
    title: str
    body: str
    crash_signature: str | None = None
    platform: str | None = None
    app_version: str | None = None
    status: str = "new"


def term_key(term: str) -> str:
    """A short stable hash of a term: key names stay bounded whatever the identifier."""
    return hashlib.blake2b(term.encode(), digest_size=6).hexdigest()


def normalize_signature(signature: str) -> str:
    """Crash signatures compare case- and whitespace-insensitively."""
    return " ".join(signature.lower().split())


def _ts(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


_MATCH_FIELDS = ["created_at", "platform", "app_version", "sig", "title", "group"]


_DROP_ZERO_DFS = """
for _, field in ipairs(ARGV) do
  local n = tonumber(redis.call('HGET', KEYS[1], field))
  if n ~= nil and n <= 0 then
    redis.call('HDEL', KEYS[1], field)
    redis.call('HDEL', KEYS[2], field)
  end
end
"""

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
    -- A copy of decimal ids stores its version negated (_pack_top).
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


def _pack_top(version: int, postings: PostingList) -> bytes | None:
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


def _unpack_top(
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

    def text(key: Any) -> bytes:
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
        while lo < len(scores) and scores[lo] == score and text(keys[lo]) > text(key):
            lo += 1
        keys.insert(lo, key)
        scores.insert(lo, score)
    del keys[limit:], scores[limit:]
    packed = np.array(scores, dtype=np.float64)
    if numeric:
        return PostingList.numeric(np.array(keys, dtype=np.int64), packed)
    return PostingList(keys, packed)


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


def _score_pairs(reply: list[Any]) -> PostingList:
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


def _pack_terms(terms: FieldTerms) -> str:
    """A document's terms with their field counts, one `term tf_title tf_body` a line."""
    return "\n".join(f"{t} {terms.title[t]} {terms.body[t]}" for t in terms.vocabulary)


def _unpack_terms(packed: str) -> FieldTerms:
    title: Counter[str] = Counter()
    body: Counter[str] = Counter()
    for line in packed.split("\n"):
        if line:
            term, tt, tb = line.rsplit(" ", 2)
            if int(tt):
                title[term] = int(tt)
            if int(tb):
                body[term] = int(tb)
    return FieldTerms(title, body, title.total(), body.total())


class RelatedIndex:
    """Related open reports, kept in Redis so every worker sees and updates the same index."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "hub:related",
        window_days: float | None = 90,
        method: Method = HUB,
        join_threshold: float = JOIN_THRESHOLD,
        clock: Callable[[], float] = time.time,
        posting_cache: bool = True,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window_days = window_days
        self.method = method
        self.join_threshold = join_threshold
        self.clock = clock
        # Queries read cached best postings (writes keep versions whatever this says).
        self.posting_cache = posting_cache and method.posting_limit > 0

    # ------------------------------------------------------------------ keys

    def _doc(self, doc_id: str) -> str:
        return f"{self.prefix}:doc:{doc_id}"

    def _post(self, term: str) -> str:
        return f"{self.prefix}:post:{term_key(term)}"

    def _sig(self, signature: str) -> str:
        return f"{self.prefix}:sig:{term_key(normalize_signature(signature))}"

    def _group(self, group_id: str) -> str:
        return f"{self.prefix}:group:{group_id}"

    @property
    def _stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def _df(self) -> str:
        return f"{self.prefix}:df"

    @property
    def _time(self) -> str:
        return f"{self.prefix}:time"

    def _top(self, term: str) -> str:
        return f"{self.prefix}:top:{term_key(term)}"

    def _topadd(self, term: str) -> str:
        return f"{self.prefix}:topadd:{term_key(term)}"

    @property
    def _ver(self) -> str:
        return f"{self.prefix}:ver"

    @property
    def _epoch(self) -> str:
        return f"{self.prefix}:epoch"

    def _touch(self, pipe: Pipeline, members: dict[str, list[str]]) -> None:
        """Queue new versions for the terms whose best postings `members` are (or were) in."""
        limit = self.method.posting_limit
        if not limit or not members:
            return
        args: list[str | int] = [self.prefix, limit]
        for term, ids in members.items():
            args += [term_key(term), len(ids), *ids]
        pipe.eval(_TOUCH, 2, self._ver, self._epoch, *args)

    def _added(self, pipe: Pipeline, postings: dict[str, dict[str, int]]) -> None:
        """Queue the cache's update for postings just added (term -> member -> score)."""
        limit = self.method.posting_limit
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

    # ------------------------------------------------------------------ writing

    def add(self, doc: IndexedDoc) -> None:
        """Index a report (again, if it was): a solved or closed one is removed instead."""
        self.add_many([doc])

    def add_many(self, docs: Sequence[IndexedDoc]) -> None:
        """Index many reports in three round trips (a bulk load, a backfill, the bench)."""
        self.prune()
        closed = [d.id for d in docs if d.status.lower() in CLOSED_STATUSES]
        cutoff = self._cutoff() if self.window_days is not None else None
        latest = {
            d.id: d
            for d in docs
            if d.status.lower() not in CLOSED_STATUSES
            and (cutoff is None or _ts(d.created_at) >= cutoff)
        }
        if closed:
            self.remove_many(closed)
        if not latest:
            return
        avg = self._averages()
        # The impact that orders a posting list uses today's averages; queries rescore with
        # their own time's averages from the counts packed beside it (scoring.Posting).
        indexed = {d.id: field_terms(self.method, d.title, d.body) for d in latest.values()}

        def write(pipe: Pipeline) -> None:
            old = self._read_old(list(indexed))
            pipe.multi()
            emptied[:] = self._unindex(pipe, old)
            postings: dict[str, dict[str, int]] = {}
            totals = [0, 0]
            for doc_id, terms in indexed.items():
                for term, posting in postings_of(terms).items():
                    impact = saturate(pseudo_tf(self.method, posting, avg))
                    postings.setdefault(term, {})[doc_id] = posting.pack(impact)
                totals[0] += terms.title_len
                totals[1] += terms.body_len
                doc = latest[doc_id]
                created = _ts(doc.created_at)
                pipe.zadd(self._time, {doc_id: created})
                pipe.hset(
                    self._doc(doc_id),
                    mapping={
                        "title": doc.title[:500],
                        "created_at": created,
                        "status": doc.status,
                        "platform": doc.platform or "",
                        "app_version": doc.app_version or "",
                        "sig": doc.crash_signature or "",
                        "terms": _pack_terms(terms),
                        "title_len": terms.title_len,
                        "body_len": terms.body_len,
                    },
                )
                if doc.crash_signature:
                    pipe.zadd(self._sig(doc.crash_signature), {doc_id: created})
            # One ZADD per term for the whole batch, not one per term and document.
            for term, members in postings.items():
                pipe.zadd(self._post(term), members)
                pipe.hincrby(self._df, term_key(term), len(members))
            self._added(pipe, postings)
            pipe.hincrby(self._stats, "n", len(indexed))
            pipe.hincrby(self._stats, "title_len", totals[0])
            pipe.hincrby(self._stats, "body_len", totals[1])

        emptied: list[str] = []
        self.redis.transaction(write, *(self._doc(d) for d in indexed))
        self._drop_zero_dfs(emptied)
        for doc_id in indexed:
            logs.event(log, "related.indexed", doc=doc_id)

    def remove(self, doc_id: str) -> bool:
        """Drop a report from the index (solved, closed, or out of the window)."""
        return bool(self.remove_many([doc_id]))

    def remove_many(self, doc_ids: Sequence[str]) -> int:
        """Drop reports from the index; returns how many were in it."""
        ids = list(dict.fromkeys(doc_ids))

        removed: list[str] = []
        emptied: list[str] = []

        def drop(pipe: Pipeline) -> None:
            old = self._read_old(ids)
            pipe.multi()
            emptied[:] = self._unindex(pipe, old)
            for doc_id in old:
                pipe.delete(self._doc(doc_id))
            removed[:] = list(old)

        self.redis.transaction(drop, *(self._doc(d) for d in ids))
        self._drop_zero_dfs(emptied)
        for doc_id in removed:
            logs.event(log, "related.removed", doc=doc_id)
        return len(removed)

    def _drop_zero_dfs(self, term_keys: list[str]) -> None:
        """Delete df entries of terms no indexed report has any more (vocabulary churns)."""
        if term_keys:
            # Atomic in Lua, so a term indexed again meanwhile keeps its count.
            self.redis.eval(_DROP_ZERO_DFS, 2, self._df, self._ver, *term_keys)

    def _read_old(self, doc_ids: list[str]) -> dict[str, list[str]]:
        """The stored terms, signature, group and lengths of those of `doc_ids` indexed now."""
        pipe = self.redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.hmget(self._doc(doc_id), ["terms", "sig", "group", "title_len", "body_len"])
        return {
            doc_id: [_text(v) for v in row]
            for doc_id, row in zip(doc_ids, pipe.execute(), strict=True)
            if row[0] is not None
        }

    def _unindex(self, pipe: Pipeline, old: dict[str, list[str]]) -> list[str]:
        """Queue the removal of documents' postings, stats, time and signature entries."""
        if not old:
            return []
        postings: dict[str, list[str]] = {}
        for doc_id, (terms, sig, _group, _tl, _bl) in old.items():
            for term in _unpack_terms(terms).vocabulary:
                postings.setdefault(term, []).append(doc_id)
            if sig:
                pipe.zrem(self._sig(sig), doc_id)
        self._touch(pipe, postings)
        for term, members in postings.items():
            pipe.zrem(self._post(term), *members)
            pipe.hincrby(self._df, term_key(term), -len(members))
        pipe.zrem(self._time, *old)
        pipe.hincrby(self._stats, "n", -len(old))
        pipe.hincrby(self._stats, "title_len", -sum(int(o[3] or 0) for o in old.values()))
        pipe.hincrby(self._stats, "body_len", -sum(int(o[4] or 0) for o in old.values()))
        return [term_key(t) for t in postings]

    def _cutoff(self) -> float:
        assert self.window_days is not None
        return self.clock() - self.window_days * 86400.0

    def prune(self) -> int:
        """Remove every report older than the window; returns how many went."""
        if self.window_days is None:
            return 0
        expired = self.redis.zrangebyscore(self._time, "-inf", f"({self._cutoff()}")
        return self.remove_many([_text(d) for d in expired]) if expired else 0

    # ------------------------------------------------------------------ reading

    def _averages(self) -> Averages:
        n, t, b = self.redis.hmget(self._stats, ["n", "title_len", "body_len"])
        count = max(int(n or 0), 1)
        return Averages(int(t or 0) / count, int(b or 0) / count)

    def __len__(self) -> int:
        return int(self.redis.zcard(self._time))

    def query(self, doc: IndexedDoc, k: int = 10) -> list[Match]:
        """The k indexed reports most related to `doc` (never `doc` itself), best first."""
        return self._query(doc, field_terms(self.method, doc.title, doc.body), k)

    def _query(self, doc: IndexedDoc, terms: FieldTerms, k: int) -> list[Match]:
        method = self.method
        weights = query_weights(method, terms)
        if len(weights) > MAX_DISTINCT_QUERY_TERMS:
            top = sorted(weights, key=weights.__getitem__, reverse=True)
            weights = {t: weights[t] for t in top[:MAX_DISTINCT_QUERY_TERMS]}
        vocabulary = list(weights)

        # Round trip 1: document frequencies and collection statistics.
        # One HMGET on a df hash, not a ZCARD per term: per-command overhead dominates here.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self._df, [term_key(t) for t in vocabulary])
        pipe.hmget(self._stats, ["n", "title_len", "body_len"])
        df_values, stats = pipe.execute()
        dfs = [int(v) if v else 0 for v in df_values]
        n_docs = max(int(stats[0] or 0), 1)
        avg = Averages(int(stats[1] or 0) / n_docs, int(stats[2] or 0) / n_docs)
        idfs = {t: idf(n_docs, df) for t, df in zip(vocabulary, dfs, strict=True) if df}
        chosen = sorted(idfs, key=lambda t: weights[t] * idfs[t], reverse=True)
        if method.max_query_terms:
            chosen = chosen[: method.max_query_terms]

        # Round trip 2: the chosen terms' posting lists, best impact first.
        fresh: dict[str, bytes] = {}
        if self.posting_cache:
            lists, same_sig = self._cached_postings(chosen, doc, k, fresh)
        else:
            lists, same_sig = self._posting_lists(chosen, doc, k)
        same_sig.discard(doc.id)

        term_weights = [weights[t] * idfs[t] for t in chosen]
        scored = score_lists(method, term_weights, lists, avg)
        self_score = sum(
            weights[t] * idfs[t] * saturate(pseudo_tf(method, p, avg))
            for t, p in postings_of(terms).items()
            if t in chosen
        )

        # The prior at most doubles a score: only documents within half the k-th best text
        # score can reach the top k, plus every document with the same crash signature.
        best_raw = top_scored(scored, MAX_CANDIDATES, exclude=doc.id.encode())
        if method.recency_days is not None and len(best_raw) > k:
            floor = best_raw[k - 1][1] / 2.0
            best_raw = [(m, v) for m, v in best_raw if v >= floor]
        scores = {_text(member): score for member, score in best_raw}
        candidates = list(dict.fromkeys([*scores, *same_sig]))

        # Round trip 3: the candidates' creation times, in one command, for the prior;
        # and the cached copies of posting lists this query had to read in full.
        pipe = self.redis.pipeline(transaction=False)
        if fresh:
            keys = [k for term in fresh for k in (self._top(term), self._topadd(term))]
            pipe.eval(_FILL, len(keys), *keys, TOP_TTL_S, *fresh.values())
        if candidates:
            pipe.zmscore(self._time, candidates)
        created = pipe.execute()[-1] if candidates else []
        now = _ts(doc.created_at)
        ranked_ids = []
        for doc_id, when in zip(candidates, created, strict=True):
            if when is not None:  # else removed between the reads
                score = scores.get(doc_id, 0.0) * recency(method, now - float(when))
                ranked_ids.append((doc_id in same_sig, score, doc_id))
        # The same crash is stronger evidence than any wording: those come first.
        ranked_ids.sort(key=lambda r: (not r[0], -r[1], r[2]))
        # Round trip 4: the fields of the k best only.
        pipe = self.redis.pipeline(transaction=False)
        for _, _, doc_id in ranked_ids[:k]:
            pipe.hmget(self._doc(doc_id), _MATCH_FIELDS)
        best = [
            (sig, score, doc_id, row)
            for (sig, score, doc_id), row in zip(ranked_ids[:k], pipe.execute(), strict=True)
            if row[0] is not None
        ]
        shared = {
            member.decode(): [(chosen[t], c) for t, c in contributions]
            for member, contributions in shared_terms(
                scored, [r[2].encode() for r in best], term_weights
            ).items()
        }
        matches = []
        for sig_equal, score, doc_id, row in best:
            terms_of = sorted(shared.get(doc_id, []), key=lambda tc: tc[1], reverse=True)
            evidence = Evidence(
                shared_terms=tuple((t, round(c, 3)) for t, c in terms_of[:SHARED_TERMS_SHOWN]),
                signature_equal=sig_equal,
                signature_differs=bool(doc.crash_signature)
                and bool(_text(row[3]))
                and normalize_signature(_text(row[3]))
                != normalize_signature(doc.crash_signature or ""),
                same_platform=bool(doc.platform) and _text(row[1]) == doc.platform,
                same_app_version=bool(doc.app_version) and _text(row[2]) == doc.app_version,
            )
            similarity = scores.get(doc_id, 0.0) / self_score if self_score > 0 else 0.0
            matches.append(
                Match(
                    doc_id=doc_id,
                    score=round(score, 4),
                    similarity=round(min(similarity, 1.0), 4),
                    evidence=evidence,
                    title=_text(row[4]),
                    group_id=_text(row[5]) or None,
                )
            )
        return matches

    def _posting_lists(
        self, chosen: list[str], doc: IndexedDoc, k: int
    ) -> tuple[list[PostingList], set[str]]:
        """The chosen terms' posting lists, read from the sorted sets; the same-crash ids."""
        end = self.method.posting_limit - 1 if self.method.posting_limit else -1
        pipe = self.redis.pipeline(transaction=False)
        for term in chosen:
            # Raw ZRANGE: redis-py's WITHSCORES callback re-encodes every score as text and
            # parses it back, which costs more than the whole scoring loop.
            pipe.execute_command("ZRANGE", self._post(term), 0, end, "REV", "WITHSCORES")
        if doc.crash_signature:
            pipe.zrevrange(self._sig(doc.crash_signature), 0, k - 1)
        with _collector_paused():
            replies = pipe.execute()
            same_sig = {_text(d) for d in replies.pop()} if doc.crash_signature else set()
            lists = [_score_pairs(reply) for reply in replies]
            del replies
        return lists, same_sig

    def _cached_postings(
        self, chosen: list[str], doc: IndexedDoc, k: int, fresh: dict[str, bytes]
    ) -> tuple[list[PostingList], set[str]]:
        """The same as _posting_lists, from the cached copies that are still current.

        Lists read in full, and copies with many additions, are packed into `fresh`
        (term -> copy) for the caller to store.
        """
        if not chosen:
            return self._posting_lists(chosen, doc, k)
        hashes = [term_key(t) for t in chosen]
        limit = self.method.posting_limit
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self._ver, hashes)
        pipe.mget([self._top(t) for t in chosen] + [self._topadd(t) for t in chosen])
        if doc.crash_signature:
            pipe.zrevrange(self._sig(doc.crash_signature), 0, k - 1)
        versions, copies, *rest = pipe.execute()
        same_sig = {_text(d) for d in rest[0]} if doc.crash_signature else set()
        lists: list[PostingList | None] = []
        for term, version, blob, additions in zip(
            chosen, versions, copies[: len(chosen)], copies[len(chosen) :], strict=True
        ):
            if blob is None or version is None:
                lists.append(None)
                continue
            postings = _unpack_top(blob, int(version), additions, limit)
            lists.append(postings)
            if postings is not None and additions and len(additions) >= ADDITIONS_MERGED:
                merged = _pack_top(int(version), postings)
                if merged is not None:
                    fresh[term] = merged
        missed = [i for i, postings in enumerate(lists) if postings is None]
        if missed:
            # Versions and lists read in one transaction: each copy is exact for its version.
            end = self.method.posting_limit - 1
            pipe = self.redis.pipeline(transaction=True)
            pipe.eval(_VERSIONS, 2, self._ver, self._epoch, *(hashes[i] for i in missed))
            for i in missed:
                pipe.execute_command("ZRANGE", self._post(chosen[i]), 0, end, "REV", "WITHSCORES")
            with _collector_paused():
                read_versions, *replies = pipe.execute()
                for i, version, reply in zip(missed, read_versions, replies, strict=True):
                    postings = _score_pairs(reply)
                    lists[i] = postings
                    blob = _pack_top(int(version), postings)
                    if blob is not None:
                        fresh[chosen[i]] = blob
                del replies, reply
        empty = PostingList.of({})
        return [empty if postings is None else postings for postings in lists], same_sig

    def _stored(self, doc_id: str) -> tuple[IndexedDoc, FieldTerms, str | None] | None:
        """An indexed report's fields and terms (the hub keeps its terms, not its body)."""
        row = self.redis.hmget(
            self._doc(doc_id),
            ["created_at", "title", "sig", "platform", "app_version", "status", "terms", "group"],
        )
        if row[0] is None:
            return None
        doc = IndexedDoc(
            id=doc_id,
            created_at=datetime.fromtimestamp(float(row[0]), UTC),
            title=_text(row[1]),
            body="",
            crash_signature=_text(row[2]) or None,
            platform=_text(row[3]) or None,
            app_version=_text(row[4]) or None,
            status=_text(row[5]),
        )
        return doc, _unpack_terms(_text(row[6])), _text(row[7]) or None

    def explain(self, doc_id: str, k: int = 5) -> dict[str, Any]:
        """An indexed report's group and nearest related reports, with the evidence."""
        stored = self._stored(doc_id)
        if stored is None:
            raise KeyError(doc_id)
        doc, terms, group = stored
        return {
            "id": doc_id,
            "title": doc.title,
            "group": group,
            "group_size": self.group_size(group) if group else 0,
            "crash_signature": doc.crash_signature,
            "related": [
                {
                    "id": m.doc_id,
                    "title": m.title,
                    "score": m.score,
                    "similarity": m.similarity,
                    "group": m.group_id,
                    "shared_terms": dict(m.evidence.shared_terms),
                    "signature_equal": m.evidence.signature_equal,
                    "same_platform": m.evidence.same_platform,
                    "same_app_version": m.evidence.same_app_version,
                }
                for m in self._query(doc, terms, k)
            ],
        }

    # ------------------------------------------------------------------ groups

    def group_for(self, doc: IndexedDoc, k: int = 10) -> GroupDecision:
        """Decide whether `doc` joins the group of a related report or starts its own."""
        return decide_group(doc.id, self.query(doc, k), self.join_threshold)

    def join(self, doc_id: str, group_id: str) -> int:
        """Record `doc_id` as a member of `group_id`; returns the group's size."""
        now = self.clock()
        pipe = self.redis.pipeline()
        pipe.zadd(self._group(group_id), {doc_id: now}, nx=True)
        # Whether `doc_id` is indexed yet or not: add() keeps the field when it comes.
        pipe.hset(self._doc(doc_id), "group", group_id)
        if self.window_days is not None:
            # A group lives as long as its members can still be matched, plus one window.
            pipe.expire(self._group(group_id), math.ceil(2 * self.window_days * 86400))
        pipe.zcard(self._group(group_id))
        size: int = pipe.execute()[-1]
        logs.event(log, "related.joined", doc=doc_id, group=group_id, size=size)
        return size

    def assign(self, doc: IndexedDoc, decision: GroupDecision) -> int:
        """Apply a decision: the matched report (first member) and `doc` join the group."""
        if decision.match is not None and decision.match.group_id is None:
            self.join(decision.match.doc_id, decision.group_id)
        return self.join(doc.id, decision.group_id)

    def group_members(self, group_id: str) -> list[str]:
        """A group's reports, in the order they joined."""
        return [_text(m) for m in self.redis.zrange(self._group(group_id), 0, -1)]

    def group_size(self, group_id: str) -> int:
        """How many reports a group has."""
        return int(self.redis.zcard(self._group(group_id)))
