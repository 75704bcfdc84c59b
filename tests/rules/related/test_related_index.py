"""The Redis related-issue index: add, query, remove, window, persistence, groups, explain."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

from redis import Redis

from rules.related.index import IndexedDoc, RelatedIndex
from rules.related.labels import LabeledReport, Labels
from rules.related.scoring import BM25, K1, new_group_id
from rules.related.tokenize import plain_terms

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock, so window expiry is tested without waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


def doc(doc_id: str, title: str, body: str = "", days: float = 0, **kw: str) -> IndexedDoc:
    return IndexedDoc(doc_id, T0 + timedelta(days=days), title, body, **kw)


CORPUS = [
    doc("1", "Export to CSV does nothing", "Clicking export in the reports page has no effect"),
    doc("2", "Login fails with SSO", "SAML assertion rejected after the identity provider update"),
    doc("3", "Dark mode colors are wrong", "The sidebar stays white in dark mode"),
    doc("4", "Crash when rotating the phone", "NullPointerException in VideoPlayerFragment"),
]


def index(redis: Redis, **kw: object) -> RelatedIndex:
    kw.setdefault("clock", Clock(T0 + timedelta(days=1)))
    idx = RelatedIndex(redis, prefix="t:related", **kw)  # type: ignore[arg-type]
    for d in CORPUS:
        idx.add(d)
    return idx


def test_query_ranks_the_related_report_first_with_shared_terms(redis: Redis) -> None:
    idx = index(redis)
    matches = idx.query(doc("9", "CSV export button broken", "export does nothing", days=1))
    assert matches[0].doc_id == "1"
    shared = dict(matches[0].evidence.shared_terms)
    assert {"export", "csv"} <= set(shared)
    assert all(w > 0 for w in shared.values())
    assert 0 < matches[0].similarity <= 1
    assert "2" not in [m.doc_id for m in matches]  # nothing in common with the SSO report


def test_query_never_returns_the_report_itself(redis: Redis) -> None:
    idx = index(redis)
    assert "1" not in [m.doc_id for m in idx.query(CORPUS[0])]


def test_removed_and_solved_reports_leave_the_index(redis: Redis) -> None:
    idx = index(redis)
    assert idx.remove("1") is True
    assert idx.remove("1") is False
    idx.add(doc("2", "Login fails with SSO", status="solved"))
    assert len(idx) == 2
    assert idx.query(doc("9", "CSV export broken", days=1)) == []
    assert idx.query(doc("9", "SSO login fails", days=1)) == []
    # No posting list still names a removed report.
    for key in redis.scan_iter("t:related:post:*"):
        assert not {b"1", b"2"} & set(redis.zrange(key, 0, -1))
    assert redis.hget("t:related:stats", "n") == b"2"
    # Document frequencies are exact, and terms nobody uses any more are gone from them.
    dfs = {k: int(v) for k, v in redis.hgetall("t:related:df").items()}
    for key in redis.scan_iter("t:related:post:*"):
        assert dfs.pop(key.rsplit(b":", 1)[1]) == redis.zcard(key)
    assert dfs == {}


def test_reindexing_a_report_replaces_its_terms(redis: Redis) -> None:
    idx = index(redis)
    idx.add(doc("1", "Printing invoices hangs", "the print dialog never opens"))
    assert len(idx) == 4
    assert redis.hget("t:related:stats", "n") == b"4"
    assert [m.doc_id for m in idx.query(doc("9", "invoice printing", days=1))] == ["1"]
    assert idx.query(doc("9", "CSV export", days=1)) == []


def test_reports_older_than_the_window_expire(redis: Redis) -> None:
    clock = Clock(T0 + timedelta(days=1))
    idx = index(redis, clock=clock, window_days=90)
    clock.now = T0 + timedelta(days=100)
    idx.add(doc("5", "Export to PDF does nothing", days=99))
    assert len(idx) == 1
    assert [m.doc_id for m in idx.query(doc("9", "export does nothing", days=100))] == ["5"]
    # A report already older than the window is not indexed at all.
    idx.add(doc("6", "Export is slow", days=5))
    assert len(idx) == 1


def test_the_index_survives_a_new_instance(redis: Redis) -> None:
    before = index(redis).query(doc("9", "CSV export broken", days=1))
    after = RelatedIndex(redis, prefix="t:related").query(doc("9", "CSV export broken", days=1))
    assert after == before != []


def test_equal_crash_signature_outranks_text(redis: Redis) -> None:
    idx = index(redis)
    sig = "java.lang.NullPointerException at VideoPlayerFragment.onResume"
    idx.add(doc("5", "App closes", "it just closes", crash_signature=sig, platform="android"))
    query = doc("9", "Export to CSV does nothing", crash_signature=sig.upper(), platform="android")
    best = idx.query(query)[0]
    assert best.doc_id == "5"
    assert best.evidence.signature_equal and best.evidence.same_platform
    assert not best.evidence.same_app_version


def test_bm25_method_scores_are_textbook_bm25(redis: Redis) -> None:
    idx = index(redis, method=BM25)
    query = "export fails in dark mode"
    got = {m.doc_id: m.score for m in idx.query(doc("9", query, days=1))}

    docs = {d.id: plain_terms(d.title) * 2 + plain_terms(d.body) for d in CORPUS}
    avgdl = sum(map(len, docs.values())) / len(docs)

    def bm25(words: list[str]) -> float:
        tf = Counter(words)
        total = 0.0
        for term in set(plain_terms(query)):
            df = sum(term in d for d in docs.values())
            if tf[term]:
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                norm = tf[term] + K1 * (0.25 + 0.75 * len(words) / avgdl)
                total += idf * tf[term] * (K1 + 1) / norm
        return total

    expected = {d: bm25(w) for d, w in docs.items() if bm25(w) > 0}
    assert set(got) == set(expected)
    for d, score in got.items():
        # The index keeps the (k1 + 1) factor out of its sums: scores differ by it alone.
        assert math.isclose(score * (K1 + 1), expected[d], rel_tol=1e-3)


def fillers(n: int = 240) -> list[IndexedDoc]:
    """Unrelated reports that make the index old enough for text joins (joins.MIN_INDEXED)."""
    return [
        doc(f"f{i}", f"Widget{i} sync issue in module{i}", f"module{i} widget{i} panel{i}")
        for i in range(n)
    ]


def test_a_young_index_only_suggests(redis: Redis) -> None:
    idx = index(redis)
    copy = doc("5", "Export to CSV does nothing at all", "export button no effect", days=1)
    decision = idx.group_for(copy)
    assert not decision.joined and decision.group_id == new_group_id("5")
    assert "young index" in decision.reason
    # Not joined, still the first suggestion.
    assert decision.matches[0].doc_id == "1"


def test_group_decisions_and_membership(redis: Redis) -> None:
    idx = index(redis)
    idx.add_many(fillers())
    first = doc("5", "Export to CSV does nothing at all", "Clicking export has no effect", days=1)
    decision = idx.group_for(first)
    assert decision.joined and decision.group_id == new_group_id("1"), decision.reason
    assert decision.reason.startswith("same-issue score")
    assert idx.assign(first, decision) == 2
    idx.add(first)

    second = doc("6", "CSV export does nothing", "Clicking export in reports: no effect", days=1)
    decision = idx.group_for(second)
    assert decision.joined and decision.group_id == new_group_id("1")
    assert idx.assign(second, decision) == 3
    assert idx.group_members(new_group_id("1")) == ["1", "5", "6"]

    lonely = doc("7", "Billing address cannot be changed", days=1)
    decision = idx.group_for(lonely)
    assert not decision.joined and decision.group_id == new_group_id("7")
    # Group membership is in Redis too: a new instance sees it.
    assert RelatedIndex(redis, prefix="t:related").group_size(new_group_id("1")) == 3


def test_button_does_nothing_reports_are_not_joined(redis: Redis) -> None:
    idx = index(redis)
    idx.add_many(fillers())
    export = doc("30", "The CSV export button does nothing when I have more than 10k rows")
    idx.assign(export, idx.group_for(export))
    idx.add(export)
    checkout = doc("31", "The checkout button does nothing after I add a coupon", days=0.1)
    decision = idx.group_for(checkout)
    assert not decision.joined, decision.reason
    # It is suggested instead: the card shows it, people decide.
    assert decision.matches[0].doc_id == "30"
    assert decision.scores["30"] < idx.join_threshold


def test_the_same_generic_first_line_does_not_join_different_reports(redis: Redis) -> None:
    # A Slack report's title is its first line: "Hi team" says nothing about the issue,
    # and two reports sharing it are only as alike as the rest of their words.
    idx = index(redis)
    # A third of the reports open so: the words are common, the titles still equal.
    idx.add_many(fillers())
    idx.add_many(
        [doc(f"h{i}", "Hi team", f"gadget{i} shows error{i} on screen{i}") for i in range(120)]
    )
    invoices = doc("40", "Hi team", "Invoices for March are missing from the billing page")
    idx.assign(invoices, idx.group_for(invoices))
    idx.add(invoices)
    login = doc("41", "Hi team", "I cannot log in with Google since this morning", days=0.1)
    decision = idx.group_for(login)
    assert not decision.joined, decision.reason
    assert decision.matches and decision.matches[0].doc_id == "40"
    # The same first line with the same issue under it does join.
    again = doc("42", "Hi team", "Invoices for March are missing from the billing page!", days=0.2)
    assert idx.group_for(again).joined


def test_reports_without_a_title_are_joined_on_their_first_line(redis: Redis) -> None:
    # Feedback that arrives as one text: its first line is its title, as in the Slack intake.
    idx = index(redis)
    idx.add_many(fillers())
    first = doc("50", "", "Export to CSV does nothing at all\nClicking export has no effect")
    decision = idx.group_for(first)
    assert decision.joined and decision.group_id == new_group_id("1"), decision.reason
    other = doc("51", "", "Billing address cannot be changed\nThe save button stays grey")
    assert not idx.group_for(other).joined


def test_a_rejected_pair_is_never_suggested_or_joined_again(redis: Redis) -> None:
    idx = index(redis)
    idx.add_many(fillers())
    copy = doc("5", "Export to CSV does nothing at all", "Clicking export has no effect", days=1)
    Labels(redis, "t:related").record(
        LabeledReport("5", "2025-03-02T12:00:00Z", copy.title),
        LabeledReport("1", "2025-03-01T12:00:00Z", CORPUS[0].title),
        "not_related",
        by="Ada",
    )
    decision = idx.group_for(copy)
    assert not decision.joined
    assert "1" not in [m.doc_id for m in decision.matches]


def test_crashes_with_different_signatures_stay_apart(redis: Redis) -> None:
    idx = index(redis)
    text = "App crashes when saving a draft", "crashed while saving my draft in the editor"
    first = doc("20", *text, crash_signature="EXC_BAD_ACCESS DraftStore.save")
    idx.assign(first, idx.group_for(first))
    idx.add(first)

    other = doc("21", *text, days=1, crash_signature="NSRangeException ProfileStore.load")
    decision = idx.group_for(other)
    [match] = [m for m in idx.query(other) if m.doc_id == "20"]
    assert match.evidence.signature_differs and match.similarity > 0.9
    assert not decision.joined

    same = doc(
        "22", "Editor crash", "boom", days=1, crash_signature="exc_bad_access  DraftStore.save"
    )
    assert idx.group_for(same).joined  # the same crash joins whatever the words
    no_signature = doc("23", *text, days=1)
    # Words alone join only on strong evidence, and never in a young index: a suggestion.
    assert not idx.group_for(no_signature).joined
    assert idx.group_for(no_signature).matches[0].doc_id in ("20", "21")


def test_explain_shows_group_related_reports_and_evidence(redis: Redis) -> None:
    idx = index(redis)
    idx.add_many(fillers())
    related = doc("5", "Export to CSV does nothing", "Clicking export has no effect", days=1)
    idx.add(related)
    idx.assign(related, idx.group_for(related))
    explained = idx.explain("5")
    assert explained["group"] == new_group_id("1")
    assert explained["group_size"] == 2
    top = explained["related"][0]
    assert top["id"] == "1" and top["group"] == new_group_id("1")
    assert "export" in top["shared_terms"]


NO_LATIN = {
    "ru": "Приложение вылетает при оплате",
    "zh": "付款时应用程序崩溃",
    "ar": "التطبيق يتعطل عند الدفع",
    "emoji": "💥💥😡",
    "letter": "x",
}


def test_reports_in_any_script_are_indexed_queried_and_grouped(redis: Redis) -> None:
    # A report with no Latin words once failed every grouping attempt (an empty HMGET).
    idx = index(redis)
    for n, (lang, title) in enumerate(NO_LATIN.items()):
        report = doc(f"nl-{lang}", title, days=1 + n / 10)
        decision = idx.group_for(report)
        assert decision.match is None, lang  # nothing related yet: its own group
        idx.assign(report, decision)
        idx.add(report)
    # The same words again find the earlier report, in scripts with and without spaces.
    for lang in ("ru", "zh", "ar"):
        again = doc(f"nl-{lang}-2", NO_LATIN[lang], days=2)
        assert [m.doc_id for m in idx.query(again)][:1] == [f"nl-{lang}"], lang
