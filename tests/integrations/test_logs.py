"""The web process's log lines: JSON, secrets scrubbed, written in batches off the request
threads, and none lost when the process exits."""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations import logs
from tests import REPO_ROOT

SECRET = "xoxb-1234-secret-token"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logs.BatchedStreamHandler(buffer, interval=0.05)
    handler.setFormatter(logs.JsonFormatter(logs.Redactor([SECRET])))
    logger = logging.getLogger("tests.batched")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield buffer
    logger.removeHandler(handler)


def _events(text: str) -> list[str]:
    return [json.loads(line)["event"] for line in text.splitlines()]


def _count_writes(stream: io.StringIO) -> list[str]:
    """Record each write made to `stream` (each is one system call on a real stream)."""
    writes: list[str] = []
    real_write = stream.write

    def write(text: str) -> int:
        writes.append(text)
        return real_write(text)

    stream.write = write  # type: ignore[method-assign]
    return writes


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the lines were not written in time"
        time.sleep(0.01)


def test_lines_from_many_threads_are_all_written_in_a_few_writes(stream: io.StringIO) -> None:
    log = logging.getLogger("tests.batched")
    writes = _count_writes(stream)

    def send(n: int) -> None:
        for i in range(250):
            logs.event(log, "slack.command.queued", thread=n, i=i, token=SECRET)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _wait_for(lambda: stream.getvalue().count("\n") == 2000)

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {(e["thread"], e["i"]) for e in entries} == {
        (n, i) for n in range(8) for i in range(250)
    }
    for n in range(8):  # each thread's lines in the order it logged them
        assert [e["i"] for e in entries if e["thread"] == n] == list(range(250))
    assert SECRET not in stream.getvalue() and entries[0]["token"] == "[redacted]"
    assert len(writes) < 100, f"2,000 lines took {len(writes)} writes"
    for entry in entries[::199]:  # UTC, to the second, when it was logged
        logged = datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - logged).total_seconds()) < 10


def test_an_error_is_written_at_once_with_the_lines_before_it(stream: io.StringIO) -> None:
    log = logging.getLogger("tests.batched")
    logs.event(log, "first")
    logs.event(log, "second")
    logs.event(log, "zendesk.down", logging.ERROR)
    # No waiting: the error and what came before it are already there, in order.
    assert _events(stream.getvalue()) == ["first", "second", "zendesk.down"]


def test_an_idle_writer_writes_nothing_and_wakes_for_the_next_line(stream: io.StringIO) -> None:
    log = logging.getLogger("tests.batched")
    handler = log.handlers[0]
    flushes = []
    real_flush = handler.flush

    def flush() -> None:
        flushes.append(time.monotonic())
        real_flush()

    handler.flush = flush  # type: ignore[method-assign]
    logs.event(log, "first")
    _wait_for(lambda: _events(stream.getvalue()) == ["first"])
    idle_from = time.monotonic()
    time.sleep(0.5)  # ten intervals with nothing queued: the writer does not poll
    assert [t for t in flushes if t > idle_from] == []
    logs.event(log, "second")
    _wait_for(lambda: _events(stream.getvalue()) == ["first", "second"])


def test_lines_still_queued_when_the_process_exits_are_written(tmp_path: Path) -> None:
    stderr = _run(
        tmp_path,
        "for i in range(5000):\n    logs.event(log, 'slack.command.queued', i=i)\n",
    )
    numbers = [json.loads(line)["i"] for line in stderr.splitlines()]
    assert numbers == list(range(5000))


def test_a_forked_child_writes_its_own_lines_and_not_its_parents(tmp_path: Path) -> None:
    stderr = _run(
        tmp_path,
        "logs.event(log, 'parent.line')  # still queued when the process forks\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    logs.event(log, 'child.line')\n"
        "    logging.getLogger().handlers[-1].flush()\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n",
    )
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    assert sorted(_events("\n".join(lines))) == ["child.line", "parent.line"]


def _run(tmp_path: Path, body: str) -> str:
    """Run `body` in a new Python process with the web process's batched logs; its stderr."""
    script = tmp_path / "script.py"
    script.write_text(
        "import logging, os\n"
        "from integrations import logs\n"
        "logs.configure(batched=True)\n"
        "log = logging.getLogger('script')\n" + body
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    return done.stderr


def test_gunicorn_lines_still_format_after_the_hub_configures_logging(tmp_path: Path) -> None:
    # gunicorn's error log formats "[%(process)d]"; a record that skipped the pid made
    # "Worker exiting (pid: ...)" a formatting traceback on every worker's exit.
    stderr = _run(
        tmp_path,
        "import gunicorn.glogging\n"
        "handler = logging.StreamHandler()\n"
        "handler.setFormatter(logging.Formatter(gunicorn.glogging.Logger.error_fmt,"
        " gunicorn.glogging.Logger.datefmt))\n"
        "gunicorn_log = logging.getLogger('gunicorn.error')\n"
        "gunicorn_log.propagate = False\n"
        "gunicorn_log.addHandler(handler)\n"
        "gunicorn_log.warning('Worker exiting (pid: %s)', os.getpid())\n",
    )
    assert "Traceback" not in stderr and "TypeError" not in stderr
    line = next(ln for ln in stderr.splitlines() if "Worker exiting" in ln)
    pid = re.search(r"\] \[(\d+)\] \[WARNING\] Worker exiting \(pid: (\d+)\)", line)
    assert pid is not None, line
    assert pid.group(1) == pid.group(2)


def test_a_field_never_replaces_the_event_name() -> None:
    # `event=` once overwrote the line's event ("slack.event.queued" came out as the id).
    record = logging.LogRecord("hub", logging.INFO, __file__, 1, "slack.event.queued", (), None)
    record.fields = {"event": "Ev111-thread-9", "level": "x", "ticket": 7}
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["event"] == "slack.event.queued" and line["level"] == "info"
    assert (line["field_event"], line["field_level"], line["ticket"]) == ("Ev111-thread-9", "x", 7)


def _event_calls() -> Iterator[tuple[str, int, ast.Call]]:
    for folder in ("integrations", "rules", "workers"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                func = node.func if isinstance(node, ast.Call) else None
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "event"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "logs"
                ):
                    assert isinstance(node, ast.Call)
                    yield str(path.relative_to(REPO_ROOT)), node.lineno, node


def test_every_event_the_code_logs_is_named_and_no_field_takes_a_line_key() -> None:
    calls = list(_event_calls())
    assert len(calls) > 50  # the scan found the code's events
    for where, line, call in calls:
        name = call.args[1] if len(call.args) > 1 else None
        assert isinstance(name, ast.Constant) and isinstance(name.value, str), (where, line)
        clashing = {k.arg for k in call.keywords} & logs.LINE_KEYS
        assert not clashing, f"{where}:{line} passes {clashing}, which would hide a line key"


def test_a_secret_with_a_quote_or_backslash_is_scrubbed_from_json_lines() -> None:
    # JSON escapes them, so the line holds the secret in another form than the setting.
    secret = 'p4ss"w0rd\\x'
    formatter = logs.JsonFormatter(logs.Redactor([secret]))
    record = logging.LogRecord("hub", logging.ERROR, __file__, 1, "redis.failed", None, None)
    record.__dict__["fields"] = {"url": f"redis://:{secret}@cache:6379/0"}
    line = formatter.format(record)
    assert json.loads(line)["url"] == "redis://:[redacted]@cache:6379/0"
    assert "p4ss" not in line
