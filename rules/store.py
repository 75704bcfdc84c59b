"""`RulesStore`: the current rules, reloaded when the file changes, never replaced by a broken file.

`current()` looks at the file's mtime and size at most once a second; a changed
file is loaded and compiled in full before it replaces the old rules (one
reference swap), so an evaluation sees either the old rules or the new ones.
A broken file keeps the last good rules, is logged at ERROR with its problems,
and shows in `/readyz` until it is fixed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from integrations import logs
from rules.engine import compile_rules
from rules.loader import load_rules
from rules.model import RuleSet
from rules.yaml_reader import RulesError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CHECK_INTERVAL = 1.0


def resolve_path(path: str | Path) -> Path:
    """A relative RULES_PATH is taken from the working directory, else from the app's folder."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    beside_app = ROOT / candidate
    return beside_app if beside_app.exists() else candidate


class RulesStore:
    """The rules from one file, kept current."""

    def __init__(
        self,
        path: str | Path,
        *,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = resolve_path(path)
        self.check_interval = check_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._rules = RuleSet(path=str(self.path))
        self._loaded = False
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at: float | None = None
        self.last_error: RulesError | None = None
        # When the rules in force were loaded (Unix time), for the console's Rules page.
        self.loaded_at: float | None = None
        self.reload()

    @property
    def loaded(self) -> bool:
        """Whether good rules were ever loaded (else current() has no rules: defaults only)."""
        return self._loaded

    def current(self) -> RuleSet:
        """The rules to use now, reloading the file first if it changed."""
        now = self.clock()
        due = self._checked_at is None or now - self._checked_at >= self.check_interval
        # One thread checks; the others use the rules they have rather than wait.
        if due and self._lock.acquire(blocking=False):
            try:
                self._checked_at = now
                if self._file_stamp() != self._stamp:
                    self._load()
            finally:
                self._lock.release()
        return self._rules

    def reload(self) -> bool:
        """Load the file now, whatever its stamp; True when it was good."""
        with self._lock:
            self._checked_at = self.clock()
            return self._load()

    def ready(self) -> tuple[bool, str]:
        """The /readyz check: ok, or the first problem of the broken file."""
        self.current()
        if self.last_error is None:
            return True, f"{self.path}: {self._rules.summary()}"
        problems = self.last_error.problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        state = "using the last good rules" if self._loaded else "no rules loaded"
        return False, f"{problems[0]}{more}; {state}"

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> bool:
        stamp = self._file_stamp()
        try:
            rules = load_rules(self.path)
            # Compile before the swap: evaluations never pay for it, or see half of it.
            compile_rules(rules)
        except RulesError as exc:
            self._stamp = stamp
            self.last_error = exc
            logs.event(
                log,
                "rules.load_failed",
                logging.ERROR,
                path=str(self.path),
                problems=[str(p) for p in exc.problems[:20]],
                count=len(exc.problems),
                kept="last good rules" if self._loaded else "none (defaults only)",
            )
            return False
        self._rules = rules
        self._loaded = True
        self._stamp = stamp
        self.last_error = None
        self.loaded_at = time.time()
        logs.event(
            log,
            "rules.loaded",
            path=str(self.path),
            version=rules.version,
            intake=len(rules.intake),
            ticket_event=len(rules.ticket_event),
            taxonomy=len(rules.taxonomy),
        )
        return True


_STORES: dict[str, RulesStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(path: str | Path) -> RulesStore:
    """The process's RulesStore for a file (one per path, shared by jobs and /readyz)."""
    key = str(resolve_path(path))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = RulesStore(key)
        return store


def readiness_check(path: str | Path) -> Callable[[], tuple[bool, str]]:
    """A /readyz check for the rules at `path` (loads them now: a broken file logs at start)."""
    return store_for(path).ready
