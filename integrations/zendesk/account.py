"""What a Zendesk account has that rules can name: groups, custom ticket fields, agents.

Read in full (a few list requests), for `feedback-hub rules check --zendesk` and
`feedback-hub zendesk setup --create-groups`; the worker resolves names one at a time
through the gateway instead (integrations/zendesk/gateway.py), with its caches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from zenpy import Zenpy
from zenpy.lib.api_objects import Group

from integrations.settings import ConfigError, Settings
from integrations.zendesk.client import GuardedSession, zenpy_client

# Users who can be assigned tickets (Zendesk's roles; end-users cannot).
AGENT_ROLES = ("agent", "admin")


@dataclass(frozen=True)
class AccountNames:
    """An account's groups (name -> id), custom ticket fields (id -> title) and agents."""

    groups: dict[str, int] = field(default_factory=dict)
    fields: dict[int, str] = field(default_factory=dict)
    # Agents and admins: email (lowercase) -> id, and their ids.
    agents: dict[str, int] = field(default_factory=dict)
    agent_ids: frozenset[int] = frozenset()

    def has_group(self, name: str) -> bool:
        """Whether a group has this name (Zendesk compares group names without case)."""
        return name.casefold() in {g.casefold() for g in self.groups}

    def has_agent(self, assignee: str) -> bool:
        """Whether an agent has this email, or this id."""
        if assignee.isdigit():
            return int(assignee) in self.agent_ids
        return assignee.lower() in self.agents


def has_credentials(settings: Settings) -> bool:
    """Whether the settings name a Zendesk and credentials for its API."""
    token = settings.zendesk_api_token or settings.zendesk_oauth_token
    return bool(settings.zendesk_url and settings.zendesk_email and token)


def account_client(settings: Settings) -> Zenpy:
    """A zenpy client for the configured account (short retries, no shared rate limit).

    For operator commands run once, not workers; ConfigError names what is missing.
    """
    for name in ("ZENDESK_URL", "ZENDESK_EMAIL"):
        if not getattr(settings, name.lower()):
            raise ConfigError(name, "is not set: this command reads the Zendesk account")
    if not (settings.zendesk_api_token or settings.zendesk_oauth_token):
        raise ConfigError("ZENDESK_API_TOKEN", "is not set: this command reads the Zendesk account")
    assert settings.zendesk_url and settings.zendesk_email
    return zenpy_client(
        settings.zendesk_url,
        settings.zendesk_email,
        token=settings.zendesk_api_token,
        oauth_token=settings.zendesk_oauth_token,
        session=GuardedSession(),
    )


def read_account(client: Zenpy) -> AccountNames:
    """The account's groups, custom ticket fields and agents (raises zenpy's errors)."""
    groups = {str(g.name): int(g.id) for g in client.groups() if not getattr(g, "deleted", False)}
    fields = {
        int(f.id): str(f.title)
        for f in client.ticket_fields()
        # The system fields (subject, status...) are ticket attributes, not custom fields.
        if getattr(f, "removable", True)
    }
    agents: dict[str, int] = {}
    ids: set[int] = set()
    for role in AGENT_ROLES:
        for user in client.users(role=role):
            ids.add(int(user.id))
            if user.email:
                agents[str(user.email).lower()] = int(user.id)
    return AccountNames(groups, fields, agents, frozenset(ids))


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The existing name closest to `name` (difflib, without case), if any is close."""
    by_fold = {k.casefold(): k for k in known}
    found = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.6)
    return by_fold[found[0]] if found else None


def create_missing_groups(client: Zenpy, names: Iterable[str], account: AccountNames) -> list[str]:
    """Create the groups of `names` the account lacks; returns the names created."""
    created = []
    for name in dict.fromkeys(names):
        if account.has_group(name):
            continue
        client.groups.create(Group(name=name))
        created.append(name)
    return created
