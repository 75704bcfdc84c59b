"""What a running `feedback-hub dev` tells `feedback-hub simulate`: URLs and signing secrets.

A JSON file, var/dev.json by default (git-ignored); FEEDBACK_HUB_DEV_STATE moves it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_VARIABLE = "FEEDBACK_HUB_DEV_STATE"


def state_path() -> Path:
    """Where the dev state file lives."""
    return Path(os.environ.get(STATE_VARIABLE) or ROOT / "var" / "dev.json")


def write_state(state: dict[str, Any]) -> Path:
    """Write the state file, readable by this user only (it holds local secrets)."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def read_state() -> dict[str, Any]:
    """The state of the running dev hub, or {} when none is running."""
    try:
        data = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_state() -> None:
    """Remove the state file (the dev hub stopped)."""
    state_path().unlink(missing_ok=True)
