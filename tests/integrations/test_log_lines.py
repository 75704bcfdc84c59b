"""What the logs say: one line per rq job at info, and lines a person reads (LOG_FORMAT=text)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from integrations import logs
from integrations.settings import ConfigError, Settings

SECRET = "xoxb-1234-secret-token"


def add(a: int, b: int) -> int:
    """A job."""
    return a + b


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """What the hub's log handler writes, for the logs.configure() call of the test."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield buffer
    for handler in list(root.handlers):
        if getattr(handler, "_feedback_hub", False):
            root.removeHandler(handler)
    root.setLevel(level)


def configure(buffer: io.StringIO, *, level: str = "INFO", fmt: str = "json") -> None:
    """logs.configure(), its handler writing to `buffer` instead of this process's stderr."""
    logs.configure([SECRET], level, fmt=fmt)
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_feedback_hub", False):
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(buffer)


class Worker(SimpleWorker):
    """rq's in-process worker, without the channel for remote commands.

    Stopping a worker joins that channel's thread, which may sit out its 60-second poll.
    """

    def subscribe(self) -> None:
        pass


def run_one_job(redis: Redis) -> str:
    queue = Queue("tests-log-lines", connection=redis)
    job = queue.enqueue(add, 2, 3)
    Worker([queue], connection=redis).work(burst=True, logging_level="INFO")
    assert job.return_value() == 5
    return job.id


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_job_rq_runs_is_one_line_at_info(redis: Redis, stderr: io.StringIO) -> None:
    configure(stderr)
    job_id = run_one_job(redis)

    about_job = [line for line in lines(stderr) if job_id in json.dumps(line)]
    assert [line["event"] for line in about_job] == ["rq.job.done"]
    done = about_job[0]
    assert done["level"] == "info"
    assert done["job"] == job_id
    assert done["queue"] == "tests-log-lines"
    assert isinstance(done["seconds"], float) and done["seconds"] >= 0
    said = stderr.getvalue()
    for chatter in ("Job OK", "Successfully completed", "result is kept", "cleaning registries"):
        assert chatter not in said


def test_at_debug_rqs_other_lines_are_there_as_debug(redis: Redis, stderr: io.StringIO) -> None:
    configure(stderr, level="DEBUG")
    job_id = run_one_job(redis)

    about_job = [line for line in lines(stderr) if job_id in json.dumps(line)]
    levels = {str(line["event"]).split(" ")[0]: line["level"] for line in about_job}
    assert levels["rq.job.done"] == "info"
    completed = [line for line in lines(stderr) if "Successfully completed" in str(line["event"])]
    assert [line["level"] for line in completed] == ["debug"]


def test_text_lines_are_one_readable_line_with_the_fields_and_no_secret(
    stderr: io.StringIO,
) -> None:
    configure(stderr, fmt="text")
    log = logging.getLogger("tests.text")
    logs.event(log, "report.filed", ticket=12, group="Billing", note=f"token {SECRET}")
    logs.event(log, "rules.unknown_target", logging.ERROR, name="Biling", rules=[1, 2])

    first, second = stderr.getvalue().splitlines()
    assert first.endswith(
        'info    report.filed  ticket=12 group=Billing note="token [redacted]"  (tests.text)'
    )
    assert first[:8].count(":") == 2  # the time, HH:MM:SS
    assert "error   rules.unknown_target  name=Biling rules=[1, 2]  (tests.text)" in second
    assert "\x1b[" not in stderr.getvalue()  # not a terminal: no colour codes
    assert SECRET not in stderr.getvalue()


def test_text_lines_are_coloured_for_a_terminal() -> None:
    formatter = logs.TextFormatter(logs.Redactor(), colour=True)
    record = logging.LogRecord("tests.text", logging.WARNING, __file__, 1, "queue.slow", (), None)
    line = formatter.format(record)
    assert "\x1b[33mwarning" in line
    assert "\x1b[1mqueue.slow\x1b[0m" in line


def test_log_format_is_json_unless_text_is_asked_for() -> None:
    assert Settings.from_env("cli", {}).log_format == "json"
    assert Settings.from_env("cli", {"LOG_FORMAT": "TEXT"}).log_format == "text"
    with pytest.raises(ConfigError, match=r"^LOG_FORMAT is malformed: expected json"):
        Settings.from_env("cli", {"LOG_FORMAT": "pretty"})
