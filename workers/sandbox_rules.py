"""The development Zendesk sandbox kept in step with the rules file (`feedback-hub dev`).

A new sandbox has one group, Support. The default rules route billing reports to
Billing, bugs to Engineering, crashes to Mobile: without those groups every
ticket would be filed unrouted (`rules.unknown_target`). So dev gives the sandbox
the groups, custom ticket fields and agents the rules name (rules/zendesk_names.py), at
start and again whenever the rules file changes, as the hub's own processes
reload it (rules/store.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from integrations import logs
from integrations.sandbox import ZendeskSandbox
from integrations.zendesk.gateway import GROUPS_FRESH_KEY, GROUPS_KEY
from rules.model import RuleSet
from rules.store import RulesStore
from rules.zendesk_names import named_in

log = logging.getLogger(__name__)


def seed_sandbox(sandbox: ZendeskSandbox, ruleset: RuleSet) -> list[str]:
    """Add the groups, custom fields and agents the rules name and the sandbox lacks.

    Returns what was added ("group Billing", "custom field app_version (360001000001)",
    "agent lee@example.com"). Nothing is removed: tickets may still refer to it.
    """
    added: list[str] = []
    for named in named_in(ruleset):
        if named.kind == "group":
            with sandbox.lock:
                names = {str(g["name"]).casefold() for g in sandbox.groups.values()}
            if named.name.casefold() not in names:
                sandbox.add_group(named.name, f"named by {named.named_by} ({named.where})")
                added.append(f"group {named.name}")
        elif named.kind == "custom field" and named.field_id is not None:
            with sandbox.lock:
                known = named.field_id in sandbox.ticket_fields
            if not known:
                title = named.name if not named.name.isdigit() else f"Field {named.name}"
                sandbox.add_ticket_field(title, named.field_id)
                added.append(f"custom field {title} ({named.field_id})")
        elif named.kind == "assignee" and "@" in named.name:
            # An agent named by id cannot be made with that id; by email it can.
            user = sandbox.user_by_email(named.name)
            if user is None:
                sandbox.add_user(named.name.split("@")[0], named.name.lower(), role="agent")
                added.append(f"agent {named.name}")
            elif user["role"] == "end-user":
                with sandbox.lock:
                    user["role"] = "agent"
                added.append(f"agent {named.name} (was an end user)")
    return added


class SandboxFollower:
    """Seeds the sandbox from the rules now, and again each time the file changes."""

    def __init__(
        self,
        sandbox: ZendeskSandbox,
        rules_path: str,
        *,
        redis: Redis | None = None,
        say: Callable[[str], None] = lambda _: None,
        interval: float = 1.0,
    ) -> None:
        self.sandbox = sandbox
        self.store = RulesStore(rules_path, check_interval=interval)
        self.redis = redis
        self.say = say
        self.interval = interval
        self._seeded: RuleSet | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> list[str]:
        """Seed from the current rules if they changed since the last time; what was added."""
        rules = self.store.current()
        if rules is self._seeded or not self.store.loaded:
            return []
        self._seeded = rules
        added = seed_sandbox(self.sandbox, rules)
        if added:
            self._forget_cached_groups()
            self.say(f"Zendesk sandbox: added what {rules.path} names: {', '.join(added)}")
            logs.event(log, "sandbox.seeded", path=rules.path, added=added)
        return added

    def start(self) -> None:
        """Seed now, then follow the file in a background thread until stop()."""
        self.sync()
        self._thread = threading.Thread(target=self._follow, name="sandbox-rules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # a dev convenience must never stop the hub
                logs.event(log, "sandbox.seed_failed", logging.WARNING, error=repr(exc))

    def _forget_cached_groups(self) -> None:
        # The worker keeps the account's group list for an hour and refetches it at most
        # every few minutes: a group added now would be missed until then.
        if self.redis is None:
            return
        try:
            self.redis.delete(GROUPS_KEY, GROUPS_FRESH_KEY)
        except RedisError as exc:
            logs.event(log, "sandbox.cache_clear_failed", logging.WARNING, error=repr(exc))
