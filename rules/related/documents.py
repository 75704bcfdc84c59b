"""A report as the related-issue index keeps it: IndexedDoc and its hash, {p}:doc:{id}.

Apart from index.py because the hash's fields have formats of their own (created_at in
seconds, the document's terms with their field counts) that add_many writes and explain
reads back: both sides are here, next to the type. The layout is in index.py, whose
pipelines also read single fields (a removal's stored terms, a match's title and group).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.typing import EncodableT, FieldT

from rules.related.postings import text
from rules.related.scoring import FieldTerms


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


def normalize_signature(signature: str) -> str:
    """Crash signatures compare case- and whitespace-insensitively."""
    return " ".join(signature.lower().split())


def timestamp(moment: datetime) -> float:
    """A moment in seconds since the epoch, a naive one taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _pack_terms(terms: FieldTerms) -> str:
    """A document's terms with their field counts, one `term tf_title tf_body` a line."""
    return "\n".join(f"{t} {terms.title[t]} {terms.body[t]}" for t in terms.vocabulary)


def unpack_terms(packed: str) -> FieldTerms:
    """The terms a document's hash keeps (its `terms` field), with their field counts."""
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


def doc_fields(doc: IndexedDoc, terms: FieldTerms) -> dict[FieldT, EncodableT]:
    """The fields add_many writes to a report's hash (`group` is join's: it stays)."""
    return {
        "title": doc.title[:500],
        "created_at": timestamp(doc.created_at),
        "status": doc.status,
        "platform": doc.platform or "",
        "app_version": doc.app_version or "",
        "sig": doc.crash_signature or "",
        "terms": _pack_terms(terms),
        "title_len": terms.title_len,
        "body_len": terms.body_len,
    }


def stored_doc(
    redis: Redis, key: str, doc_id: str
) -> tuple[IndexedDoc, FieldTerms, str | None] | None:
    """An indexed report's fields, terms and group (the hub keeps its terms, not its body)."""
    row = redis.hmget(
        key, ["created_at", "title", "sig", "platform", "app_version", "status", "terms", "group"]
    )
    if row[0] is None:
        return None
    doc = IndexedDoc(
        id=doc_id,
        created_at=datetime.fromtimestamp(float(row[0]), UTC),
        title=text(row[1]),
        body="",
        crash_signature=text(row[2]) or None,
        platform=text(row[3]) or None,
        app_version=text(row[4]) or None,
        status=text(row[5]),
    )
    return doc, unpack_terms(text(row[6])), text(row[7]) or None
