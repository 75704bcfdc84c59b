"""Groups of related reports: which group a report joins, and which reports each group has.

Apart from index.py because a group is bookkeeping on top of the index's answers (one
sorted set per group, {p}:group:{g}, and the `group` field of a report's hash), not part
of indexing or scoring. RelatedIndex takes these methods from `Groups`, so callers
keep calling them on the index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis import Redis

from integrations import logs
from rules.related.postings import text
from rules.related.scoring import GroupDecision, Match, decide_group

if TYPE_CHECKING:
    from rules.related.index import IndexedDoc

# The index's logger, as before groups had a module of their own: related.* events keep
# the logger field operators' log filters already match.
log = logging.getLogger("rules.related.index")


class Groups:
    """The group methods of RelatedIndex, over the index's Redis, prefix and window."""

    redis: Redis
    prefix: str
    window_days: float | None
    join_threshold: float
    clock: Callable[[], float]

    if TYPE_CHECKING:
        # RelatedIndex's: the group of a report follows the reports it is related to.
        def query(self, doc: IndexedDoc, k: int = 10) -> list[Match]: ...

        def _doc(self, doc_id: str) -> str: ...

    def _group(self, group_id: str) -> str:
        return f"{self.prefix}:group:{group_id}"

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
        return [text(m) for m in self.redis.zrange(self._group(group_id), 0, -1)]

    def group_size(self, group_id: str) -> int:
        """How many reports a group has."""
        return int(self.redis.zcard(self._group(group_id)))
