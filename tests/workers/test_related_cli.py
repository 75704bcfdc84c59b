"""`feedback-hub related eval` and `explain`, run as an operator would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from app import cli
from rules.related.index import IndexedDoc, RelatedIndex
from rules.related.joins import MIN_INDEXED
from rules.related.labels import LabeledReport, Labels

START = datetime(2024, 1, 1, tzinfo=UTC)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def labeled_file(path: Path) -> tuple[Path, dict[str, float | int]]:
    """A small labeled set and the recall it must get, worked out from how it is built.

    Three topics each reported twice with shared distinctive words (the second report
    must find the first at rank 1), one pair that shares no word at all (a miss at every
    k), and unrelated filler reports. The file is written out of order on purpose.
    """
    topics = [
        ("Export to CSV produces an empty file", "CSV export empty spreadsheet download"),
        ("Kerberos ticket renewal fails", "kerberos keytab renewal principal expired"),
        ("Dark theme sidebar unreadable", "dark theme sidebar contrast unreadable"),
    ]
    rows: list[dict[str, object]] = []
    for n, (title, body) in enumerate(topics):
        rows.append(dict(id=f"a{n}", title=title, body=body, group=f"g{n}"))
        rows.append(dict(id=f"b{n}", title=f"{title} again", body=body, group=f"g{n}"))
    rows.append(dict(id="x1", title="Printer jams", body="paper stuck in tray", group="gx"))
    rows.append(dict(id="x2", title="Volume slider", body="audio level control", group="gx"))
    for n, word in enumerate(["quota", "webhook", "locale", "avatar"]):
        rows.append(dict(id=f"f{n}", title=f"{word} settings page", body=word, group=None))
    # One crash reported twice in other words (a correct join on its signature), then a
    # report nobody labeled with the same signature (a false join, as the protocol counts).
    rows.append(dict(id="c1", title="App freezes on launch", body="", group="gc", sig="S1"))
    rows.append(dict(id="c2", title="Black screen at startup", body="", group="gc", sig="S1"))
    rows.append(dict(id="c3", title="Cannot open the app", body="", group=None, sig="S1"))
    for hour, row in enumerate(rows):
        row["created_at"] = (START + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")
        if "sig" in row:
            row["crash_signature"] = row.pop("sig")
    # The text pairs are not joined: a young index (15 reports) only suggests.
    expected = {
        "queries": 5,
        "recall@1": 0.8,
        "recall@3": 0.8,
        "recall@5": 0.8,
        "recall@10": 0.8,
        "auto_join_correct": 1,
        "auto_join_wrong": 0,
        "auto_join_false": 1,
        "join_recall": 0.2,
        "false_join_rate": 0.1,
    }
    return _write(path, list(reversed(rows))), expected


@pytest.mark.parametrize("method", ["hub", "bm25"])
def test_eval_prints_the_protocols_recall(
    tmp_path: Path, redis: Redis, redis_url: str, method: str
) -> None:
    path, expected = labeled_file(tmp_path / "labeled.jsonl")
    result = CliRunner().invoke(
        cli, ["related", "eval", str(path), "--method", method], env={"REDIS_URL": redis_url}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected
    # The evaluation used a private prefix and cleaned it up.
    assert list(redis.scan_iter("hub:related*")) == []


def test_eval_counts_only_the_held_out_part(tmp_path: Path, redis_url: str) -> None:
    path, _ = labeled_file(tmp_path / "labeled.jsonl")
    result = CliRunner().invoke(
        cli, ["related", "eval", str(path), "--held-out", "0.2"], env={"REDIS_URL": redis_url}
    )
    assert result.exit_code == 0, result.output
    measured = json.loads(result.output)
    # The last 3 of 15 reports: c1, c2 (the one query, joined rightly), c3 (a false join).
    assert measured["queries"] == 1 and measured["auto_join_correct"] == 1
    assert measured["auto_join_false"] == 1 and measured["false_join_rate"] == 0.5
    assert measured["held_out"] == 0.2


def test_eval_measures_the_join_score_an_operator_would_set(tmp_path: Path, redis_url: str) -> None:
    # An index old enough for words to join, then one report filed twice in nearly the
    # same words: joined at the measured threshold, only suggested at 1.
    rows: list[dict[str, object]] = [
        dict(id=f"f{i}", title=f"Widget{i} sync issue", body=f"module{i} panel{i}", group=None)
        for i in range(MIN_INDEXED + 20)
    ]
    body = "The exported CSV spreadsheet is empty, no rows at all."
    rows.append(dict(id="a", title="Export to CSV produces an empty file", body=body, group="g"))
    rows.append(dict(id="b", title="CSV export gives an empty file", body=body, group="g"))
    for hour, row in enumerate(rows):
        row["created_at"] = (START + timedelta(hours=hour)).isoformat()
    path = _write(tmp_path / "pair.jsonl", rows)

    def measured(*options: str, **env: str) -> dict[str, float]:
        result = CliRunner().invoke(
            cli, ["related", "eval", str(path), *options], env={"REDIS_URL": redis_url, **env}
        )
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.output))

    assert measured()["auto_join_correct"] == 1
    only_suggested = measured("--join-score", "1")
    assert only_suggested["auto_join_correct"] == 0 and only_suggested["recall@1"] == 1.0
    # Without the option, the workers' setting is what is measured.
    assert measured(RELATED_JOIN_SCORE="1")["auto_join_correct"] == 0
    refused = CliRunner().invoke(cli, ["related", "eval", str(path), "--join-score", "0"])
    assert refused.exit_code == 2 and "0<x<=1" in refused.output


def test_export_labels_writes_the_evaluation_format(
    tmp_path: Path, redis: Redis, redis_url: str
) -> None:
    labels = Labels(redis)
    a = LabeledReport("11", "2024-01-01T10:00:00Z", "Export is empty")
    b = LabeledReport("12", "2024-01-02T10:00:00Z", "CSV export has no rows")
    c = LabeledReport("13", "2024-01-03T10:00:00Z", "Checkout button does nothing")
    labels.record(b, a, "same", by="Ada")
    labels.record(c, a, "not_related", by="Grace")
    out = tmp_path / "labels.jsonl"
    result = CliRunner().invoke(
        cli, ["related", "export-labels", str(out)], env={"REDIS_URL": redis_url}
    )
    assert result.exit_code == 0, result.output
    assert "3 reports, 1 confirmed and 1 rejected pairs" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["group"]) for r in rows] == [("11", "g11"), ("12", "g11"), ("13", None)]
    assert rows[2]["title"] == "Checkout button does nothing"
    # The file is what `related eval` reads: its one query finds its confirmed pair.
    again = CliRunner().invoke(cli, ["related", "eval", str(out)], env={"REDIS_URL": redis_url})
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["queries"] == 1


def test_eval_starts_its_own_redis_without_redis_url(tmp_path: Path) -> None:
    path, expected = labeled_file(tmp_path / "labeled.jsonl")
    result = CliRunner().invoke(cli, ["related", "eval", str(path)], env={"REDIS_URL": None})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected


def test_eval_names_the_bad_line(tmp_path: Path, redis_url: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"id": "1", "title": "no date"}])
    result = CliRunner().invoke(cli, ["related", "eval", str(path)], env={"REDIS_URL": redis_url})
    assert result.exit_code != 0
    assert "bad.jsonl:1" in str(result.exception) + result.output


def test_explain_shows_related_tickets_and_evidence(redis: Redis, redis_url: str) -> None:
    index = RelatedIndex(redis, window_days=None)
    # The same crash: joined on its signature (words alone would only be suggested).
    first = IndexedDoc(
        "101",
        START,
        "Export to CSV produces an empty file",
        "csv export empty",
        crash_signature="E1",
    )
    second = IndexedDoc(
        "102", START, "CSV export empty", "the csv file is empty", crash_signature="E1"
    )
    index.add(first)
    index.assign(second, index.group_for(second))
    index.add(second)
    result = CliRunner().invoke(cli, ["related", "explain", "102"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "102: CSV export empty"
    assert lines[1] == "group g101 (2 reports)"
    assert lines[2] == "crash signature: E1"
    assert lines[3].startswith("  101  score ") and "group g101" in lines[3]
    assert lines[4].startswith("      shared terms: ")
    assert {"csv", "export", "empty"} <= {t.split()[0] for t in lines[4][20:].split(", ")}


def test_explain_an_unknown_ticket(redis: Redis, redis_url: str) -> None:
    result = CliRunner().invoke(cli, ["related", "explain", "999"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 1
    assert "ticket 999 is not in the related-issue index" in result.output
