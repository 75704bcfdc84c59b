"""What Slack sends, parsed into frozen models; raw dicts from Slack go no further than this module.

Shapes from Slack's docs ("Implementing slash commands", "Interaction payloads":
`view_submission`, `message_action`) and bolt-python's recorded payloads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations.errors import Rejected
from integrations.http_body import json_of


class _Frozen(BaseModel):
    # Slack adds fields over time; unknown ones are ignored, never an error.
    model_config = ConfigDict(frozen=True, extra="ignore")


class SlashCommand(_Frozen):
    """A slash command invocation (form-encoded body)."""

    command: str
    text: str = ""
    team_id: str
    team_domain: str = ""
    enterprise_id: str | None = None
    channel_id: str
    channel_name: str = ""
    user_id: str
    # Deprecated by Slack but still sent; only used as a display name.
    user_name: str = ""
    response_url: str = ""
    trigger_id: str = ""
    api_app_id: str = ""


class SlackFile(_Frozen):
    """A file attached to a message: its name is what the ticket mentions."""

    id: str = ""
    name: str = ""
    title: str = ""
    mimetype: str = ""

    @property
    def label(self) -> str:
        """The name a person would recognise."""
        return self.name or self.title or self.id or "unnamed file"


class ShortcutMessage(_Frozen):
    """The message a message shortcut was used on."""

    ts: str
    text: str = ""
    user: str | None = None
    username: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    files: tuple[SlackFile, ...] = ()


class MessageShortcut(_Frozen):
    """A message shortcut (`message_action`): someone chose "Send to support" on a message."""

    callback_id: str
    trigger_id: str = ""
    response_url: str = ""
    team_id: str
    team_domain: str = ""
    channel_id: str
    channel_name: str = ""
    user_id: str
    user_name: str = ""
    message: ShortcutMessage


class ViewSubmission(_Frozen):
    """A modal's submit (`view_submission`): the state of its inputs, by block and action id."""

    team_id: str
    team_domain: str = ""
    user_id: str
    user_name: str = ""
    trigger_id: str = ""
    view_id: str
    callback_id: str
    private_metadata: str = ""
    # block_id -> action_id -> element state ({"type", "value"} or {"selected_option"}).
    values: dict[str, dict[str, dict[str, Any]]] = {}

    def value(self, block_id: str, action_id: str) -> str | None:
        """The text typed or the option value selected in one input, or None when empty."""
        state = self.values.get(block_id, {}).get(action_id, {})
        if "selected_option" in state:
            option = state["selected_option"] or {}
            return option.get("value") if isinstance(option, dict) else None
        value = state.get("value")
        return value if isinstance(value, str) else None


class OtherInteraction(_Frozen):
    """Any interaction the hub does not act on (block_actions, view_closed, ...): acknowledged."""

    type: str


Interaction = ViewSubmission | MessageShortcut | OtherInteraction


def parse_command(body: bytes) -> SlashCommand:
    """A slash command from its verified form body; Rejected(400) when it is not one."""
    form = parse_form(body)
    try:
        return SlashCommand.model_validate(form)
    except ValidationError as exc:
        raise Rejected(400, f"not a Slack slash command: {_first_error(exc)}") from None


def parse_interaction(body: bytes) -> Interaction:
    """An interaction from its verified form body (`payload=<json>`); Rejected(400) otherwise."""
    raw = parse_form(body).get("payload")
    if not raw:
        raise Rejected(400, "not a Slack interaction: the form has no payload field")
    payload = json_of(raw, "not a Slack interaction: payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise Rejected(400, "not a Slack interaction: payload has no type")
    try:
        if payload["type"] == "view_submission":
            return ViewSubmission.model_validate(_view_submission_fields(payload))
        if payload["type"] == "message_action":
            return MessageShortcut.model_validate(_message_action_fields(payload))
        return OtherInteraction(type=payload["type"])
    except (ValidationError, AttributeError, TypeError) as exc:
        detail = _first_error(exc) if isinstance(exc, ValidationError) else "unexpected shape"
        raise Rejected(400, f"not a Slack {payload['type']} payload: {detail}") from None


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form body, each field's first value: parse_qs(keep_blank_values=True)
    keeping first values, faster (the test pins them equal:
    tests/integrations/slack/test_slack_payloads.py).

    Slack sends each field once; a repeated field keeps its first value.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "the body is not UTF-8 form data") from None
    form: dict[str, str] = {}
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        name = _unquote_plus(name)
        if name not in form:
            form[name] = _unquote_plus(value)
    return form


def _unquote_plus(text: str) -> str:
    # What parse_qsl does to each name and value ('+' is a space, then %XX as UTF-8,
    # undecodable bytes replaced), skipping the calls for text that has neither.
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text) if "%" in text else text


def _obj(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _view_submission_fields(payload: dict[str, Any]) -> dict[str, Any]:
    team, user, view = _obj(payload, "team"), _obj(payload, "user"), _obj(payload, "view")
    return {
        "team_id": team.get("id") or user.get("team_id"),
        "team_domain": team.get("domain") or "",
        "user_id": user.get("id"),
        "user_name": user.get("name") or user.get("username") or "",
        "trigger_id": payload.get("trigger_id") or "",
        "view_id": view.get("id"),
        "callback_id": view.get("callback_id") or "",
        "private_metadata": view.get("private_metadata") or "",
        "values": _obj(_obj(view, "state"), "values"),
    }


def _message_action_fields(payload: dict[str, Any]) -> dict[str, Any]:
    team, user = _obj(payload, "team"), _obj(payload, "user")
    channel, message = _obj(payload, "channel"), _obj(payload, "message")
    return {
        "callback_id": payload.get("callback_id") or "",
        "trigger_id": payload.get("trigger_id") or "",
        "response_url": payload.get("response_url") or "",
        "team_id": team.get("id") or user.get("team_id"),
        "team_domain": team.get("domain") or "",
        "channel_id": channel.get("id"),
        "channel_name": channel.get("name") or "",
        "user_id": user.get("id"),
        "user_name": user.get("name") or user.get("username") or "",
        "message": {**message, "ts": message.get("ts") or payload.get("message_ts")},
    }


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg'].lower()}"


# ---------------------------------------------------------------- the Events API


class UrlVerification(_Frozen):
    """Slack checking the events URL: the challenge is echoed."""

    challenge: str


# Message subtypes a person writes (Slack's "message" event subtypes): a file with its
# text, a reply also sent to the channel ("Also send to #channel"), a /me message.
WRITTEN_SUBTYPES = frozenset({"file_share", "thread_broadcast", "me_message"})


class MessagePosted(_Frozen):
    """A `message` event: someone wrote in a channel or DM the app is in."""

    event_id: str
    team_id: str = ""
    channel: str
    user: str | None = None
    text: str = ""
    ts: str
    thread_ts: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    channel_type: str | None = None

    @property
    def is_person_in_thread(self) -> bool:
        """A person's plain message inside a thread (not the thread's first message)."""
        # Bots (the hub's own posts included) carry bot_id. Edits, deletions, joins and
        # the like carry subtypes of their own: not something the person wrote.
        written = self.subtype is None or self.subtype in WRITTEN_SUBTYPES
        plain = self.bot_id is None and written and bool(self.user)
        return plain and self.thread_ts is not None and self.thread_ts != self.ts

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> MessagePosted:
        """Rebuild from a job argument."""
        return cls.model_validate(data)


class OtherEvent(_Frozen):
    """Any other event callback: acknowledged, nothing to do."""

    type: str


class ReactedItem(_Frozen):
    """What a reaction was added to (Slack only sends `message` items to apps now)."""

    type: str
    channel: str = ""
    ts: str = ""


class ReactionAdded(_Frozen):
    """A `reaction_added` event: someone reacted to a message in a channel the app is in."""

    event_id: str
    team_id: str = ""
    user: str
    reaction: str
    # Absent for messages no user wrote (incoming webhooks).
    item_user: str | None = None
    item: ReactedItem
    event_ts: str = ""

    @property
    def on_message(self) -> bool:
        """The reaction is on a message (not a file or a file comment)."""
        return self.item.type == "message" and bool(self.item.channel and self.item.ts)

    def to_job(self) -> dict[str, Any]:
        """Plain JSON-safe data for an rq job argument."""
        return self.model_dump(mode="json")

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> ReactionAdded:
        """Rebuild from a job argument."""
        return cls.model_validate(data)


Event = UrlVerification | MessagePosted | ReactionAdded | OtherEvent


def parse_event(body: bytes) -> Event:
    """An Events API request from its verified JSON body; Rejected(400) when malformed."""
    data = json_of(body, "not a Slack event: the body")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Rejected(400, "not a Slack event: no type")
    try:
        if data["type"] == "url_verification":
            return UrlVerification.model_validate(data)
        if data["type"] != "event_callback":
            return OtherEvent(type=data["type"])
        event = data.get("event")
        if isinstance(event, dict) and event.get("type") == "reaction_added":
            return ReactionAdded.model_validate(
                {**event, "event_id": data.get("event_id"), "team_id": data.get("team_id") or ""}
            )
        if not isinstance(event, dict) or event.get("type") != "message":
            kind = event.get("type") if isinstance(event, dict) else None
            return OtherEvent(type=str(kind or "unknown"))
        return MessagePosted.model_validate(
            {**event, "event_id": data.get("event_id"), "team_id": data.get("team_id") or ""}
        )
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise Rejected(400, f"not a Slack {data['type']} payload: {where} is missing") from None


# ---------------------------------------------------------------- threads (conversations.replies)


class ThreadFile(_Frozen):
    """A file on a message of a thread, as conversations.replies shows it."""

    id: str = ""
    name: str = ""
    title: str = ""
    mimetype: str = "application/octet-stream"
    size: int = 0
    url_private: str | None = None
    url_private_download: str | None = None
    permalink: str | None = None
    # "tombstone" (deleted), "hidden_by_limit" (free workspaces), "external" (a link).
    mode: str = "hosted"

    @property
    def label(self) -> str:
        """The name a person would recognise."""
        return self.name or self.title or self.id or "unnamed file"

    @property
    def download_url(self) -> str | None:
        """Where its bytes are, when Slack hosts them."""
        if self.mode in ("tombstone", "hidden_by_limit", "external"):
            return None
        return self.url_private_download or self.url_private


class ThreadMessage(_Frozen):
    """One message of a thread: who wrote it (and in which organization), when, what."""

    ts: str
    user: str | None = None
    username: str | None = None
    bot_id: str | None = None
    text: str = ""
    subtype: str | None = None
    thread_ts: str | None = None
    # The author's workspace: another organization's in a Slack Connect channel.
    user_team: str | None = None
    team: str | None = None
    files: tuple[ThreadFile, ...] = ()
    reply_count: int = 0

    @property
    def author_team(self) -> str | None:
        """The workspace the author belongs to, as far as the message says."""
        return self.user_team or self.team

    @property
    def deleted(self) -> bool:
        """A deleted parent that still has replies (Slack keeps it as a tombstone)."""
        return self.subtype == "tombstone"


class ThreadPage(_Frozen):
    """One page of conversations.replies."""

    messages: tuple[ThreadMessage, ...] = ()
    next_cursor: str = ""


def parse_thread_page(data: dict[str, Any]) -> ThreadPage:
    """A conversations.replies answer as a page of messages; malformed entries are skipped."""
    messages = []
    for raw in data.get("messages") or []:
        if not isinstance(raw, dict):
            continue
        files = [f for f in raw.get("files") or [] if isinstance(f, dict)]
        try:
            messages.append(ThreadMessage.model_validate({**raw, "files": files}))
        except ValidationError:
            continue
    cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
    return ThreadPage(messages=tuple(messages), next_cursor=str(cursor))
