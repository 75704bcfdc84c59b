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
    {p}:top:{h}      string  cached copy of the best postings of term hash h (cache.py)
    {p}:topadd:{h}   string  postings added to that copy since it was written
    {p}:ver          hash    term hash h -> version of the best postings of h
    {p}:epoch        string  counter the versions are drawn from (never repeats)

A report's hash and its fields' formats are documents.py's, the posting lists
postings.py's, their cached copies cache.py's, the groups groups.py's (RelatedIndex takes
its group methods from there); this module indexes and queries.

A query costs four round trips whatever the index size: the query terms' document
frequencies, their posting lists (best impact first, bounded), the candidates'
creation times (for the recency prior), and the fields of the k best. A fifth reads the
posting lists whose cached copies are missing or out of date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis
from redis.client import Pipeline

from integrations import logs
from rules.related.cache import CachedPostingLists
from rules.related.documents import (
    IndexedDoc,
    doc_fields,
    normalize_signature,
    stored_doc,
    timestamp,
    unpack_terms,
)
from rules.related.groups import Groups
from rules.related.postings import term_key, text
from rules.related.scoring import (
    HUB,
    JOIN_THRESHOLD,
    Averages,
    Evidence,
    FieldTerms,
    Match,
    Method,
    field_terms,
    idf,
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


_MATCH_FIELDS = ["created_at", "platform", "app_version", "sig", "title", "group"]


class RelatedIndex(Groups):
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
        self._postings = CachedPostingLists(redis, prefix, method.posting_limit)
        self._query_dfs: tuple[str, dict[str, int]] = ("", {})

    # ------------------------------------------------------------------ keys

    def _doc(self, doc_id: str) -> str:
        return f"{self.prefix}:doc:{doc_id}"

    def _sig(self, signature: str) -> str:
        return f"{self.prefix}:sig:{term_key(normalize_signature(signature))}"

    @property
    def _stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def _time(self) -> str:
        return f"{self.prefix}:time"

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
            and (cutoff is None or timestamp(d.created_at) >= cutoff)
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
                created = timestamp(doc.created_at)
                pipe.zadd(self._time, {doc_id: created})
                pipe.hset(self._doc(doc_id), mapping=doc_fields(doc, terms))
                if doc.crash_signature:
                    pipe.zadd(self._sig(doc.crash_signature), {doc_id: created})
            self._postings.add(pipe, postings)
            pipe.hincrby(self._stats, "n", len(indexed))
            pipe.hincrby(self._stats, "title_len", totals[0])
            pipe.hincrby(self._stats, "body_len", totals[1])

        emptied: list[str] = []
        self.redis.transaction(write, *(self._doc(d) for d in indexed))
        self._postings.drop_zero_dfs(emptied)
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
        self._postings.drop_zero_dfs(emptied)
        for doc_id in removed:
            logs.event(log, "related.removed", doc=doc_id)
        return len(removed)

    def _read_old(self, doc_ids: list[str]) -> dict[str, list[str]]:
        """The stored terms, signature, group and lengths of those of `doc_ids` indexed now."""
        pipe = self.redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.hmget(self._doc(doc_id), ["terms", "sig", "group", "title_len", "body_len"])
        return {
            doc_id: [text(v) for v in row]
            for doc_id, row in zip(doc_ids, pipe.execute(), strict=True)
            if row[0] is not None
        }

    def _unindex(self, pipe: Pipeline, old: dict[str, list[str]]) -> list[str]:
        """Queue the removal of documents' postings, stats, time and signature entries."""
        if not old:
            return []
        postings: dict[str, list[str]] = {}
        for doc_id, (terms, sig, _group, _tl, _bl) in old.items():
            for term in unpack_terms(terms).vocabulary:
                postings.setdefault(term, []).append(doc_id)
            if sig:
                pipe.zrem(self._sig(sig), doc_id)
        emptied = self._postings.remove(pipe, postings)
        pipe.zrem(self._time, *old)
        pipe.hincrby(self._stats, "n", -len(old))
        pipe.hincrby(self._stats, "title_len", -sum(int(o[3] or 0) for o in old.values()))
        pipe.hincrby(self._stats, "body_len", -sum(int(o[4] or 0) for o in old.values()))
        return emptied

    def _cutoff(self) -> float:
        assert self.window_days is not None
        return self.clock() - self.window_days * 86400.0

    def prune(self) -> int:
        """Remove every report older than the window; returns how many went."""
        if self.window_days is None:
            return 0
        expired = self.redis.zrangebyscore(self._time, "-inf", f"({self._cutoff()}")
        return self.remove_many([text(d) for d in expired]) if expired else 0

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
        # A report with no indexable words (emoji, one letter) asks for no frequencies;
        # it can still meet its crash signature below.
        pipe = self.redis.pipeline(transaction=False)
        if vocabulary:
            pipe.hmget(self._postings.df, [term_key(t) for t in vocabulary])
        pipe.hmget(self._stats, ["n", "title_len", "body_len"])
        *df_replies, stats = pipe.execute()
        df_values = df_replies[0] if df_replies else []
        dfs = [int(v) if v else 0 for v in df_values]
        # group_for's join features need these again: kept for this document's next call.
        self._query_dfs = (doc.id, dict(zip(vocabulary, dfs, strict=True)))
        n_docs = max(int(stats[0] or 0), 1)
        avg = Averages(int(stats[1] or 0) / n_docs, int(stats[2] or 0) / n_docs)
        idfs = {t: idf(n_docs, df) for t, df in zip(vocabulary, dfs, strict=True) if df}
        chosen = sorted(idfs, key=lambda t: weights[t] * idfs[t], reverse=True)
        if method.max_query_terms:
            chosen = chosen[: method.max_query_terms]

        # Round trip 2: the chosen terms' posting lists, best impact first.
        # Read with the lists: the same crash's reports cost no round trip of their own.
        same_crash = self._sig(doc.crash_signature) if doc.crash_signature else None
        fresh: dict[str, bytes] = {}
        if self.posting_cache:
            lists, same_sig = self._postings.read_cached(chosen, same_crash, k, fresh)
        else:
            lists, same_sig = self._postings.read(chosen, same_crash, k)
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
        scores = {text(member): score for member, score in best_raw}
        candidates = list(dict.fromkeys([*scores, *same_sig]))

        # Round trip 3: the candidates' creation times, in one command, for the prior;
        # and the cached copies of posting lists this query had to read in full.
        pipe = self.redis.pipeline(transaction=False)
        self._postings.fill(pipe, fresh)
        if candidates:
            pipe.zmscore(self._time, candidates)
        created = pipe.execute()[-1] if candidates else []
        now = timestamp(doc.created_at)
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
                and bool(text(row[3]))
                and normalize_signature(text(row[3]))
                != normalize_signature(doc.crash_signature or ""),
                same_platform=bool(doc.platform) and text(row[1]) == doc.platform,
                same_app_version=bool(doc.app_version) and text(row[2]) == doc.app_version,
            )
            similarity = scores.get(doc_id, 0.0) / self_score if self_score > 0 else 0.0
            matches.append(
                Match(
                    doc_id=doc_id,
                    score=round(score, 4),
                    similarity=round(min(similarity, 1.0), 4),
                    evidence=evidence,
                    title=text(row[4]),
                    group_id=text(row[5]) or None,
                )
            )
        return matches

    def explain(self, doc_id: str, k: int = 5) -> dict[str, Any]:
        """An indexed report's group and nearest related reports, with the evidence."""
        stored = stored_doc(self.redis, self._doc(doc_id), doc_id)
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
