"""The route registry is what the web process serves and what the README documents."""

from __future__ import annotations

import re

from flask import Flask

import integrations
from integrations.slack.commands import PATH, SlashCommands
from tests import REPO_ROOT

HEALTH = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def served(app: Flask) -> set[tuple[str, str]]:
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert isinstance(app.wsgi_app, SlashCommands)
    return routes | {("POST", PATH)}


def test_the_app_serves_exactly_the_registered_routes(app: Flask) -> None:
    registered = {(r.method, r.path) for r in integrations.ROUTES}
    assert served(app) == registered | HEALTH


def test_the_readme_documents_every_route() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(GET|POST) (/[^`]*)` \|", readme, re.M))
    wanted = {(r.method, re.sub(r"<\w+>", "<id>", r.path)) for r in integrations.ROUTES}
    assert wanted | HEALTH == documented
