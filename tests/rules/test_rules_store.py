"""Reload: a changed rules file is used without a restart; a broken one keeps the last good."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from app import create_app
from integrations.settings import Settings
from rules.engine import evaluate
from rules.examples import report_from_data
from rules.store import RulesStore

GOOD_A = "intake:\n  - name: route\n    then: [{set_group: Alpha}]\n"
GOOD_B = (
    "intake:\n  - name: route\n    then: [{set_group: Bravo}]\n"
    "  - name: tag\n    then: [{add_tags: [b]}]\n"
)
BROKEN = "intake:\n  - name: route\n    then: [{set_grup: Alpha}]\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_stamp = [1_700_000_000_000_000_000]


def write(path: Path, text: str) -> None:
    """Replace the file as editors and deploys do (a new file renamed over the old one)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    # Distinct mtimes even on coarse filesystem clocks.
    _stamp[0] += 1_000_000_000
    os.utime(tmp, ns=(_stamp[0], _stamp[0]))
    os.replace(tmp, path)


def group_of(store: RulesStore) -> str | None:
    return evaluate(report_from_data({"text": "hi"}), store.current()).group


def test_a_changed_file_is_picked_up_after_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    write(path, GOOD_A)
    clock = Clock()
    store = RulesStore(path, clock=clock)
    assert group_of(store) == "Alpha"
    write(path, GOOD_B)
    clock.now += 0.5
    assert group_of(store) == "Alpha"  # looked at most once a second
    clock.now += 0.6
    assert group_of(store) == "Bravo"
    assert store.ready() == (True, f"{path}: 2 intake rules, 0 event rules, 0 taxonomy tags")


def test_a_broken_file_keeps_the_last_good_rules_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yml"
    write(path, GOOD_A)
    clock = Clock()
    store = RulesStore(path, clock=clock)
    write(path, BROKEN)
    clock.now += 2
    with caplog.at_level(logging.ERROR, logger="rules.store"):
        assert group_of(store) == "Alpha"
    (record,) = [r for r in caplog.records if r.getMessage() == "rules.load_failed"]
    assert record.levelno == logging.ERROR
    fields = record.__dict__["fields"]
    assert fields["problems"] == [
        f"{path}:3:13: unknown action 'set_grup'; expected one of: "
        "add_tags, remove_tags, set_group, set_assignee, set_priority, "
        "raise_priority, set_type, set_custom_field, notify, escalate, "
        "stop (did you mean 'set_group'?)"
    ]
    assert fields["kept"] == "last good rules"
    ok, detail = store.ready()
    assert not ok
    assert detail.startswith(f"{path}:3:13: unknown action 'set_grup'")
    assert detail.endswith("; using the last good rules")
    # Logged once, not on every look.
    clock.now += 2
    caplog.clear()
    store.current()
    assert not [r for r in caplog.records if r.getMessage() == "rules.load_failed"]
    # Fixed: used at once, and ready again.
    write(path, GOOD_B)
    clock.now += 2
    assert group_of(store) == "Bravo"
    assert store.ready()[0]
    assert store.last_error is None


def test_a_file_broken_from_the_start_routes_nothing_and_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    write(path, BROKEN)
    store = RulesStore(path)
    assert not store.loaded
    assert group_of(store) is None
    ok, detail = store.ready()
    assert not ok and detail.endswith("; no rules loaded")
    assert not RulesStore(tmp_path / "missing.yml").ready()[0]


def test_readers_see_the_old_rules_or_the_new_never_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    write(path, GOOD_A)
    store = RulesStore(path, check_interval=0)
    seen: set[tuple[str | None, tuple[str, ...]]] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                d = evaluate(report_from_data({"text": "hi"}), store.current())
                seen.add((d.group, d.tags))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(60):
            write(path, GOOD_B if i % 2 == 0 else GOOD_A)
            store.current()
    finally:
        done.set()
        for t in readers:
            t.join()
    assert not errors
    assert seen <= {("Alpha", ()), ("Bravo", ("b",))}
    assert ("Bravo", ("b",)) in seen


def test_readyz_shows_a_broken_rules_file(
    env: dict[str, str], tmp_path: Path, redis: object
) -> None:
    path = tmp_path / "rules.yml"
    write(path, BROKEN)
    settings = Settings.from_env("worker", {**env, "RULES_PATH": str(path)})
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["rules"].startswith(f"{path}:3:13: unknown action 'set_grup'")


def test_readyz_with_the_default_rules(env: dict[str, str], redis: object) -> None:
    settings = Settings.from_env("worker", env)
    response = create_app(settings).test_client().get("/readyz")
    assert response.json is not None
    assert response.json["checks"]["rules"].endswith("taxonomy tags")
    assert response.status_code == 200
