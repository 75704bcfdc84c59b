"""Groups of related reports: which group a report joins, and which reports each group has.

Apart from index.py because a group is bookkeeping on top of the index's answers (one
sorted set per group, {p}:group:{g}, and the `group` field of a report's hash), not part
of indexing or scoring. RelatedIndex takes these methods from `Groups`, so callers
keep calling them on the index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from redis import Redis

from integrations import logs
from rules.related.documents import timestamp, unpack_terms
from rules.related.joins import PairFeatures, pair_features
from rules.related.labels import Labels
from rules.related.postings import term_key, text
from rules.related.scoring import (
    Averages,
    FieldTerms,
    GroupDecision,
    Match,
    Method,
    decide_group,
    directed_similarity,
    field_terms,
    title_only,
)

if TYPE_CHECKING:
    from rules.related.index import IndexedDoc

# The index's logger, as before groups had a module of their own: related.* events keep
# the logger field operators' log filters already match.
log = logging.getLogger("rules.related.index")

# The join decision scores this many of the best candidates (the card shows three).
JOIN_CANDIDATES = 3


class Groups:
    """The group methods of RelatedIndex, over the index's Redis, prefix and window."""

    redis: Redis
    prefix: str
    window_days: float | None
    join_threshold: float
    clock: Callable[[], float]
    method: Method

    if TYPE_CHECKING:
        # RelatedIndex's: the group of a report follows the reports it is related to.
        def query(self, doc: IndexedDoc, k: int = 10) -> list[Match]: ...

        def _doc(self, doc_id: str) -> str: ...

        @property
        def _stats(self) -> str: ...

        _query_dfs: tuple[str, dict[str, int]]

    def _group(self, group_id: str) -> str:
        return f"{self.prefix}:group:{group_id}"

    def group_for(self, doc: IndexedDoc, k: int = 10) -> GroupDecision:
        """Decide whether `doc` joins the group of a related report or starts its own.

        Its candidates (best first, never ones people rejected) are in the decision: what
        is not joined is suggested from them.
        """
        rejected = Labels(self.redis, self.prefix).rejected_with(doc.id)
        matches = [m for m in self.query(doc, k + len(rejected)) if m.doc_id not in rejected][:k]
        features, n_docs = self.pair_features(doc, matches[:JOIN_CANDIDATES])
        return decide_group(
            doc.id,
            matches,
            self.join_threshold,
            features=features,
            n_docs=n_docs,
            rejected=rejected,
        )

    def pair_features(
        self, doc: IndexedDoc, matches: Sequence[Match]
    ) -> tuple[dict[str, PairFeatures], int]:
        """The join features of `doc` with each of `matches`, and the index's size.

        Two round trips: the candidates' stored terms and creation times, then the
        document frequencies of every term of the pair (one HMGET).
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self._stats, ["n", "title_len", "body_len"])
        for m in matches:
            pipe.hmget(self._doc(m.doc_id), ["terms", "created_at"])
        stats, *rows = pipe.execute()
        n_docs = int(stats[0] or 0)
        count = max(n_docs, 1)
        avg = Averages(int(stats[1] or 0) / count, int(stats[2] or 0) / count)
        mine = field_terms(self.method, doc.title, doc.body)
        theirs: dict[str, tuple[FieldTerms, float]] = {}
        for m, (packed, created) in zip(matches, rows, strict=True):
            if packed is not None and created is not None:
                theirs[m.doc_id] = (unpack_terms(text(packed)), float(created))
        vocabulary = set(mine.vocabulary)
        for terms, _ in theirs.values():
            vocabulary |= terms.vocabulary
        # The query just read its own terms' frequencies: only the others are asked for.
        known_for, known = self._query_dfs
        dfs = {t: df for t, df in known.items() if df} if known_for == doc.id else {}
        ordered = sorted(vocabulary - known.keys() if known_for == doc.id else vocabulary)
        if ordered:
            values = self.redis.hmget(f"{self.prefix}:df", [term_key(t) for t in ordered])
            dfs.update({t: int(v) for t, v in zip(ordered, values, strict=True) if v})
        now = timestamp(doc.created_at)
        by_id = {m.doc_id: m for m in matches}
        my_title = title_only(mine)
        out = {}
        for doc_id, (terms, created) in theirs.items():
            m = by_id[doc_id]
            out[doc_id] = pair_features(
                similarity=directed_similarity(
                    self.method, mine, terms, dfs, n_docs, avg, unseen=True
                ),
                reverse_similarity=directed_similarity(self.method, terms, mine, dfs, n_docs, avg),
                title_similarity=directed_similarity(
                    self.method, my_title, title_only(terms), dfs, n_docs, avg
                ),
                title_reverse_similarity=directed_similarity(
                    self.method, title_only(terms), my_title, dfs, n_docs, avg
                ),
                query_terms=mine.vocabulary,
                query_title=set(mine.title),
                candidate_terms=terms.vocabulary,
                candidate_title=set(terms.title),
                dfs=dfs,
                n_docs=n_docs,
                gap_days=abs(now - created) / 86400.0,
                same_platform=m.evidence.same_platform,
                same_app_version=m.evidence.same_app_version,
            )
        return out, n_docs

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

    def move(self, doc_id: str, from_group: str, to_group: str) -> int:
        """People's correction: `doc_id` leaves one group for another; returns the new size."""
        pipe = self.redis.pipeline()
        pipe.zrem(self._group(from_group), doc_id)
        pipe.execute()
        size = self.join(doc_id, to_group)
        logs.event(log, "related.moved", doc=doc_id, group=to_group, left=from_group)
        return size

    def group_members(self, group_id: str) -> list[str]:
        """A group's reports, in the order they joined."""
        return [text(m) for m in self.redis.zrange(self._group(group_id), 0, -1)]

    def group_size(self, group_id: str) -> int:
        """How many reports a group has."""
        return int(self.redis.zcard(self._group(group_id)))
