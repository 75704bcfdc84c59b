"""The enqueue helper and a real `rq worker` process (the Procfile's worker command)."""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from rq import Callback
from rq.job import Job
from rq.scripts import _build_hset_args
from rq.utils import utcparse as parse_utc

from integrations.queue import (
    DEDUPE_SECONDS,
    DEFAULT_RETRY,
    JOB_FAILED,
    JOB_TIMEOUT,
    KEEP_FOREVER,
    TICKETS,
    JobTemplate,
    enqueue_once,
    job_id,
    queue,
)
from integrations.queue.enqueue import check_rq_format
from integrations.queue.jobs import JobSpec
from tests.jobs import run_worker_burst
from workers.procs import process_env, procfile_args


def test_same_key_same_job_id() -> None:
    assert job_id("file-report", "abc") == job_id("file-report", "abc")
    assert job_id("file-report", "abc") != job_id("file-report", "abd")
    assert job_id("file-report", "abc") != job_id("notify", "abc")


def test_job_kind_must_be_a_valid_rq_id() -> None:
    with pytest.raises(ValueError, match="must match"):
        job_id("file report", "abc")


@pytest.mark.e2e
def test_enqueued_job_runs_once_in_a_real_worker(
    redis: Redis, env: dict[str, str], repo_root: Path
) -> None:
    first = enqueue_once(
        redis, JobSpec("tests.jobs.record", TICKETS, "t"), "report-1", key="report-1"
    )
    again = enqueue_once(
        redis, JobSpec("tests.jobs.record", TICKETS, "t"), "report-1", key="report-1"
    )
    other = enqueue_once(
        redis, JobSpec("tests.jobs.record", TICKETS, "t"), "report-2", key="report-2"
    )
    assert first.created and not again.created and other.created
    assert first.job_id == again.job_id
    assert queue(redis, TICKETS).count == 2

    result = run_worker_burst(env, repo_root)
    assert result.returncode == 0, result.stderr

    assert redis.hgetall("test:runs") == {b"report-1": b"1", b"report-2": b"1"}
    # Enqueued again after it ran: still refused, so it never runs twice.
    assert not enqueue_once(
        redis, JobSpec("tests.jobs.record", TICKETS, "t"), "report-1", key="report-1"
    ).created
    assert queue(redis, TICKETS).count == 0


def test_worker_refuses_to_start_without_zendesk(env: dict[str, str], repo_root: Path) -> None:
    full_env = process_env(env)
    del full_env["ZENDESK_URL"]
    result = subprocess.run(
        [*procfile_args("worker", full_env), "--burst"],
        env=full_env,
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "feedback-hub: ZENDESK_URL is not set: expected https://<subdomain>.zendesk.com "
        "(any http(s) base URL works)"
    ]


def test_unknown_queue_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="the hub's queues are tickets, events, notify"):
        queue(redis, "nope")


def test_outage_retries_last_about_twelve_hours(redis: Redis) -> None:
    # The README and docs/operations.md promise this; attachments are kept longer (7 days).
    from rq.job import Job

    from integrations.queue import DEFAULT_RETRY

    job = Job.create(func="tests.jobs.record", args=("x",), connection=redis, retry=DEFAULT_RETRY)
    waits = []
    while job.retries_left:
        waits.append(job.get_retry_interval())  # what rq waits before each retry
        job.retries_left -= 1
    assert waits[:3] == [10, 30, 60]  # a short blip is retried within seconds
    assert max(waits) == 3600
    assert 11 * 3600 <= sum(waits) <= 13 * 3600


def test_enqueue_works_after_redis_forgets_its_scripts(redis: Redis) -> None:
    # A restarted Redis (or SCRIPT FLUSH) has no scripts: the enqueue loads it and goes on.
    redis.script_flush()
    first = enqueue_once(redis, JobSpec("tests.jobs.record", TICKETS, "t"), "a", key="after-flush")
    again = enqueue_once(redis, JobSpec("tests.jobs.record", TICKETS, "t"), "a", key="after-flush")
    assert first.created and not again.created
    assert queue(redis, TICKETS).get_job_ids() == [first.job_id]


def test_job_template_writes_the_hash_rq_writes(redis: Redis) -> None:
    # The hub fills in a job's own fields on a template rq built; rq must not see a difference.
    q = queue(redis, TICKETS)
    args = ({"subject": "The export button does nothing", "tags": ["slack"]},)
    job = q.create_job(
        "workers.intake.file_report",
        args=args,
        job_id="file-report-abc",
        description="file_report file-report-abc",
        retry=DEFAULT_RETRY,
        timeout=JOB_TIMEOUT,
        result_ttl=DEDUPE_SECONDS,
        failure_ttl=KEEP_FOREVER,
        on_failure=Callback(JOB_FAILED),
        meta={},
    )
    q._prepare_for_queue(job)
    expected = _pairs(_build_hset_args(job))

    template = JobTemplate(q, "workers.intake.file_report", DEFAULT_RETRY, JOB_TIMEOUT, {})
    got = _pairs(template.fields_for(args, description="file_report file-report-abc"))

    for stamp in ("created_at", "enqueued_at"):
        apart = parse_utc(got.pop(stamp)) - parse_utc(expected.pop(stamp))
        assert abs(apart.total_seconds()) < 5
    # The job's data is the same zlib stream, compressed with less memory: what rq reads
    # back (zlib.decompress) is what it wrote.
    assert zlib.decompress(got.pop("data")) == zlib.decompress(expected.pop("data"))
    assert got == expected


def test_a_large_job_reads_back_whole(redis: Redis) -> None:
    text = "".join(f"line {i}: the export button does nothing\n" for i in range(20_000))
    enqueued = enqueue_once(redis, JobSpec("tests.jobs.record", TICKETS, "t"), text, key="big")
    job = queue(redis, TICKETS).fetch_job(enqueued.job_id)
    assert job is not None and job.args == (text,)


def test_a_job_enqueued_from_the_template_reads_back_as_rq_made_it(redis: Redis) -> None:
    enqueued = enqueue_once(redis, JobSpec("tests.jobs.record", TICKETS, "t"), "r-1", key="r-1")
    job = queue(redis, TICKETS).fetch_job(enqueued.job_id)
    assert job is not None
    assert (job.func_name, job.args, job.kwargs) == ("tests.jobs.record", ("r-1",), {})
    assert job.description == f"record {enqueued.job_id}"
    assert job.origin == TICKETS and job.get_status() == "queued"
    assert job.retries_left == len(DEFAULT_RETRY.intervals)
    assert job.timeout == JOB_TIMEOUT and job.result_ttl == DEDUPE_SECONDS
    assert job.failure_callback is not None


def _pairs(fields: list[Any]) -> dict[str, Any]:
    return dict(zip(fields[::2], fields[1::2], strict=True))


def test_job_timestamps_are_written_as_rq_writes_them() -> None:
    from rq.utils import now, utcformat

    from integrations.queue.wire import utc_stamp

    before = utcformat(now())
    stamp = utc_stamp()
    after = utcformat(now())
    assert len(stamp) == len(before) and stamp.endswith("Z")
    assert before <= stamp <= after


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000))
def test_job_data_is_a_zlib_stream_that_reads_back(data: bytes) -> None:
    from integrations.queue.wire import STORE_BELOW, deflate

    written = deflate(data)
    assert zlib.decompress(written) == data
    # What zlib itself accepts, and its own streaming decompressor too.
    reader = zlib.decompressobj()
    assert reader.decompress(written) + reader.flush() == data and reader.eof
    if len(data) < STORE_BELOW:
        assert len(written) == len(data) + 11


def test_the_rq_format_check_passes_with_the_installed_rq(redis: Redis) -> None:
    check_rq_format(redis)


def test_the_rq_format_check_stops_a_worker_whose_rq_reads_jobs_differently(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NewerJob(Job):
        def restore(self, raw_data: Any) -> Any:
            super().restore(raw_data)
            self.origin = "renamed-by-a-newer-rq"

    monkeypatch.setattr("integrations.queue.enqueue.Job", NewerJob)
    with pytest.raises(RuntimeError, match=r"pin rq to the version in pyproject\.toml"):
        check_rq_format(redis)
