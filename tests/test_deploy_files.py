"""The deploy files agree: app.json, compose.yaml, the Dockerfile, the Procfile and the README.

They describe the same hub several times over; this keeps them from drifting apart. (The
image itself is built only where a Docker engine runs; the Dockerfile's entrypoint is
run here, as a shell command, against the Procfile.)
"""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from integrations.settings import REQUIRED, VARIABLES
from tests import REPO_ROOT
from workers.procs import process_env, procfile

APP = json.loads((REPO_ROOT / "app.json").read_text())
COMPOSE = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
README = (REPO_ROOT / "README.md").read_text()


def readme_variables() -> set[str]:
    """The variables the README's configuration table lists (first column)."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (`[A-Z][A-Z0-9_]*`.*?) \|", section, re.M):
        names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", row))
    return names


def exec_form(instruction: str) -> list[str]:
    """A Dockerfile instruction's JSON (exec form) argument list."""
    found = re.search(rf"^{instruction} (\[.*\])$", DOCKERFILE, re.M)
    assert found, f"the Dockerfile has no {instruction} in exec form"
    args: list[str] = json.loads(found[1])
    return args


def test_app_json_lists_every_variable_of_the_readme_and_the_settings() -> None:
    documented = readme_variables()
    in_app = set(APP["env"])
    assert in_app - documented == set(), "in app.json, not in the README's configuration table"
    assert documented - in_app == set(), "in the README's configuration table, not in app.json"
    assert set(VARIABLES) - in_app == set(), "read by integrations/settings.py, not in app.json"
    for name, spec in APP["env"].items():
        assert spec["description"].strip(), f"{name} has no description"
        assert isinstance(spec["required"], bool), f"{name}: say whether it is required"


def test_app_json_requires_what_the_processes_need_and_generates_the_secret_key() -> None:
    needed = {*REQUIRED["web"], *REQUIRED["worker"]} - {"REDIS_URL"}
    required = {name for name, spec in APP["env"].items() if spec["required"]}
    assert needed <= required
    # The Redis add-on sets REDIS_URL; the person deploying is told it must not evict.
    assert APP["env"]["REDIS_URL"]["required"] is False
    assert "noeviction" in APP["env"]["REDIS_URL"]["description"]
    assert [a["plan"].split(":")[0] for a in APP["addons"]] == ["heroku-redis"]
    generated = {name for name, spec in APP["env"].items() if spec.get("generator") == "secret"}
    assert generated == {"SECRET_KEY"}


def test_app_json_formation_and_compose_services_are_the_procfile_process_types() -> None:
    types = set(procfile())
    assert types == {"web", "worker", "release"}
    # Heroku runs `release` itself before each deploy: it has no dynos.
    assert set(APP["formation"]) == types - {"release"}
    hub_services = {
        name: service for name, service in COMPOSE["services"].items() if "build" in service
    }
    assert {name: s["command"] for name, s in hub_services.items()} == {t: t for t in types}
    for name, service in hub_services.items():
        for variable in service.get("environment", {}):
            assert variable in readme_variables(), f"compose {name} sets undocumented {variable}"
        if name != "release":
            wanted = {"condition": "service_completed_successfully"}
            assert service["depends_on"]["release"] == wanted


def test_compose_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    urls = {s["environment"]["REDIS_URL"] for s in COMPOSE["services"].values() if "build" in s}
    assert urls == {"redis://redis:6379/0"}


def test_the_image_is_slim_runs_as_a_user_and_its_entrypoint_runs_the_procfile() -> None:
    assert re.search(r"^FROM python:3\.\d+-slim$", DOCKERFILE, re.M)
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] != "root"
    entrypoint = exec_form("ENTRYPOINT")
    assert exec_form("CMD") == ["web"]

    # The entrypoint as the image runs it, here, for the release process type.
    env = process_env({"RULES_PATH": "rules/default.yml", "FEEDBACK_HUB_DOTENV": "/absent"})
    env = {k: v for k, v in env.items() if not k.startswith("ZENDESK_")}
    done = subprocess.run(
        [*entrypoint, "release"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rules/default.yml: ok: ")

    unknown = subprocess.run(
        [*entrypoint, "scheduler"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 64
    assert "no process type 'scheduler' in the Procfile" in unknown.stderr


def test_heroku_installs_the_hub_with_its_run_dependencies_only() -> None:
    lines = [
        line
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["."]
