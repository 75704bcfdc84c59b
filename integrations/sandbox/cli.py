"""`feedback-hub sandbox` (run the emulators) and `feedback-hub simulate ...` (send signed requests
to a running hub, as the Stripe CLI's `trigger` does)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
import requests

from integrations.sandbox.devstate import read_state
from integrations.sandbox.signing import slack_headers, zendesk_webhook_headers
from integrations.sandbox.slack import SEED_USERS, TEAM_ID, SlackSandbox
from integrations.sandbox.zendesk import ZendeskSandbox

TIMEOUT = 15.0
SAMPLE_REPORT: dict[str, Any] = {
    "description": "The checkout button does nothing after I add a coupon.",
    "reporter": {"email": "ada@example.com", "name": "Ada Reporter"},
    "app": {"id": "com.example.shop", "version": "5.2.1", "build": "742"},
    "device": {"model": "iPhone15,2", "os": "iOS", "os_version": "17.4.1", "locale": "en-GB"},
    "steps_to_reproduce": "1. Add a coupon\n2. Tap Checkout",
}


@click.command("sandbox")
@click.option("--zendesk-port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--slack-port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--zendesk-email", default="agent@example.com", show_default=True)
@click.option("--zendesk-token", default="sandbox-token", show_default=True)
@click.option("--slack-token", default="xoxb-sandbox-token", show_default=True)
@click.option("--webhook-url", help="Send agent actions' webhooks here (hub's /zendesk/webhook).")
@click.option("--webhook-secret", help="Sign those webhooks with this secret.")
@click.option("--rate-limit", type=int, help="Zendesk requests per minute before 429.")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    help="A Slack channel the workspace has ('#eng-oncall'); repeatable. The hub posts only "
    "to channels that exist: give the ones its settings and rules name (or POST "
    "/__sandbox/channels).",
)
def sandbox(
    zendesk_port: int,
    slack_port: int,
    zendesk_email: str,
    zendesk_token: str,
    slack_token: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    rate_limit: int | None,
    channels: tuple[str, ...],
) -> None:
    """Run the Zendesk and Slack Web API sandboxes until Ctrl-C."""
    zendesk = ZendeskSandbox(email=zendesk_email, token=zendesk_token)
    slack = SlackSandbox(token=slack_token, channels=channels)
    if rate_limit:
        zendesk.set_faults(rate_limit=rate_limit)
    zendesk.start(zendesk_port)
    slack.start(slack_port)
    if webhook_url:
        secret = webhook_secret or secrets.token_urlsafe(24)
        zendesk.set_webhook_target(webhook_url, secret)
        click.echo(f"webhooks to {webhook_url}, ZENDESK_WEBHOOK_SECRET={secret}")
    click.echo(f"Zendesk sandbox  {zendesk.url}/   (control: {zendesk.url}/__sandbox/...)")
    click.echo(f"Slack sandbox    {slack.url}/   (control: {slack.url}/__sandbox/...)")
    with slack.lock:
        made = sorted(slack.channels)
    click.echo(f"Slack channels   {', '.join('#' + name for name in made) or '(none: --channel)'}")
    click.echo("Point the hub at them:")
    click.echo(f"  ZENDESK_URL={zendesk.url} ZENDESK_EMAIL={zendesk_email}")
    click.echo(f"  ZENDESK_API_TOKEN={zendesk_token}")
    click.echo(f"  SLACK_API_URL={slack.api_url} SLACK_BOT_TOKEN={slack_token}")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        zendesk.stop()
        slack.stop()


# ---------------------------------------------------------------- simulate


class Target:
    """Where simulated requests go and how they are signed: the dev state file, else the env."""

    def __init__(self, hub: str | None) -> None:
        state = read_state()
        port = os.environ.get("PORT", "5000")
        self.hub_url = (hub or state.get("hub_url") or f"http://127.0.0.1:{port}").rstrip("/")
        self.slack_signing_secret = state.get("slack_signing_secret") or os.environ.get(
            "SLACK_SIGNING_SECRET"
        )
        self.zendesk_webhook_secret = state.get("zendesk_webhook_secret") or os.environ.get(
            "ZENDESK_WEBHOOK_SECRET"
        )
        self.mobile_key = state.get("mobile_api_key")
        self.mobile_app_id = state.get("mobile_app_id")
        if not self.mobile_key:
            first = os.environ.get("MOBILE_API_KEYS", "").split(",")[0]
            app_id, _, key = first.partition(":")
            self.mobile_app_id, self.mobile_key = app_id.strip() or None, key.strip() or None
        self.slack_sandbox_url: str | None = state.get("slack_sandbox_url")
        self.zendesk_sandbox_url: str | None = state.get("zendesk_sandbox_url")
        self.zendesk_account_id = int(state.get("zendesk_account_id") or 1000001)

    def need(self, value: str | None, variable: str) -> str:
        if not value:
            raise click.ClickException(
                f"{variable} is unknown: start `feedback-hub dev` (it writes var/dev.json) "
                f"or set {variable}"
            )
        return value


def _show(response: requests.Response) -> None:
    """The request and its answer; a refusal (4xx, 5xx) is the command's failure (exit 1)."""
    click.echo(f"{response.request.method} {response.url} -> {response.status_code}")
    text = response.text
    with contextlib.suppress(ValueError):
        text = json.dumps(response.json(), indent=2)
    click.echo(text)
    if response.status_code >= 400:
        raise click.exceptions.Exit(1)


def _post(url: str, **kwargs: Any) -> requests.Response:
    try:
        return requests.post(url, timeout=TIMEOUT, **kwargs)
    except requests.ConnectionError:
        raise click.ClickException(
            f"nothing answers at {url}: is the hub running (`feedback-hub dev`)?"
        ) from None


@click.group()
@click.option("--hub", help="The hub's base URL (default: the running `feedback-hub dev`).")
@click.pass_context
def simulate(ctx: click.Context, hub: str | None) -> None:
    """Send correctly signed requests to a running hub."""
    ctx.obj = Target(hub)


@simulate.command("feedback")
@click.argument("text")
@click.option("--user", "user_id", default=SEED_USERS[0][0], show_default=True)
@click.option("--channel", "channel_id", default="C0FEEDBACK", show_default=True)
@click.pass_obj
def simulate_feedback(target: Target, text: str, user_id: str, channel_id: str) -> None:
    """A `/feedback TEXT` slash command, signed with SLACK_SIGNING_SECRET."""
    secret = target.need(target.slack_signing_secret, "SLACK_SIGNING_SECRET")
    user_name = next((u[1] for u in SEED_USERS if u[0] == user_id), "someone")
    sink = target.slack_sandbox_url or "http://127.0.0.1:9"
    fields = {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "sandbox",
        "channel_id": channel_id,
        "channel_name": "feedback",
        "user_id": user_id,
        "user_name": user_name,
        "command": "/feedback",
        "text": text,
        "api_app_id": "A0SANDBOX",
        "is_enterprise_install": "false",
        "response_url": f"{sink}/response/{secrets.token_hex(8)}",
        "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}",
    }
    body = urlencode(fields)
    response = _post(
        f"{target.hub_url}/slack/commands", data=body, headers=slack_headers(secret, body)
    )
    _show(response)
    if target.slack_sandbox_url:
        click.echo(f"Replies to the reporter appear on {target.slack_sandbox_url}/")


@simulate.command("bug-report")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option(
    "--attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to send with the report (multipart); repeatable.",
)
@click.option(
    "--crash",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=(
        "A crash stack as the app's crash reporter writes it (e.g. integrations/mobile/"
        "fixtures/crash__*.txt): sent as the report's crash. Two reports with the same "
        "crash join one issue."
    ),
)
@click.pass_obj
def simulate_bug_report(
    target: Target, file: Path | None, attach: tuple[Path, ...], crash: Path | None
) -> None:
    """A mobile bug report from FILE (JSON; a sample without it), as the app sends it."""
    key = target.need(target.mobile_key, "MOBILE_API_KEYS")
    try:
        report = json.loads(file.read_text()) if file else dict(SAMPLE_REPORT)
    except ValueError as exc:
        raise click.ClickException(
            f"{file} is not a JSON report ({exc}); a crash stack goes with --crash FILE"
        ) from None
    if crash is not None:
        report["crash"] = {**(report.get("crash") or {}), "stack": crash.read_text()}
    url = f"{target.hub_url}/api/v1/bug-reports"
    headers = {"Authorization": f"Bearer {key}"}
    if not attach:
        _show(_post(url, json=report, headers=headers))
        return
    # Multipart: the report as a JSON part named `report`, then each file.
    parts: list[tuple[str, tuple[str | None, Any, str]]] = [
        ("report", (None, json.dumps(report), "application/json"))
    ]
    handles = [path.open("rb") for path in attach]
    try:
        for path, handle in zip(attach, handles, strict=True):
            parts.append(("files", (path.name, handle, "application/octet-stream")))
        _show(_post(url, files=parts, headers=headers))
    finally:
        for handle in handles:
            handle.close()


@simulate.command("zendesk-event")
@click.argument("event_type")
@click.option("--ticket", "ticket_id", type=int, required=True)
@click.option("--body", default="Thanks for the report: this is fixed in the next release.")
@click.option("--private", is_flag=True, help="comment_added: an internal note.")
@click.option("--status", default="solved", show_default=True, help="status_changed: the new one.")
@click.option("--previous", default="open", show_default=True, help="status_changed: the old one.")
@click.option("--add", multiple=True, help="tags_changed: a tag added; repeatable.")
@click.option("--remove", multiple=True, help="tags_changed: a tag removed; repeatable.")
@click.pass_obj
def simulate_zendesk_event(
    target: Target,
    event_type: str,
    ticket_id: int,
    body: str,
    private: bool,
    status: str,
    previous: str,
    add: tuple[str, ...],
    remove: tuple[str, ...],
) -> None:
    """A signed Zendesk event webhook: comment_added, status_changed or tags_changed."""
    secret = target.need(target.zendesk_webhook_secret, "ZENDESK_WEBHOOK_SECRET")
    short = event_type.removeprefix("zen:event-type:").removeprefix("ticket.")
    events: dict[str, dict[str, Any]] = {
        "comment_added": {
            "comment": {
                "id": str(secrets.randbelow(10**12)),
                "body": body,
                "is_public": not private,
                "author": {"id": "10001", "name": "Sandbox Agent", "is_staff": True},
                "attachments": [],
            }
        },
        "status_changed": {"current": status.upper(), "previous": previous.upper()},
        "tags_changed": {"tags": {"added": list(add), "removed": list(remove)}},
    }
    if short not in events:
        raise click.BadParameter(f"one of {', '.join(events)}", param_hint="EVENT_TYPE")
    payload = _ticket_event(target, ticket_id, short)
    payload["event"] = events[short]
    if short == "status_changed":
        payload["detail"]["status"] = status.upper()
    raw = json.dumps(payload).encode()
    headers = zendesk_webhook_headers(
        secret,
        raw,
        webhook_id="01SIMULATEDWEBHOOK00000000",
        account_id=target.zendesk_account_id,
    )
    _show(_post(f"{target.hub_url}/zendesk/webhook", data=raw, headers=headers))


def _ticket_event(target: Target, ticket_id: int, short: str) -> dict[str, Any]:
    """The event envelope, with the ticket's real fields when the sandbox has the ticket."""
    if target.zendesk_sandbox_url:
        url = f"{target.zendesk_sandbox_url}/__sandbox/tickets/{ticket_id}/event/ticket.{short}"
        try:
            found = requests.get(url, timeout=TIMEOUT)
            if found.status_code == 200:
                payload: dict[str, Any] = found.json()
                return payload
        except requests.RequestException:
            pass
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "type": f"zen:event-type:ticket.{short}",
        "account_id": target.zendesk_account_id,
        "id": str(uuid.uuid4()),
        "time": now,
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {"id": str(ticket_id), "status": "OPEN", "tags": [], "updated_at": now},
        "event": {},
    }


@simulate.command("reply")
@click.argument("text")
@click.option("--ticket", "ticket_id", type=int, required=True)
@click.option("--solve", is_flag=True, help="Solve the ticket with this reply.")
@click.pass_obj
def simulate_reply(target: Target, text: str, ticket_id: int, solve: bool) -> None:
    """An agent replies in the Zendesk sandbox; it sends the webhooks to the hub."""
    base = target.need(target.zendesk_sandbox_url, "the Zendesk sandbox (feedback-hub dev)")
    action = "solve" if solve else "reply"
    _show(_post(f"{base}/__sandbox/tickets/{ticket_id}/{action}", json={"body": text}))


def _send_event(target: Target, secret: str, event: dict[str, Any]) -> None:
    """An Events API delivery of `event` to the hub, signed as Slack signs it."""
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0SANDBOX",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()
    headers = slack_headers(secret, body, content_type="application/json")
    _show(_post(f"{target.hub_url}/slack/events", data=body, headers=headers))


@simulate.command("answer")
@click.argument("text", default="It still happens on 5.2.1, on iOS 17.")
@click.option("--ticket", "ticket_id", type=int, required=True)
@click.pass_obj
def simulate_answer(target: Target, text: str, ticket_id: int) -> None:
    """The reporter answers in the thread of the hub's last message about a ticket (an
    agent's relayed reply): a signed `message` event; the hub adds it to the ticket."""
    secret = target.need(target.slack_signing_secret, "SLACK_SIGNING_SECRET")
    sandbox = target.need(target.slack_sandbox_url, "the Slack sandbox (feedback-hub dev)")
    try:
        listed = requests.get(f"{sandbox}/__sandbox/messages", timeout=TIMEOUT).json()
    except requests.ConnectionError:
        raise click.ClickException(
            f"nothing answers at {sandbox}: is `feedback-hub dev` running?"
        ) from None
    told = [
        m
        for m in listed["messages"]
        if m["bot"] and not m["thread_ts"] and f"|#{ticket_id}>" in m["text"]
        and m["channel"].startswith("D")
    ]  # fmt: skip
    if not told:
        raise click.ClickException(
            f"the reporter of #{ticket_id} has no message from the hub in a direct message "
            f"yet (try `simulate reply TEXT --ticket {ticket_id}` first)"
        )
    thread = told[-1]
    reporter = SEED_USERS[0][0]
    said = _post(
        f"{sandbox}/__sandbox/say",
        json={
            "channel": thread["channel"],
            "user": reporter,
            "text": text,
            "thread_ts": thread["ts"],
        },
    ).json()
    _send_event(
        target,
        secret,
        {
            "type": "message",
            "channel": thread["channel"],
            "channel_type": "im",
            "user": reporter,
            # As Slack sends a person's text: &, < and > escaped (the sandbox plays
            # Slack here, so it does not borrow the hub's own escaping).
            "text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "ts": said["ts"],
            "thread_ts": thread["ts"],
        },
    )
    click.echo(f"The answer is added to ticket #{ticket_id} on the Zendesk sandbox.")


@simulate.command("reaction")
@click.argument("text", default="The export button does nothing on the reports page.")
@click.option("--reply", "replies", multiple=True, help="A reply in the thread; repeatable.")
@click.option(
    "--attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file on the first message; repeatable.",
)
@click.option("--channel", default="#support", show_default=True)
@click.option("--author", default=SEED_USERS[0][0], show_default=True, help="Who wrote TEXT.")
@click.option("--user", "reactor", default=SEED_USERS[2][0], show_default=True, help="Who reacts.")
@click.option("--emoji", default="ticket", show_default=True)
@click.option(
    "--external-team",
    help="Make the channel a Slack Connect channel shared with this team, and the author "
    "one of its people (no email visible).",
)
@click.option("--ts", help="React to this existing message instead of posting a new thread.")
@click.pass_obj
def simulate_reaction(
    target: Target,
    text: str,
    replies: tuple[str, ...],
    attach: tuple[Path, ...],
    channel: str,
    author: str,
    reactor: str,
    emoji: str,
    external_team: str | None,
    ts: str | None,
) -> None:
    """A thread in the Slack sandbox (TEXT, replies, files), then a signed `reaction_added`."""
    secret = target.need(target.slack_signing_secret, "SLACK_SIGNING_SECRET")
    sandbox = target.need(target.slack_sandbox_url, "the Slack sandbox (feedback-hub dev)")
    if external_team:
        shared = _post(
            f"{sandbox}/__sandbox/share", json={"channel": channel, "teams": [external_team]}
        )
        channel = shared.json()["channel"]
        _post(
            f"{sandbox}/__sandbox/users",
            json={"id": author, "name": author.lower(), "team": external_team},
        )
    if ts is None:
        files = [
            {
                "name": path.name,
                "content_base64": base64.b64encode(path.read_bytes()).decode(),
                "mimetype": "application/octet-stream",
            }
            for path in attach
        ]
        said = _post(
            f"{sandbox}/__sandbox/say",
            json={"channel": channel, "user": author, "text": text, "files": files},
        ).json()
        channel, ts = said["channel"], said["ts"]
        for n, reply in enumerate(replies):
            who = SEED_USERS[2][0] if n % 2 == 0 else author
            _post(
                f"{sandbox}/__sandbox/say",
                json={"channel": channel, "user": who, "text": reply, "thread_ts": ts},
            )
        click.echo(f"thread {channel} {ts}: {1 + len(replies)} messages, {len(files)} files")
    _send_event(
        target,
        secret,
        {
            "type": "reaction_added",
            "user": reactor,
            "reaction": emoji,
            "item_user": author,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": f"{time.time():.6f}",
        },
    )
    click.echo(f"The ticket appears on the Zendesk sandbox; the thread's reply on {sandbox}/")
