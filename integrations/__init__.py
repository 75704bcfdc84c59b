"""What the integrations share, and the registry of every route the web process serves.

A new source adds one folder, its lines in ROUTES, its jobs in queue/jobs.py and one
test folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Blueprint, Flask


@dataclass(frozen=True)
class Route:
    """One route: its method and path, and the "module:attribute" that serves it."""

    method: str
    path: str
    served_by: str

    def target(self) -> Any:
        """The blueprint, or the function that installs a front of its own."""
        module, _, attr = self.served_by.partition(":")
        return getattr(import_module(module), attr)


# Every route of the integrations. POST /slack/commands is answered in front of Flask
# (`install`: on the event loop under gunicorn's asgi worker, Slack's 3 s); the others
# are Flask blueprints. The health routes (/healthz, /readyz, /metrics) are app.py's.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/slack/commands", "integrations.slack.commands:install"),
    Route("POST", "/slack/interactions", "integrations.slack.views:blueprint"),
    Route("POST", "/slack/events", "integrations.slack.views:blueprint"),
    Route("POST", "/zendesk/webhook", "integrations.zendesk.views:blueprint"),
    Route("POST", "/api/v1/bug-reports", "integrations.mobile.views:blueprint"),
    Route("GET", "/api/v1/bug-reports/<report_id>", "integrations.mobile.views:blueprint"),
    Route("GET", "/api/v1/openapi.yaml", "integrations.mobile.views:blueprint"),
    # The triage console (docs/console.md): it reads what the workers keep and calls their
    # operator actions, so its blueprint lives with them and is named here by path only.
    Route("GET", "/admin/", "workers.console.views:blueprint"),
    Route("GET", "/admin/signin", "workers.console.views:blueprint"),
    Route("GET", "/admin/signin/callback", "workers.console.views:blueprint"),
    Route("POST", "/admin/signout", "workers.console.views:blueprint"),
    Route("GET", "/admin/assets/<name>", "workers.console.views:blueprint"),
    Route("GET", "/admin/reports", "workers.console.views:blueprint"),
    Route("GET", "/admin/reports/rows", "workers.console.views:blueprint"),
    Route("GET", "/admin/api/reports", "workers.console.views:blueprint"),
    Route("GET", "/admin/reports/<report_id>", "workers.console.views:blueprint"),
    Route("GET", "/admin/dead-letters", "workers.console.views:blueprint"),
    Route("GET", "/admin/dead-letters/<job_id>", "workers.console.views:blueprint"),
    Route("POST", "/admin/dead-letters/<job_id>/replay", "workers.console.views:blueprint"),
    Route("POST", "/admin/dead-letters/replay-all", "workers.console.views:blueprint"),
    Route("GET", "/admin/rules", "workers.console.views:blueprint"),
    Route("POST", "/admin/rules/try", "workers.console.views:blueprint"),
    Route("GET", "/admin/health", "workers.console.views:blueprint"),
    Route("GET", "/admin/tags", "workers.console.views:blueprint"),
    Route("GET", "/admin/issues", "workers.console.views:blueprint"),
    Route("POST", "/admin/issues/<action>", "workers.console.views:blueprint"),
)


def blueprints() -> list[Blueprint]:
    """Every blueprint the routes name, once each, in order."""
    refs = dict.fromkeys(r.served_by for r in ROUTES if r.served_by.endswith(":blueprint"))
    return [Route("", "", ref).target() for ref in refs]


def fronts() -> list[Callable[[Flask], None]]:
    """The functions that put a route in front of Flask's dispatch (after the blueprints)."""
    refs = dict.fromkeys(r.served_by for r in ROUTES if not r.served_by.endswith(":blueprint"))
    return [Route("", "", ref).target() for ref in refs]
