"""The job registry: every declared job imports, and jobs queued under old names still run."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job, JobStatus
from rq.utils import import_attribute

from integrations.queue import NOTIFY, TICKETS, queue
from integrations.queue.jobs import JOBS, OPS_ALERT, RENAMED, JobSpec, current_name, declare
from integrations.sandbox import SlackSandbox
from integrations.settings import Settings
from tests.jobs import run_jobs, run_worker_burst
from workers.context import context, installed


@pytest.mark.parametrize("spec", list(JOBS.values()), ids=lambda s: s.func)
def test_every_declared_job_is_a_worker_function_taking_plain_data(spec: JobSpec) -> None:
    func = import_attribute(spec.func)
    assert callable(func)
    assert func.__module__.startswith("workers."), "jobs live in workers/"
    # Jobs take JSON-safe positional data, never a client or a context.
    for param in inspect.signature(func).parameters.values():
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, param


def test_kinds_are_unique_so_job_ids_never_collide_between_jobs() -> None:
    kinds = [spec.kind for spec in JOBS.values()]
    assert len(kinds) == len(set(kinds))


def test_a_second_declaration_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        declare(OPS_ALERT.func, NOTIFY, "another-kind")
    with pytest.raises(ValueError, match="unknown queue"):
        declare("workers.nowhere.job", "slow", "nowhere")


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_every_old_name_runs_a_declared_job(old: str) -> None:
    spec = RENAMED[old]
    assert JOBS[spec.func] is spec
    assert current_name(old) == spec.func
    with pytest.raises((ImportError, AttributeError, ValueError)):
        import_attribute(old)  # gone from the code: only the registry knows it


def _queued_by_the_previous_release(redis: Redis, func: str, *args: object) -> Job:
    # What the previous version's enqueue left in Redis: rq's own job hash naming the
    # function by its old dotted path.
    return queue(redis, NOTIFY).enqueue(func, *args)


def test_a_job_queued_under_an_old_name_runs_in_this_process(
    redis: Redis,
    worker_env: dict[str, str],
    slack_sandbox: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_OPS_CHANNEL", "#support-ops")
    job = _queued_by_the_previous_release(
        redis, "integrations.slack.jobs.ops_alert", "queued before the deploy"
    )
    run_jobs(redis)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert [m.text for m in slack_sandbox.channel_messages("#support-ops")] == [
        "queued before the deploy"
    ]


@pytest.mark.e2e
def test_a_job_queued_under_an_old_name_runs_in_the_procfile_worker(
    redis: Redis, worker_env: dict[str, str], slack_sandbox: SlackSandbox, repo_root: Path
) -> None:
    job = _queued_by_the_previous_release(
        redis, "integrations.slack.jobs.ops_alert", "queued before the deploy"
    )
    result = run_worker_burst({**worker_env, "SLACK_OPS_CHANNEL": "#support-ops"}, repo_root)
    assert result.returncode == 0, result.stderr
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert [m.text for m in slack_sandbox.channel_messages("#support-ops")] == [
        "queued before the deploy"
    ]
    assert queue(redis, TICKETS).count == 0


def test_the_worker_reads_settings_once_and_jobs_use_them(
    worker_env: dict[str, str], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    started_with = Settings.from_env("worker", {**worker_env, "SLACK_OPS_CHANNEL": "#ops-at-start"})
    with installed(started_with):
        monkeypatch.setenv("SLACK_OPS_CHANNEL", "#changed-later")
        assert context().settings.slack_ops_channel == "#ops-at-start"
    # Outside a worker (a command, a test calling a job): the environment as it is now.
    assert context().settings.slack_ops_channel == "#changed-later"
