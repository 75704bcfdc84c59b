"""Structured logs: one event name plus ids, as one JSON object a line, never a secret."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import IO, Any

_REDACTED = "[redacted]"
# json.dumps with options builds an encoder per call; the web process logs a line a request.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


# The keys every line has; fields are written beside them, never over them.
LINE_KEYS = frozenset({"ts", "level", "logger", "event", "exception"})


class Redactor:
    """Replaces every configured secret value in text with [redacted]."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s}
        # JSON lines are scrubbed after encoding: a secret with a quote or a backslash
        # appears there escaped, so that form is replaced too.
        values |= {json.dumps(s)[1:-1] for s in values}
        # Longest first, so a secret that contains another is removed whole.
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, event and the fields given."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()
        # The timestamp has whole seconds: formatted once a second, not once a line
        # (second and text swapped together, as one tuple, for the threads that share it).
        self._stamp = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line (secrets redacted)."""
        second = int(record.created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
        entry: dict[str, Any] = {
            "ts": stamp[1],
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                # A field never replaces the line's own keys (a field named `event` once
                # hid the event name): it is kept beside them as `field_<name>`.
                entry[f"field_{name}" if name in LINE_KEYS else name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(_ENCODER.encode(entry))


class BatchedStreamHandler(logging.StreamHandler[IO[str]]):
    """Formats in the caller's thread; a background thread writes the lines, many per write.

    In the web process every accepted report logs a line. Written one by one, each line was
    a system call made while holding the handler's lock, and under load the request threads
    queued on that lock and on the GIL around the write, many times what formatting the line
    costs (measured: docs/slack.md). Here a line is appended to a queue, and the queue is
    written `interval` seconds after its first line, with every line that joined it
    meanwhile (an idle process's writer sleeps). An ERROR or worse is written at once, with
    everything before it; so is what is left when the process exits (logging.shutdown
    flushes every handler at exit). A process killed outright (SIGKILL) loses at most the
    last `interval` of INFO lines, never an error.
    """

    def __init__(
        self, stream: IO[str], interval: float = 0.05, immediate: int = logging.ERROR
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.immediate = immediate
        self._lines: deque[str] = deque()
        self._write_lock = threading.Lock()
        # Whether this process's writer thread runs: a forked child has none until it logs,
        # and none of its parent's queued lines.
        self._writing = False
        # Set when a line is queued: an idle process's writer sleeps instead of polling.
        self._queued = threading.Event()
        os.register_at_fork(after_in_child=self._forked)

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle holds the handler's lock around emit; appending to a deque is
        # thread-safe, and writing takes its own lock.
        passed: Any = self.filter(record)
        if isinstance(passed, logging.LogRecord):  # Python 3.12: a filter may replace it
            record = passed
        if passed:
            self.emit(record)
        return bool(passed)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= self.immediate:
            self.flush()
        else:
            if not self._queued.is_set():
                self._queued.set()
            if not self._writing:
                self._start_writer()

    def flush(self) -> None:
        """Write every line queued so far, in order, in one write."""
        with self._write_lock:
            lines = []
            while self._lines:
                lines.append(self._lines.popleft())
            if lines and self.stream and not getattr(self.stream, "closed", False):
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()

    def _forked(self) -> None:
        # The parent's writer may have held the lock as it forked: the child's is new.
        self._write_lock = threading.Lock()
        self._queued = threading.Event()
        self._lines.clear()
        self._writing = False

    def _start_writer(self) -> None:
        with self._write_lock:
            if self._writing:
                return
            self._writing = True
        threading.Thread(target=self._write_every_interval, name="log-writer", daemon=True).start()

    def _write_every_interval(self) -> None:
        while True:
            self._queued.wait()
            # Let the lines of the next `interval` join the first one in a single write.
            time.sleep(self.interval)
            # Cleared before the queue is drained: a line queued after the drain sets it again.
            self._queued.clear()
            # A broken or closed stream (as StreamHandler.emit meets it): the lines are
            # lost either way; the writer stays, for a stream that comes back.
            with contextlib.suppress(OSError, ValueError):
                self.flush()


class TextFormatter(JsonFormatter):
    """One readable line a record, for a person at a terminal (LOG_FORMAT=text, `make run`).

    `12:04:05 info  report.filed  ticket=12 group=Billing  (workers.intake)`: the time,
    the level, the event and its fields as key=value; coloured when `colour` is set.
    Secrets are redacted as in the JSON lines.
    """

    COLOURS = {"debug": "2", "info": "32", "warning": "33", "error": "31", "critical": "1;31"}

    def __init__(self, redact: Redactor | None = None, *, colour: bool = False) -> None:
        super().__init__(redact)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line (a traceback, if any, on the lines after it)."""
        level = record.levelname.lower()
        event = record.getMessage().replace("\n", " ")
        fields = getattr(record, "fields", None)
        pairs = []
        for name, value in (fields or {}).items() if isinstance(fields, dict) else ():
            text = value if isinstance(value, str) else _ENCODER.encode(value)
            if isinstance(value, str) and (not value or any(c in value for c in ' "=')):
                text = _ENCODER.encode(value)
            pairs.append(f"{name}={text}")
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        if self.colour:
            tint = self.COLOURS.get(level, "0")
            head = f"\x1b[2m{clock}\x1b[0m \x1b[{tint}m{level:<7}\x1b[0m \x1b[1m{event}\x1b[0m"
            tail = f"  \x1b[2m({record.name})\x1b[0m"
        else:
            head, tail = f"{clock} {level:<7} {event}", f"  ({record.name})"
        line = head + ("  " + " ".join(pairs) if pairs else "") + tail
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line)


# rq's worker writes several INFO lines for each job it runs (taken, "Successfully
# completed", "Job OK", "result is kept for N seconds"). Its messages, by format string:
_RQ_COMPLETED = (
    "Successfully completed job %s in %ss on worker %s",
    "Successfully completed %s job",
)
_RQ_PER_JOB = (
    "Worker %s: %s: %s (%s)",  # taken from a queue (with its description), and "Job OK"
    "Worker %s: %s: %s",  # taken from a queue
    "Worker %s: job %s result",  # "is kept for N seconds", "discarded immediately", ...
    "Worker %s: cleaning ",  # registries, on every maintenance pass
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RqJobLines(logging.Filter):
    """rq's lines for one job become one INFO line, `rq.job.done` with the job, its queue and
    seconds; the others are DEBUG (shown only when the hub logs at DEBUG).

    A filter on rq's logger rather than a patched rq: rq decides what happens, the hub only
    how much of it is said. Failures are untouched (rq logs them as errors, with the reason).
    """

    def __init__(self) -> None:
        super().__init__()
        # "Successfully completed" comes just before "Job OK", in the same process and thread.
        self._seconds = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite "Job OK" as the job's one line; demote the rest of the per-job lines."""
        msg = str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        if msg.startswith(_RQ_COMPLETED) and len(args) >= 2:
            self._seconds.value = args[1]
            return self._demote(record)
        if msg == "Worker %s: %s: %s (%s)" and len(args) == 4 and _plain(args[2]) == "Job OK":
            seconds = getattr(self._seconds, "value", None)
            self._seconds.value = None
            fields: dict[str, Any] = {"job": _plain(args[3]), "queue": _plain(args[1])}
            if seconds is not None:
                fields["seconds"] = round(_seconds(seconds), 3)
            record.msg, record.args = "rq.job.done", ()
            record.fields = fields
            return True
        if msg.startswith(_RQ_PER_JOB):
            return self._demote(record)
        return True

    @staticmethod
    def _demote(record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def _plain(value: object) -> str:
    return _ANSI.sub("", str(value))


def _seconds(value: object) -> float:
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def configure(
    secrets: Iterable[str] = (),
    level: str = "INFO",
    *,
    batched: bool = False,
    fmt: str = "json",
) -> None:
    """Send the hub's logs (and the libraries') to stderr as JSON lines, secrets scrubbed.

    `batched`: lines are written by a background thread, many per write
    (BatchedStreamHandler): for the web process, where every request logs.
    `fmt`: "json" (production), or "text" for a person reading (LOG_FORMAT=text; `make
    run` sets it), coloured when stderr is a terminal.
    """
    handler: logging.StreamHandler[IO[str]] = (
        BatchedStreamHandler(sys.stderr) if batched else logging.StreamHandler(sys.stderr)
    )
    if fmt == "text":
        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        handler.setFormatter(TextFormatter(Redactor(secrets), colour=colour))
    else:
        handler.setFormatter(JsonFormatter(Redactor(secrets)))
    rq_worker = logging.getLogger("rq.worker")
    for old_filter in list(rq_worker.filters):
        if isinstance(old_filter, RqJobLines):
            rq_worker.removeFilter(old_filter)
    rq_worker.addFilter(RqJobLines())
    # What the JSON lines never show, each record need not collect: the caller's file and
    # line (a walk up the stack; the logging HOWTO's "Optimization" section names the
    # switch). Thread and process stay: gunicorn's own lines format `%(process)d`, and a
    # record without it fails to format ("Worker exiting" became a traceback).
    logging._srcfile = None
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_feedback_hub", False):
            root.removeHandler(old)
            old.flush()
    handler._feedback_hub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def event(
    logger: logging.Logger, event_name: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one named event with its ids, e.g. event(log, "zendesk.ticket.created", ticket=1)."""
    logger.log(level, event_name, extra={"fields": fields})
