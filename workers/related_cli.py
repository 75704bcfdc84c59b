"""`feedback-hub related ...`: measure the related-issue index and explain its matches."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from redis import Redis

from integrations.queue import connect
from integrations.settings import Settings
from rules.related.eval import evaluate, read_jsonl
from rules.related.index import RelatedIndex
from rules.related.labels import Labels, evaluation_rows
from rules.related.scoring import JOIN_THRESHOLD, METHODS
from workers.cli import hub_redis_url
from workers.procs import free_port, start_redis, stop


@click.group(help="The related-issue index: evaluate it on labeled reports, explain matches.")
def related() -> None:
    pass


@contextmanager
def _redis_for_eval() -> Iterator[Redis]:
    """REDIS_URL when set, else a private redis-server that lives as long as the command."""
    settings = Settings.from_env("cli")
    if settings.redis_url:
        client = connect(settings.redis_url, timeout=30.0)
        try:
            yield client
        finally:
            client.close()
        return
    with tempfile.TemporaryDirectory(prefix="feedback-hub-related-") as directory:
        port = free_port()
        proc = start_redis(port, Path(directory))
        client = Redis(host="127.0.0.1", port=port)
        try:
            yield client
        finally:
            client.close()
            stop(proc)


def _drop_prefix(client: Redis, prefix: str) -> None:
    """Delete every key under `prefix` (the evaluation's private index)."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


@related.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--method",
    type=click.Choice(sorted(METHODS)),
    default="hub",
    show_default=True,
    help="hub: the workers' method; bm25: plain BM25 (title twice), the baseline.",
)
@click.option(
    "--held-out",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Count only this last share of the reports (by time); all are still indexed.",
)
@click.option(
    "--join-score",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help=(
        "The threshold to measure (what RELATED_JOIN_SCORE would set); default: the"
        f" workers' ({JOIN_THRESHOLD:.4f} unless RELATED_JOIN_SCORE says otherwise)."
    ),
)
def eval_command(file: Path, method: str, held_out: float, join_score: float | None) -> None:
    """Time-ordered recall@1/3/5/10 and the join decision's measures, as the workers decide."""
    reports = list(read_jsonl(file))
    if join_score is None:
        join_score = Settings.from_env("cli").related_join_score or JOIN_THRESHOLD
    with _redis_for_eval() as client:
        # A private prefix: the live index under hub:related is never touched.
        prefix = f"hub:related-eval:{secrets.token_hex(4)}"
        # The protocol indexes every earlier report, so no window here.
        index = RelatedIndex(
            client,
            prefix=prefix,
            window_days=None,
            method=METHODS[method],
            join_threshold=join_score,
        )
        try:
            result = evaluate(index, reports, held_out=held_out)
        finally:
            _drop_prefix(client, prefix)
    click.echo(json.dumps(result))


@related.command("export-labels")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_labels_command(file: Path) -> None:
    """Write people's corrections (Same issue, Not related) in the evaluation format."""
    client = connect(hub_redis_url(Settings.from_env("cli")))
    try:
        entries = list(Labels(client).entries())
    finally:
        client.close()
    rows = evaluation_rows(entries)
    with file.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    same = sum(1 for e in entries if e["label"] == "same")
    click.echo(
        f"{len(rows)} reports, {same} confirmed and {len(entries) - same} rejected pairs "
        f"written to {file}"
    )


@related.command("explain")
@click.argument("ticket")
@click.option("-k", "--top", default=5, show_default=True, help="How many related reports.")
def explain_command(ticket: str, top: int) -> None:
    """A ticket's group and nearest related tickets in the live index, with the evidence."""
    client = connect(hub_redis_url(Settings.from_env("cli")))
    try:
        explained = RelatedIndex(client).explain(ticket, k=top)
    except KeyError:
        raise click.ClickException(f"ticket {ticket} is not in the related-issue index") from None
    finally:
        client.close()
    click.echo(_render(explained))


def _render(explained: dict[str, object]) -> str:
    """The explanation as text a person reads in a terminal."""
    lines = [f"{explained['id']}: {explained['title']}"]
    if explained["group"]:
        size = explained["group_size"]
        lines.append(f"group {explained['group']} ({size} report{'' if size == 1 else 's'})")
    else:
        lines.append("group: none yet")
    if explained["crash_signature"]:
        lines.append(f"crash signature: {explained['crash_signature']}")
    related_ = explained["related"]
    assert isinstance(related_, list)
    if not related_:
        lines.append("no related tickets in the index")
    for m in related_:
        signals = [
            name
            for name, on in (
                ("same crash signature", m["signature_equal"]),
                ("same platform", m["same_platform"]),
                ("same app version", m["same_app_version"]),
            )
            if on
        ]
        group = f"  group {m['group']}" if m["group"] else ""
        lines.append(
            f"  {m['id']}  score {m['score']:.2f}  similarity {m['similarity']:.2f}{group}"
            f"  {m['title']}"
        )
        terms = ", ".join(f"{t} {w:.2f}" for t, w in m["shared_terms"].items())
        lines.append(f"      shared terms: {terms or '-'}")
        if signals:
            lines.append(f"      signals: {', '.join(signals)}")
    return "\n".join(lines)
