"""The development sandboxes kept in step with the rules file (`feedback-hub dev`).

A new Zendesk sandbox has one group, Support. The default rules route billing reports to
Billing, bugs to Engineering, crashes to Mobile: without those groups every
ticket would be filed unrouted (`rules.unknown_target`). So dev gives the sandbox
the groups, custom ticket fields and agents the rules name (rules/zendesk_names.py), at
start and again whenever the rules file changes, as the hub's own processes
reload it (rules/store.py).

A new Slack sandbox has no channels, and the wall refuses internal posts to a channel
name the workspace does not list. So dev creates the channels the settings post to
(SLACK_OPS_CHANNEL, DIGEST_CHANNEL) at start, and the channels the rules post to
(rules/slack_names.py: notify, escalate, response_time nudge and breach) at start and on
each change, as a workspace's admins would have made them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from redis import Redis
from redis.exceptions import RedisError

from integrations import logs
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.slack.api import MISSING_CHANNEL_KEY, channel_name
from integrations.zendesk.gateway import GROUPS_FRESH_KEY, GROUPS_KEY
from rules.model import RuleSet
from rules.slack_names import channel_names
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


def create_channels(sandbox: SlackSandbox, channels: Iterable[str]) -> list[str]:
    """Create the channel names among `channels` the workspace lacks; returns them ("#eng").

    Ids ("C0123ABC") are left alone: a channel named by id exists already, or is a typo
    no name could fix.
    """
    created: list[str] = []
    for channel in channels:
        name = channel_name(channel)
        if name is None or f"#{name}" in created:
            continue
        with sandbox.lock:
            known = name in sandbox.channels
        if not known:
            sandbox.create_channels(name)
            created.append(f"#{name}")
    return created


def seed_slack(sandbox: SlackSandbox, ruleset: RuleSet) -> list[str]:
    """Create the channels the rules post to and the workspace lacks; returns them ("#eng")."""
    return create_channels(sandbox, channel_names(ruleset))


class SandboxFollower:
    """Seeds the sandboxes from the rules now, and again each time the file changes.

    `zendesk` and `slack` are the sandboxes dev started (None: a real account, left alone);
    `channels` are the Slack channels the settings name, by variable, created at start.
    """

    def __init__(
        self,
        zendesk: ZendeskSandbox | None,
        rules_path: str,
        *,
        slack: SlackSandbox | None = None,
        channels: Mapping[str, str] | None = None,
        redis: Redis | None = None,
        say: Callable[[str], None] = lambda _: None,
        interval: float = 1.0,
    ) -> None:
        self.zendesk = zendesk
        self.slack = slack
        self.channels = dict(channels or {})
        self.store = RulesStore(rules_path, check_interval=interval)
        self.redis = redis
        self.say = say
        self.interval = interval
        self._seeded: RuleSet | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> list[str]:
        """Seed from the current rules if they changed since the last time; what was added
        ("group Billing", "channel #eng-oncall")."""
        rules = self.store.current()
        if rules is self._seeded or not self.store.loaded:
            return []
        self._seeded = rules
        added: list[str] = []
        if self.zendesk is not None:
            added = seed_sandbox(self.zendesk, rules)
        if added:
            self._forget_cached_groups()
            self.say(f"Zendesk sandbox: added what {rules.path} names: {', '.join(added)}")
            logs.event(log, "sandbox.seeded", path=rules.path, added=added)
        created: list[str] = []
        if self.slack is not None:
            created = seed_slack(self.slack, rules)
        if created:
            self._forget_missing_channels(created)
            self.say(
                f"Slack sandbox: created the channels {rules.path} posts to: {', '.join(created)}"
            )
            logs.event(log, "sandbox.slack.channels_created", path=rules.path, channels=created)
        return [*added, *(f"channel {c}" for c in created)]

    def start(self) -> None:
        """Seed now, then follow the file in a background thread until stop()."""
        self._create_settings_channels()
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

    def _create_settings_channels(self) -> None:
        if self.slack is None:
            return
        created: list[str] = []
        for variable, channel in self.channels.items():
            created += [f"{made} ({variable})" for made in create_channels(self.slack, [channel])]
        if created:
            self.say(
                f"Slack sandbox: created the channels the settings post to: {', '.join(created)}"
            )
            logs.event(log, "sandbox.slack.channels_created", channels=created)

    def _forget_missing_channels(self, created: list[str]) -> None:
        # A worker that posted to a channel before it was made remembers it as missing for
        # a minute (integrations/slack/api.py): made now, it is postable now.
        if self.redis is None:
            return
        try:
            self.redis.delete(*(MISSING_CHANNEL_KEY.format(name=c.lstrip("#")) for c in created))
        except RedisError as exc:
            logs.event(log, "sandbox.cache_clear_failed", logging.WARNING, error=repr(exc))

    def _forget_cached_groups(self) -> None:
        # The worker keeps the account's group list for an hour and refetches it at most
        # every few minutes: a group added now would be missed until then.
        if self.redis is None:
            return
        try:
            self.redis.delete(GROUPS_KEY, GROUPS_FRESH_KEY)
        except RedisError as exc:
            logs.event(log, "sandbox.cache_clear_failed", logging.WARNING, error=repr(exc))
