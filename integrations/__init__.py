"""One folder per outside system; this module lists the blueprints the web app registers.

A new source adds one folder, one line here and one test file.
"""

from __future__ import annotations

from importlib import import_module

from flask import Blueprint

# "module:attribute" of each integration's inbound blueprint.
BLUEPRINTS: tuple[str, ...] = (
    "integrations.slack.views:blueprint",
    "integrations.zendesk.views:blueprint",
    "integrations.mobile.views:blueprint",
)


def blueprints() -> list[Blueprint]:
    """Import and return every registered integration blueprint."""
    out = []
    for ref in BLUEPRINTS:
        module, _, attr = ref.partition(":")
        out.append(getattr(import_module(module), attr))
    return out
