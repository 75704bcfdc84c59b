"""`feedback-hub failed ...`: list, show and replay dead letters (never deleted by the hub)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from redis import Redis

from integrations.queue import connect
from integrations.sandbox.devstate import read_state
from integrations.settings import ConfigError, Settings
from workers.deadletters import dead_letter, dead_letters, replay


def hub_redis_url(settings: Settings) -> str:
    """The hub's Redis for an operator's command: REDIS_URL, else the running
    `feedback-hub dev`'s (var/dev.json; its Redis is on a random port), said on stderr."""
    if settings.redis_url:
        return settings.redis_url
    dev = read_state().get("redis_url")
    if isinstance(dev, str) and dev:
        click.echo(f"REDIS_URL is not set: using the running `feedback-hub dev` ({dev})", err=True)
        return dev
    raise ConfigError(
        "REDIS_URL",
        "is not set: expected the hub's Redis URL (with `make run` running, commands find it)",
    )


def _redis() -> Redis:
    return connect(hub_redis_url(Settings.from_env("cli")))


@click.group("failed")
def failed() -> None:
    """Dead letters: jobs that exhausted their retries."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_cmd(as_json: bool) -> None:
    """List dead letters, oldest first."""
    letters = dead_letters(_redis())
    if as_json:
        for letter in letters:
            click.echo(json.dumps(asdict(letter)))
        return
    if not letters:
        click.echo("no dead letters")
        return
    for d in letters:
        click.echo(f"{d.job_id}  {d.failed_at[:19]}  {d.queue:<8} {d.summary}\n    {d.reason}")
    click.echo(f"{len(letters)} dead letter(s); `feedback-hub failed replay ID|--all` retries them")


@failed.command("show")
@click.argument("job_id")
def show_cmd(job_id: str) -> None:
    """Show one dead letter."""
    letter = dead_letter(_redis(), job_id)
    if letter is None:
        raise click.ClickException(f"no dead letter with id {job_id!r}")
    for key, value in asdict(letter).items():
        click.echo(f"{key:>9}: {value}")


@failed.command("replay")
@click.argument("job_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay_cmd(job_id: str | None, replay_all: bool) -> None:
    """Put dead letters back on their queues with fresh retries."""
    if bool(job_id) == replay_all:
        raise click.UsageError("give one JOB_ID or --all")
    redis = _redis()
    ids = [d.job_id for d in dead_letters(redis)] if replay_all else [job_id or ""]
    for jid in ids:
        try:
            letter = replay(redis, jid)
        except KeyError as exc:
            raise click.ClickException(str(exc.args[0])) from None
        click.echo(f"replayed {letter.job_id} ({letter.summary})")
    if replay_all:
        click.echo(f"{len(ids)} replayed")
