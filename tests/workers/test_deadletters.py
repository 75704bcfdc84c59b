"""Dead letters: a job out of retries is kept, listed, shown and replayed; never deleted."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from redis import Redis
from rq import Retry
from rq.job import Job

from app import cli
from integrations.queue import TICKETS, enqueue_once, queue
from integrations.queue.jobs import JobSpec
from tests.jobs import run_worker_burst
from workers.deadletters import dead_letters


def jobs_calling(redis: Redis, queue_name: str, func: str) -> list[Job]:
    """Every job of `func` on a queue, waiting, scheduled, running, done or failed."""
    q = queue(redis, queue_name)
    ids = set(q.get_job_ids())
    for registry in (
        q.scheduled_job_registry, q.started_job_registry,
        q.finished_job_registry, q.failed_job_registry,
    ):  # fmt: skip
        ids.update(registry.get_job_ids())
    jobs = [Job.fetch(jid, connection=redis) for jid in ids]
    return [j for j in jobs if j.func_name == func]


def test_permanent_failure_skips_retries_and_is_kept(
    redis: Redis, env: dict[str, str], repo_root: Path
) -> None:
    enqueued = enqueue_once(redis, JobSpec("tests.jobs.refuse", TICKETS, "t"), "r1", key="r1")
    result = run_worker_burst(env, repo_root)
    assert result.returncode == 0, result.stderr

    letters = dead_letters(redis)
    assert [d.job_id for d in letters] == [enqueued.job_id]
    assert letters[0].attempts == 1  # a 422 is not retried
    assert "Zendesk refused to create ticket (422)" in letters[0].reason
    # What Zendesk answered is kept with it (rq's traceback has only the reason).
    assert letters[0].response == '{"error":"x"}'
    # The operator hears about it: an alert job is queued for the ops channel.
    alerts = jobs_calling(redis, "notify", "workers.alerts.ops_alert")
    assert len(alerts) == 1
    assert enqueued.job_id in alerts[0].args[0]
    # The status said once: "refused to create ticket (422)", not "(422) (HTTP 422)".
    assert "refused to create ticket (422). It is kept" in alerts[0].args[0]


def test_a_secret_in_an_error_is_kept_out_of_dead_letters_and_alerts(
    redis: Redis, env: dict[str, str], repo_root: Path
) -> None:
    token = env["SLACK_BOT_TOKEN"]
    enqueued = enqueue_once(
        redis, JobSpec("tests.jobs.leak", TICKETS, "t"), "l1", key="l1", retry=None
    )
    assert run_worker_burst(env, repo_root).returncode == 0

    [letter] = dead_letters(redis)
    assert letter.job_id == enqueued.job_id
    assert "token=[redacted] (500)" in letter.reason and token not in letter.reason
    # An operator's command that knows no secret shows what the worker stored: scrubbed.
    shown = CliRunner().invoke(
        cli, ["failed", "show", enqueued.job_id], env={"REDIS_URL": env["REDIS_URL"]}
    )
    assert shown.exit_code == 0 and "token=[redacted]" in shown.output
    assert token not in shown.output
    [alert] = jobs_calling(redis, "notify", "workers.alerts.ops_alert")
    assert "token=[redacted]" in alert.args[0] and token not in alert.args[0]


def test_failed_cli_lists_shows_and_replays(
    redis: Redis, env: dict[str, str], repo_root: Path, monkeypatch: object
) -> None:
    # Fails twice, then would succeed: with no retries left after the first
    # failure it lands in dead letters; each replay gives it another go.
    enqueue_once(
        redis, JobSpec("tests.jobs.fail_until", TICKETS, "t"), "r2", 2, key="r2", retry=None
    )
    run_worker_burst(env, repo_root)
    runner = CliRunner()
    cli_env = {"REDIS_URL": env["REDIS_URL"]}

    listed = runner.invoke(cli, ["failed", "list", "--json"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 1 and rows[0]["func"] == "tests.jobs.fail_until"
    assert "outage, try 1" in rows[0]["reason"]
    job_id = rows[0]["job_id"]

    shown = runner.invoke(cli, ["failed", "show", job_id], env=cli_env)
    assert shown.exit_code == 0 and "outage, try 1" in shown.output

    replayed = runner.invoke(cli, ["failed", "replay", job_id], env=cli_env)
    assert replayed.exit_code == 0 and f"replayed {job_id}" in replayed.output
    assert dead_letters(redis) == []
    run_worker_burst(env, repo_root)
    assert redis.hget("test:runs", "r2") == b"1"
    assert runner.invoke(cli, ["failed", "list"], env=cli_env).output.startswith("no dead letters")


def test_replay_of_unknown_id_says_so(redis: Redis, env: dict[str, str]) -> None:
    out = CliRunner().invoke(cli, ["failed", "replay", "nope"], env={"REDIS_URL": env["REDIS_URL"]})
    assert out.exit_code == 1
    assert "no dead letter with id 'nope'" in out.output


def test_transient_failure_is_retried_not_dead(
    redis: Redis, env: dict[str, str], repo_root: Path
) -> None:
    enqueue_once(
        redis,
        JobSpec("tests.jobs.fail_until", TICKETS, "t"),
        "r3",
        2,
        key="r3",
        retry=Retry(max=3, interval=0),
    )
    run_worker_burst(env, repo_root)
    assert redis.hget("test:runs", "r3") == b"1"
    assert dead_letters(redis) == []
