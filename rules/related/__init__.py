"""Related-issue index: find earlier open reports like a new one, and group them."""

from rules.related.index import IndexedDoc, RelatedIndex
from rules.related.scoring import Evidence, GroupDecision, Match, Method, decide_group

__all__ = [
    "Evidence",
    "GroupDecision",
    "IndexedDoc",
    "Match",
    "Method",
    "RelatedIndex",
    "decide_group",
]
