"""`feedback-hub zendesk setup`: the webhook that targets the hub (and its triggers), once.

Idempotent: the webhook is found by name and the triggers by title before
anything is created, so running it again changes nothing and prints the same
secret. Two modes:

- `events` (default): a webhook subscribed to the ticket events the hub uses
  (integrations.zendesk.payloads.SUBSCRIPTIONS). Zendesk sends every change with
  what changed, the comment's author and whether it is public.
- `triggers`: a trigger-connected webhook and two triggers (ticket created, ticket
  updated) that call it with the hub's JSON (events.TRIGGER_BODY). For accounts
  that prefer to filter in Zendesk with trigger conditions.

A webhook's kind cannot change later (Zendesk), so switching modes needs the old
webhook deleted in Admin Center first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import click
from zenpy import Zenpy
from zenpy.lib.api_objects import Trigger, Webhook
from zenpy.lib.exception import APIException, ZenpyException

from integrations.errors import HubError
from integrations.settings import ConfigError, Settings
from integrations.zendesk.account import account_client, create_missing_groups, read_account
from integrations.zendesk.client import GuardedSession, zenpy_client
from integrations.zendesk.payloads import SUBSCRIPTIONS, trigger_body

Mode = Literal["events", "triggers"]

WEBHOOK_NAME = "feedback-hub"
# Zendesk's subscription for a webhook that triggers and automations call.
TRIGGER_SUBSCRIPTION = "conditional_ticket_events"
TRIGGERS: dict[Literal["created", "updated"], tuple[str, str]] = {
    # kind: (title, Zendesk's update_type)
    "created": ("feedback-hub: ticket created", "Create"),
    "updated": ("feedback-hub: ticket updated", "Change"),
}


@dataclass
class SetupResult:
    """What setup found, created (or would create, in a dry run), and the signing secret."""

    endpoint: str
    webhook_id: str | None = None
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secret: str | None = None


def endpoint_for(public_url: str) -> str:
    """The hub's webhook URL under its public base URL; ValueError when that is not a URL."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{public_url!r} is not an http(s) URL, e.g. https://hub.example.com")
    return f"{public_url.strip().rstrip('/')}/zendesk/webhook"


def setup_zendesk(
    client: Zenpy,
    public_url: str,
    *,
    mode: Mode = "events",
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> SetupResult:
    """Find or create the hub's webhook (and triggers); read its signing secret."""
    result = SetupResult(endpoint=endpoint_for(public_url))
    hook = _find_webhook(client)
    if hook is not None:
        result.webhook_id = str(hook.id)
        result.existing.append(f"webhook {WEBHOOK_NAME!r} ({hook.id})")
        say(f"found webhook {WEBHOOK_NAME!r} ({hook.id}) -> {hook.endpoint}")
        if hook.endpoint != result.endpoint:
            result.warnings.append(
                f"webhook {WEBHOOK_NAME!r} sends to {hook.endpoint}, not {result.endpoint}: "
                "change its endpoint in Admin Center (setup never edits an existing webhook)"
            )
        subscriptions = list(getattr(hook, "subscriptions", None) or [])
        if (mode == "triggers") != (subscriptions == [TRIGGER_SUBSCRIPTION]):
            result.warnings.append(
                f"webhook {WEBHOOK_NAME!r} is not a {mode}-mode webhook (subscriptions "
                f"{subscriptions}); a webhook cannot change kind: delete it to switch"
            )
    else:
        subscriptions = [TRIGGER_SUBSCRIPTION] if mode == "triggers" else list(SUBSCRIPTIONS)
        verb = "would create" if dry_run else "creating"
        say(f"{verb} webhook {WEBHOOK_NAME!r} -> {result.endpoint}")
        say(f"  subscriptions: {', '.join(subscriptions)}")
        result.created.append(f"webhook {WEBHOOK_NAME!r}")
        if not dry_run:
            hook = client.webhooks.create(
                Webhook(
                    name=WEBHOOK_NAME,
                    endpoint=result.endpoint,
                    http_method="POST",
                    request_format="json",
                    status="active",
                    subscriptions=subscriptions,
                )
            )
            result.webhook_id = str(hook.id)

    if mode == "triggers":
        _ensure_triggers(client, result, dry_run=dry_run, say=say)

    if hook is not None:
        secret = client.webhooks.show_secret(hook)
        result.secret = str(secret.secret) if secret.secret else None
    return result


def _find_webhook(client: Zenpy) -> Any:
    for hook in client.webhooks.list(filter__name_contains=WEBHOOK_NAME):
        if hook.name == WEBHOOK_NAME:
            return hook
    return None


def _ensure_triggers(
    client: Zenpy, result: SetupResult, *, dry_run: bool, say: Callable[[str], None]
) -> None:
    titles = {t.title: t for t in client.triggers()}
    for kind, (title, update_type) in TRIGGERS.items():
        if title in titles:
            result.existing.append(f"trigger {title!r}")
            say(f"found trigger {title!r} ({titles[title].id})")
            continue
        result.created.append(f"trigger {title!r}")
        say(f"{'would create' if dry_run else 'creating'} trigger {title!r}")
        if dry_run:
            continue
        client.triggers.create(
            Trigger(
                title=title,
                description="Tells feedback-hub about the change (feedback-hub zendesk setup).",
                active=True,
                conditions={
                    "all": [{"field": "update_type", "operator": "is", "value": update_type}],
                    "any": [],
                },
                actions=[
                    {
                        "field": "notification_webhook",
                        "value": [result.webhook_id, trigger_body(kind)],
                    }
                ],
            )
        )


# ---------------------------------------------------------------- the CLI


@click.group("zendesk")
def zendesk_cli() -> None:
    """Zendesk: set up the webhook that sends ticket events to the hub."""


@zendesk_cli.command("setup")
@click.option(
    "--public-url",
    help="The hub's public base URL (https://hub.example.com); webhooks go to URL/zendesk/webhook.",
)
@click.option(
    "--mode",
    type=click.Choice(["events", "triggers"]),
    default="events",
    show_default=True,
    help="An event-subscribed webhook, or a trigger-connected one with its triggers.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be created; change nothing.")
@click.option(
    "--create-groups",
    is_flag=True,
    help="Create the groups the rules file (RULES_PATH) routes to that the account lacks.",
)
@click.pass_context
def setup_command(
    ctx: click.Context, public_url: str | None, mode: Mode, dry_run: bool, create_groups: bool
) -> None:
    """Create (once) the webhook that targets the hub and print its secret; or missing groups."""
    if not public_url and not create_groups:
        raise click.UsageError("give --public-url URL (the webhook), --create-groups, or both")
    if create_groups:
        _create_groups(ctx, dry_run=dry_run)
    if not public_url:
        return
    settings = Settings.from_env("cli")
    for name in ("ZENDESK_URL", "ZENDESK_EMAIL"):
        if not getattr(settings, name.lower()):
            raise ConfigError(name, "is not set: setup talks to Zendesk's API")
    if not (settings.zendesk_api_token or settings.zendesk_oauth_token):
        raise ConfigError("ZENDESK_API_TOKEN", "is not set: setup talks to Zendesk's API")
    assert settings.zendesk_url and settings.zendesk_email
    client = zenpy_client(
        settings.zendesk_url,
        settings.zendesk_email,
        token=settings.zendesk_api_token,
        oauth_token=settings.zendesk_oauth_token,
        session=GuardedSession(),
    )
    try:
        result = setup_zendesk(client, public_url, mode=mode, dry_run=dry_run, say=click.echo)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-url") from None
    except (HubError, APIException, ZenpyException) as exc:
        raise click.ClickException(f"Zendesk refused or failed: {exc}") from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        click.echo("dry run: nothing was changed")
        if result.secret:
            click.echo(f"ZENDESK_WEBHOOK_SECRET={result.secret}")
        return
    if not result.created:
        click.echo("nothing to create: already set up")
    if result.secret:
        click.echo("Set this in the hub's environment (web process):")
        click.echo(f"ZENDESK_WEBHOOK_SECRET={result.secret}")
    else:
        click.echo("Zendesk returned no signing secret; copy it from Admin Center.", err=True)
        sys.exit(1)


# Where `--create-groups` finds the group names the rules route to: a function in the click
# context's obj under this key, put there by the CLI's top (app.py), since integrations
# cannot import the rules layer.
RULE_GROUPS = "rule_groups"


def _create_groups(ctx: click.Context, *, dry_run: bool) -> None:
    """Create the groups the rules name that the account lacks (once: found by name first)."""
    source: Callable[[], list[str]] | None = (ctx.find_root().obj or {}).get(RULE_GROUPS)
    if source is None:
        raise click.ClickException("the rules' groups are unknown here: run `feedback-hub`")
    names = source()
    client = account_client(Settings.from_env("cli"))
    try:
        account = read_account(client)
        missing = [name for name in dict.fromkeys(names) if not account.has_group(name)]
        if dry_run:
            for name in missing:
                click.echo(f"would create group {name!r}")
        else:
            for name in create_missing_groups(client, missing, account):
                click.echo(f"created group {name!r}")
    except (HubError, APIException, ZenpyException) as exc:
        raise click.ClickException(f"Zendesk refused or failed: {exc}") from None
    if not missing:
        click.echo(f"groups: all {len(set(names))} the rules route to exist")
