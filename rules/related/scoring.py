"""Pure scoring: BM25F term weights, packed postings, the recency prior, grouping decisions.

Nothing here does I/O; `index.py` reads Redis and hands these functions numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import numpy.typing as npt

from rules.related.joins import (
    JOIN_SCORE,
    MIN_INDEXED,
    MIN_SIMILARITY,
    PairFeatures,
    strong_text_evidence,
)
from rules.related.tokenize import plain_terms, terms

# BM25 constants from the literature (Robertson & Zaragoza 2009, "The Probabilistic
# Relevance Framework: BM25 and Beyond"): k1 = 1.2, b = 0.75. Not fitted to any data set.
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Method:
    """How documents become weighted terms and how a query is scored."""

    name: str
    tokenize: Callable[[str], Iterable[str]]
    # Field weights of BM25F; fielded=False is classic BM25 over "title twice + body".
    fielded: bool = True
    title_weight: float = 2.0
    body_weight: float = 1.0
    # Query term weights: "qtf" counts each occurrence in the query report (title
    # occurrences weighted like the title field); "unique" counts each term once.
    query_weights: str = "qtf"
    # Keep only the query's best terms by weight x idf (0 = all). Lucene's MoreLikeThis
    # uses 25 by default for the same job: a whole document as a query.
    max_query_terms: int = 25
    # Read at most this many postings per term, best impact first (0 = all).
    posting_limit: int = 400
    # Recency prior: the text score is multiplied by 1 + exp(-age / tau); tau is the
    # index window, so a report from today counts twice one from long before the window.
    recency_days: float | None = 90.0


HUB = Method(name="hub", tokenize=terms)
BM25 = Method(
    name="bm25",
    tokenize=plain_terms,
    fielded=False,
    query_weights="unique",
    max_query_terms=0,
    posting_limit=0,
    recency_days=None,
)
METHODS = {m.name: m for m in (HUB, BM25)}


@dataclass(frozen=True)
class FieldTerms:
    """A document's term counts per field and its field lengths."""

    title: Counter[str]
    body: Counter[str]
    title_len: int
    body_len: int

    @property
    def vocabulary(self) -> set[str]:
        """Every distinct term of the document."""
        return set(self.title) | set(self.body)


# A report without a title is summarized by its first line, cut as the Slack intake cuts
# a message's subject (integrations/slack/reports.py subject_line).
SUMMARY_CHARS = 80


def summary_line(body: str, limit: int = SUMMARY_CHARS) -> str:
    """The body's first non-empty line, on one line, cut on a word boundary."""
    for line in body.splitlines():
        if line.strip():
            words = line.split()
            out = ""
            for word in words:
                if out and len(out) + 1 + len(word) > limit:
                    break
                out = f"{out} {word}" if out else word[:limit]
            return out
    return ""


def field_terms(method: Method, title: str, body: str) -> FieldTerms:
    """Tokenize a report's title and body the way `method` indexes them.

    A blank title is the body's first line (summary_line): the join decision compares
    titles, and a report filed with its words in the body alone has one too.
    """
    t = list(method.tokenize(title if title.strip() else summary_line(body)))
    b = list(method.tokenize(body))
    if not method.fielded:
        # Classic BM25: one field, the title counted twice.
        b = t + t + b
        t = []
    return FieldTerms(Counter(t), Counter(b), len(t), len(b))


def title_only(doc: FieldTerms) -> FieldTerms:
    """The same document with its body left out (the join decision compares titles)."""
    return FieldTerms(doc.title, Counter(), doc.title_len, 0)


def query_weights(method: Method, doc: FieldTerms) -> dict[str, float]:
    """Each query term's weight before idf."""
    if method.query_weights == "unique":
        return dict.fromkeys(doc.vocabulary, 1.0)
    weights: dict[str, float] = {}
    for term, n in doc.title.items():
        weights[term] = weights.get(term, 0.0) + method.title_weight * n
    for term, n in doc.body.items():
        weights[term] = weights.get(term, 0.0) + method.body_weight * n
    return weights


def idf(n_docs: int, df: int) -> float:
    """BM25's idf with the +1 inside the log (never negative, as Lucene computes it)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class Averages:
    """Average field lengths of the indexed documents (BM25's length normalization)."""

    title: float
    body: float


def pseudo_tf(method: Method, posting: Posting, avg: Averages) -> float:
    """BM25F's combined term frequency: field tfs weighted and length-normalized per field."""
    tf = 0.0
    if posting.tf_title:
        norm = 1.0 - B + B * posting.title_len / max(avg.title, 1.0)
        tf += method.title_weight * posting.tf_title / norm
    if posting.tf_body:
        norm = 1.0 - B + B * posting.body_len / max(avg.body, 1.0)
        tf += method.body_weight * posting.tf_body / norm
    return tf


def saturate(tf: float) -> float:
    """BM25's tf saturation, scaled to [0, 1): tf / (k1 + tf)."""
    return tf / (K1 + tf)


# ------------------------------------------------------------------ packed postings
# A posting's sorted-set score holds everything the query needs about one document
# for one term, so a query reads each posting list once and no per-document lengths:
#   impact (8 bits, orders the list: best documents first)
#   tf in title (6), tf in body (10), title length (7), body length (14).
# 45 bits in all: a double holds integers exactly up to 2**53.
_BITS = (("tf_title", 6), ("tf_body", 10), ("title_len", 7), ("body_len", 14))


@dataclass(frozen=True)
class Posting:
    """One document's counts for one term, as packed in a posting list."""

    tf_title: int
    tf_body: int
    title_len: int
    body_len: int

    def pack(self, impact: float) -> int:
        """The sorted-set score: quantized impact on top, then the counts (each capped)."""
        value = min(int(impact * 256), 255)
        for name, bits in _BITS:
            value = (value << bits) | min(getattr(self, name), (1 << bits) - 1)
        return value

    @classmethod
    def unpack(cls, score: float) -> Posting:
        """Read the counts back from a sorted-set score."""
        value = int(score)
        out = {}
        for name, bits in reversed(_BITS):
            out[name] = value & ((1 << bits) - 1)
            value >>= bits
        return cls(**out)


def postings_of(doc: FieldTerms) -> dict[str, Posting]:
    """The posting a document contributes to each of its terms."""
    return {
        term: Posting(doc.title[term], doc.body[term], doc.title_len, doc.body_len)
        for term in doc.vocabulary
    }


def directed_similarity(
    method: Method,
    query: FieldTerms,
    doc: FieldTerms,
    dfs: Mapping[str, int],
    n_docs: int,
    avg: Averages,
    *,
    unseen: bool = False,
) -> float:
    """`doc`'s score for `query` as a query (its best terms), over `query`'s self-score.

    The index's similarity, computed for one pair from both documents' terms: the join
    decision asks it both ways (joins.py), so a short report inside a long one does not
    look like a copy of it. Terms no indexed report has yet count as absent, as in a
    query; with `unseen`, they count as the rarest terms (a new report's words nobody
    else used are what sets it apart, and `doc` does not have them).
    """
    weights = query_weights(method, query)
    idfs = {t: idf(max(n_docs, 1), dfs.get(t, 0)) for t in weights if unseen or dfs.get(t)}
    chosen = sorted(idfs, key=lambda t: (weights[t] * idfs[t], t), reverse=True)
    if method.max_query_terms:
        chosen = chosen[: method.max_query_terms]
    self_score = score = 0.0
    for t in chosen:
        w = weights[t] * idfs[t]
        mine = Posting(query.title[t], query.body[t], query.title_len, query.body_len)
        self_score += w * saturate(pseudo_tf(method, mine, avg))
        if t in doc.title or t in doc.body:
            theirs = Posting(doc.title[t], doc.body[t], doc.title_len, doc.body_len)
            score += w * saturate(pseudo_tf(method, theirs, avg))
    return min(score / self_score, 1.0) if self_score > 0 else 0.0


def accumulate(
    method: Method,
    weight: float,
    postings: Iterable[tuple[bytes, float]],
    avg: Averages,
    scores: dict[bytes, float],
) -> None:
    """Add one query term's BM25F contributions to `scores`, one posting at a time.

    The scalar reference of `score_lists` (which the query uses): the same formula as
    pseudo_tf and saturate, unrolled over the packed integers.
    """
    wt, wb = method.title_weight, method.body_weight
    at, ab = max(avg.title, 1.0), max(avg.body, 1.0)
    get = scores.get
    for member, packed in postings:
        v = int(packed)
        tt = (v >> 31) & 0x3F
        tb = (v >> 21) & 0x3FF
        tf = 0.0
        if tt:
            tf += wt * tt / (1.0 - B + B * ((v >> 14) & 0x7F) / at)
        if tb:
            tf += wb * tb / (1.0 - B + B * (v & 0x3FFF) / ab)
        scores[member] = get(member, 0.0) + weight * tf / (K1 + tf)


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


Int64Array = npt.NDArray[np.int64]
# Decimal doc ids up to this many digits fit an int64 (Zendesk ticket ids do).
MAX_NUMERIC_DIGITS = 18


def numeric_ids(members: Sequence[bytes]) -> Int64Array | None:
    """The doc ids as integers if every one is a canonical decimal (no sign, no leading
    zero), so that the integer's decimal text is the id again; else None."""
    for m in members:
        if not m.isdigit() or len(m) > MAX_NUMERIC_DIGITS or (m[0] == 48 and len(m) > 1):
            return None
    return np.array([int(m) for m in members], dtype=np.int64)


class DecimalIds(Sequence[bytes]):
    """Numeric doc ids seen as the bytes they stand for (b"%d"), made when asked."""

    def __init__(self, ids: Int64Array) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        return b"%d" % int(self.ids[i])

    def __iter__(self) -> Iterator[bytes]:
        return (b"%d" % i for i in self.ids.tolist())


@dataclass(frozen=True)
class PostingList:
    """One term's postings as read, best first: doc ids and their packed scores.

    `ids` holds the doc ids as integers when all of them are decimal (numeric_ids):
    scoring then finds each posting's document with a sort instead of a dict.
    """

    members: Sequence[bytes]
    packed: FloatArray
    ids: Int64Array | None = None

    @classmethod
    def of(cls, postings: dict[bytes, float]) -> PostingList:
        """A posting list from doc id -> packed score, in the dict's order (an empty one
        has integer ids: it must not keep a query's other lists off that path)."""
        members = list(postings)
        scores = np.fromiter(postings.values(), np.float64, len(postings))
        return cls(members, scores, numeric_ids(members))

    @classmethod
    def numeric(cls, ids: Int64Array, packed: FloatArray) -> PostingList:
        return cls(DecimalIds(ids), packed, ids)

    def __len__(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Scored:
    """A query's text scores, and what each posting read contributed to them."""

    # Per posting, the lists concatenated in term order: its document, its document's
    # first posting (a document is known by that position), its term (index into the
    # lists) and its BM25F pseudo tf.
    members: Sequence[bytes]
    doc: IntArray
    term: IntArray
    tf: FloatArray
    # Each document's first posting, and the positions of those in ascending order (the
    # order documents first appear, in which heapq.nlargest broke ties).
    position: Mapping[bytes, int]
    first: IntArray
    # Text scores by first posting (0 at the other positions).
    totals: FloatArray


def score_lists(
    method: Method, weights: Sequence[float], lists: Sequence[PostingList], avg: Averages
) -> Scored:
    """Sum each document's BM25F contributions over the query terms' posting lists.

    Vectorized `accumulate`, giving the same floats: each contribution is computed with the
    same operations in the same order (a field with tf 0 adds exactly 0.0 here instead of
    being skipped), and np.bincount adds a document's contributions in posting order,
    from 0.0, as the scalar loop does.
    """
    lengths = [len(p) for p in lists]
    members: Sequence[bytes]
    position: Mapping[bytes, int]
    if lists and all(p.ids is not None for p in lists):
        # Each posting gets the position of its document's first posting: with integer
        # ids, np.unique's first indexes, by a sort rather than a dict of 10,000 bytes.
        ids = np.concatenate([p.ids for p in lists if p.ids is not None])
        n = len(ids)
        unique, firsts, inverse = np.unique(ids, return_index=True, return_inverse=True)
        doc = firsts[inverse.reshape(-1)].astype(np.intp, copy=False)
        members = DecimalIds(ids)
        position = _NumericPositions(unique, firsts)
    else:
        members = list(chain.from_iterable(p.members for p in lists))
        n = len(members)
        # One dict operation per posting, looped in C (map over two iterables).
        positions: dict[bytes, int] = {}
        doc = np.fromiter(map(positions.setdefault, members, range(n)), np.intp, n)
        position = positions
    packed = np.concatenate([p.packed for p in lists]) if lists else np.zeros(0)
    v = packed.astype(np.int64)
    at, ab = max(avg.title, 1.0), max(avg.body, 1.0)
    title_tf = method.title_weight * ((v >> 31) & 0x3F) / (1.0 - B + B * ((v >> 14) & 0x7F) / at)
    body_tf = method.body_weight * ((v >> 21) & 0x3FF) / (1.0 - B + B * (v & 0x3FFF) / ab)
    tf = title_tf + body_tf
    weight = np.repeat(np.asarray(weights, dtype=np.float64), lengths)
    contribution = weight * tf / (K1 + tf)
    # A weighted bincount is float64 (numpy's stubs say int).
    totals = np.bincount(doc, weights=contribution, minlength=n).astype(np.float64, copy=False)
    term = np.repeat(np.arange(len(lists), dtype=np.intp), lengths)
    first = np.flatnonzero(doc == np.arange(n, dtype=np.intp))
    return Scored(members, doc, term, tf, position, first, totals)


class _NumericPositions(Mapping[bytes, int]):
    """Doc id -> position of its first posting, for integer ids (sorted, with firsts)."""

    def __init__(self, unique: Int64Array, firsts: IntArray) -> None:
        self.unique = unique
        self.firsts = firsts

    def _find(self, member: object) -> int | None:
        if not isinstance(member, bytes):
            return None
        ids = numeric_ids([member])
        if ids is None:
            return None
        at = int(np.searchsorted(self.unique, ids[0]))
        if at < len(self.unique) and self.unique[at] == ids[0]:
            return int(self.firsts[at])
        return None

    def __contains__(self, member: object) -> bool:
        return self._find(member) is not None

    def __getitem__(self, member: bytes) -> int:
        found = self._find(member)
        if found is None:
            raise KeyError(member)
        return found

    def __iter__(self) -> Iterator[bytes]:
        return (b"%d" % i for i in self.unique.tolist())

    def __len__(self) -> int:
        return len(self.unique)


def top_scored(scored: Scored, n: int, exclude: bytes | None = None) -> list[tuple[bytes, float]]:
    """The n best documents and their scores, best first, ties in order of appearance.

    The same as heapq.nlargest over the scores in appearance order (which is stable).
    """
    if n <= 0:
        return []
    candidates = scored.first
    if exclude is not None and exclude in scored.position:
        candidates = candidates[candidates != scored.position[exclude]]
    values = scored.totals[candidates]
    if len(values) > n:
        # The n-th best score: only documents at or above it (ties included) are sorted.
        nth = np.partition(values, len(values) - n)[len(values) - n]
        keep = values >= nth
        candidates, values = candidates[keep], values[keep]
    # Stable on descending scores: equal scores keep their (ascending) appearance order.
    order = np.argsort(-values, kind="stable")[:n]
    best = candidates[order]
    members = scored.members
    chosen = (
        [b"%d" % i for i in members.ids[best].tolist()]
        if isinstance(members, DecimalIds)
        else [members[i] for i in best.tolist()]
    )
    return list(zip(chosen, values[order].tolist(), strict=True))


def shared_terms(
    scored: Scored, members: Iterable[bytes], weights: Sequence[float]
) -> dict[bytes, list[tuple[int, float]]]:
    """For each of `members`, the terms (indexes into the lists) it has and their contributions.

    A contribution is weight x saturate(pseudo tf), in the query terms' order.
    """
    position = scored.position
    wanted = np.array([position[m] for m in members if m in position], dtype=np.intp)
    out: dict[bytes, list[tuple[int, float]]] = {}
    if not len(wanted):
        return out
    hits = np.flatnonzero(np.isin(scored.doc, wanted))
    for d, t, tf in zip(
        scored.doc[hits].tolist(), scored.term[hits].tolist(), scored.tf[hits].tolist(), strict=True
    ):
        out.setdefault(scored.members[d], []).append((t, weights[t] * saturate(tf)))
    return out


def recency(method: Method, age_seconds: float) -> float:
    """The recency prior's factor, between 1 (long ago) and 2 (now)."""
    if method.recency_days is None:
        return 1.0
    return 1.0 + math.exp(-max(age_seconds, 0.0) / (method.recency_days * 86400.0))


# ------------------------------------------------------------------ grouping


@dataclass(frozen=True)
class Evidence:
    """Why two reports look related: shared terms and their weights, and the signals."""

    shared_terms: tuple[tuple[str, float], ...] = ()
    signature_equal: bool = False
    # Both reports carry a crash signature, and they differ: two different crashes.
    signature_differs: bool = False
    same_platform: bool = False
    same_app_version: bool = False


@dataclass(frozen=True)
class Match:
    """A candidate related report: its score, its similarity to the query, and the evidence."""

    doc_id: str
    score: float
    # Text score divided by the query's score against itself: about 1 for a copy, 0 for
    # nothing shared. Comparable across corpora, unlike a raw BM25 score.
    similarity: float
    evidence: Evidence = field(default_factory=Evidence)
    title: str = ""
    group_id: str | None = None


@dataclass(frozen=True)
class GroupDecision:
    """Whether a report joins an existing group or starts a new one, and why."""

    group_id: str
    joined: bool
    reason: str
    match: Match | None = None
    # The candidates the decision saw, best first (the suggestions come from these).
    matches: tuple[Match, ...] = ()
    # Same-issue scores (joins.py) of the candidates it scored, by doc id.
    scores: Mapping[str, float] = field(default_factory=dict)
    # The pair features behind those scores (joins.PairFeatures), by doc id.
    features: Mapping[str, PairFeatures] = field(default_factory=dict)


# The same-issue probability (joins.same_issue_score) a text join needs; chosen from
# measurements (joins.py, docs/related.md). RelatedIndex(join_threshold=...) overrides it.
JOIN_THRESHOLD = JOIN_SCORE


def new_group_id(doc_id: str) -> str:
    """The id of the group a report starts when it joins none."""
    return f"g{doc_id}"


def decide_group(
    doc_id: str,
    matches: Iterable[Match],
    threshold: float = JOIN_THRESHOLD,
    *,
    features: Mapping[str, PairFeatures] | None = None,
    n_docs: int = 0,
    rejected: Set[str] = frozenset(),
) -> GroupDecision:
    """Join on equal crash signatures, or on a same-issue score above `threshold`.

    `features` are the pair features of the candidates worth scoring (joins.py); a
    candidate without them never joins on words. `rejected` are reports people said are
    not related to this one: never joined, whatever the evidence.
    """
    ranked = tuple(m for m in matches if m.doc_id not in rejected)
    for m in ranked:
        if m.evidence.signature_equal:
            return GroupDecision(
                m.group_id or new_group_id(m.doc_id), True, "same crash signature", m, ranked
            )
    # Two different crashes are different issues however alike their words (an app's
    # stack frames and boilerplate make them so): text alone never joins them.
    textual = [m for m in ranked if not m.evidence.signature_differs]
    scores: dict[str, float] = {}
    best: Match | None = None
    for m in textual:
        if features is None or m.doc_id not in features:
            continue
        strong, score = strong_text_evidence(features[m.doc_id], n_docs, threshold)
        scores[m.doc_id] = round(score, 4)
        if strong and (best is None or score > scores[best.doc_id]):
            best = m
    if best is not None:
        reason = f"same-issue score {scores[best.doc_id]:.2f} >= {threshold:.2f}"
        group = best.group_id or new_group_id(best.doc_id)
        return GroupDecision(group, True, reason, best, ranked, scores, features or {})
    if not textual and ranked:
        reason = "its candidates are other crashes (different signatures): suggestions only"
    elif not textual:
        reason = "no candidate"
    elif threshold >= 1.0 and scores:
        reason = (
            f"best same-issue score {max(scores.values()):.2f}; words never join here "
            "(join score set to 1): suggestions only"
        )
    elif n_docs < MIN_INDEXED and scores:
        indexed = f"{n_docs} report" + ("" if n_docs == 1 else "s")
        reason = f"young index ({indexed}; words join from {MIN_INDEXED}): suggestions only"
    elif scores and max(scores.values()) >= threshold:
        reason = (
            f"same-issue score {max(scores.values()):.2f}, but the reports are alike "
            f"only in their titles (similarity < {MIN_SIMILARITY:.2f} one way)"
        )
    elif scores:
        reason = f"best same-issue score {max(scores.values()):.2f} < {threshold:.2f}"
    else:
        reason = "no candidate scored"
    return GroupDecision(new_group_id(doc_id), False, reason, None, ranked, scores, features or {})
