"""`feedback-hub watch`: the first-reply clocks still running, the soonest breach first."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from workers.cli import _redis
from workers.timers import open_timers, watch_lines


@click.command("watch")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def watch(as_json: bool) -> None:
    """List open first-reply timers (reports waiting for support's first public reply)."""
    redis = _redis()
    if as_json:
        for timer in open_timers(redis):
            click.echo(json.dumps(asdict(timer)))
        return
    lines = watch_lines(redis)
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} open timer{'s' if len(lines) != 1 else ''}")
