"""A local Slack Web API: the methods the hub calls, a response_url sink, every call recorded.

slack_sdk's WebClient talks to it unmodified with base_url (SLACK_API_URL)
http://127.0.0.1:PORT/api/. Answers follow Slack's: HTTP 200 with
{"ok": false, "error": ...} for refusals, 429 with Retry-After when limited.

Channels exist before anything is posted to them, as in Slack: a workspace's channels are
made with `channels=` or `create_channels`, and a post to a name the workspace lacks is
`channel_not_found`. A person acting in a channel (`say`, `share_channel`, `remove_bot`)
makes it if needed. Conversation and user ids pass through unchecked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Response, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from integrations import logs
from integrations.sandbox import slack_oidc
from integrations.sandbox.server import CONTROL, Sandbox

log = logging.getLogger(__name__)

Json = dict[str, Any]

TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0SANDBOT"
BOT_ID = "B0SANDBOT"
APP_ID = "A0SANDBOX"
SEED_USERS = (
    ("U0REPORTER", "ada", "Ada Reporter", "ada@example.com"),
    ("U0ENGINEER", "grace", "Grace Engineer", "grace@example.com"),
    ("U0SUPPORT", "sam", "Sam Support", "sam@example.com"),
)


class SlackError(Exception):
    """A refusal, answered as Slack does: 200 {"ok": false, "error": code}."""

    def __init__(self, error: str, detail: str | None = None) -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error


@dataclass
class Call:
    """One Web API call as the sandbox received it."""

    method: str
    args: Json
    at: float
    ok: bool
    error: str | None = None


@dataclass
class Message:
    """A message in a channel; `history` keeps earlier texts when it is edited."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None
    user: str = BOT_USER_ID
    history: list[str] = field(default_factory=list)
    edited_ts: str | None = None
    # A person's message (`SlackSandbox.say`) has no bot_id, and their team (another
    # organization's in a Slack Connect channel) and any files.
    bot: bool = True
    team: str = TEAM_ID
    files: list[Json] = field(default_factory=list)
    deleted: bool = False

    def as_slack(self) -> Json:
        """The message object Slack returns."""
        out: Json = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.bot:
            out.update(bot_id=BOT_ID, app_id=APP_ID, team=TEAM_ID)
        else:
            out.update(team=self.team, user_team=self.team, source_team=self.team)
        if self.deleted:
            # What conversations.replies shows for a deleted parent that has replies.
            out.update(subtype="tombstone", user="USLACKBOT", text="This message was deleted.")
            out.pop("team", None)
        if self.blocks:
            out["blocks"] = self.blocks
        if self.files and not self.deleted:
            out["files"] = self.files
            out["upload"] = False
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        return out


@dataclass
class Limit:
    """429s injected on one method: how long to say to wait, and how many calls (None: all)."""

    retry_after: int
    remaining: int | None
    # Calls answered normally before the 429s start (a limit met part way through paging).
    after: int = 0


class SlackSandbox(Sandbox):
    """auth.test, chat.*, views.*, users.info, conversations.open, and a response_url sink."""

    name = "slack"

    def __init__(
        self,
        *,
        token: str | None = "xoxb-sandbox-token",  # noqa: S107
        channels: Iterable[str] = (),
    ) -> None:
        super().__init__()
        # None accepts any token (still required, as Slack requires one).
        self.token = token
        self._clock = 0
        self._calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemeral: list[Json] = []
        self.responses: list[Json] = []
        self.views: dict[str, Json] = {}
        self.users: dict[str, Json] = {}
        # The workspace's channels by name (no "#"): conversations.list lists them.
        self.channels: dict[str, str] = {}
        self.limits: dict[str, Limit] = {}
        # Conversations beyond names: shared with another organization, bot not a member.
        self.shared: dict[str, list[str]] = {}
        self.not_member: set[str] = set()
        self.files: dict[str, Json] = {}
        self.file_bytes: dict[str, bytes] = {}
        # conversations.replies page size when the call gives no limit (Slack: 1,000; 15
        # for commercially distributed non-Marketplace apps since 2025): small, to page.
        self.replies_page = 100
        self._used_triggers: set[str] = set()
        self._seq_lock = threading.Lock()
        for uid, name, real_name, email in SEED_USERS:
            self.add_user(uid, name, real_name, email)
        self.create_channels(*channels)
        self._methods: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.replies": self._conversations_replies,
        }
        self._routes()
        # Sign in with Slack and user groups, for the console (integrations/sandbox/slack_oidc.py).
        self.oidc = slack_oidc.install(self, SlackError)

    # ------------------------------------------------------------ Python access

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL / WebClient(base_url=...)."""
        return f"{self.url}/api/"

    def add_user(
        self, user_id: str, name: str, real_name: str, email: str | None, *, team: str = TEAM_ID
    ) -> Json:
        """Add a member users.info will know (of another organization when `team` differs;
        `email` None: hidden, as another organization's settings or a missing scope hide it)."""
        user = {
            "id": user_id,
            "team_id": team,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "real_name_normalized": real_name,
                "display_name_normalized": name,
                "image_72": f"https://avatars.example/{user_id}_72.png",
                "team": team,
            },
        }
        if email:
            user["profile"]["email"] = email  # type: ignore[index]
        with self.lock:
            self.users[user_id] = user
        return user

    def calls(self, method: str | None = None) -> list[Call]:
        """Calls received, oldest first; only `method`'s when given."""
        with self.lock:
            return [c for c in self._calls if method is None or c.method == method]

    def channel_messages(self, channel: str) -> list[Message]:
        """Messages in a channel (id or name), oldest first; none for a name that does not exist."""
        cid = self._find(channel)
        if cid is None:
            return []
        with self.lock:
            return sorted(
                (m for (c, _), m in self.messages.items() if c == cid), key=lambda m: m.ts
            )

    def rate_limit(
        self, method: str, *, retry_after: int = 1, count: int | None = None, after: int = 0
    ) -> None:
        """Answer `method` with 429 + Retry-After for `count` calls (None: all), after `after`."""
        with self.lock:
            self.limits[method] = Limit(retry_after, count, after)

    def clear_rate_limits(self) -> None:
        """No more injected 429s."""
        with self.lock:
            self.limits.clear()

    def response_url(self, name: str | None = None) -> str:
        """A response_url that posts land in (what Slack puts in slash commands and shortcuts)."""
        return f"{self.url}/response/{name or secrets.token_hex(8)}"

    def create_channels(self, *names: str) -> list[str]:
        """Channels the workspace has ('#eng' or 'eng'), made unless they exist; their ids.

        An id ('C0123ABC') is taken as a channel that exists already and returned as is.
        """
        ids = []
        for channel in names:
            found = self._find(channel)
            if found is None:
                name = channel.lstrip("#")
                with self.lock:
                    digest = hashlib.sha1(name.encode()).hexdigest()[:9].upper()  # noqa: S324
                    found = self.channels.setdefault(name, f"C{digest}")
            ids.append(found)
        return ids

    def channel_id(self, channel: str) -> str:
        """Slack's id for a channel of the workspace ('#eng' -> 'C...'); ids pass through.

        A name the workspace does not have raises SlackError channel_not_found, as Slack
        answers a post to it (create_channels makes channels).
        """
        cid = self._find(channel)
        if cid is None:
            raise SlackError("channel_not_found", f"no channel {channel!r} in the workspace")
        return cid

    def share_channel(self, channel: str, *teams: str) -> str:
        """Make a channel (made if needed) a Slack Connect channel shared with `teams`; its id."""
        [cid] = self.create_channels(channel)
        with self.lock:
            self.shared[cid] = [TEAM_ID, *(teams or ("T0EXTERNAL",))]
        return cid

    def remove_bot(self, channel: str) -> str:
        """The bot is not in this channel (made if needed): reading threads is not_in_channel."""
        [cid] = self.create_channels(channel)
        with self.lock:
            self.not_member.add(cid)
        return cid

    def add_file(self, name: str, data: bytes, mimetype: str = "application/octet-stream") -> Json:
        """A file a person shared; its url_private needs the bot token, as Slack's does."""
        fid = "F" + secrets.token_hex(5).upper()
        file = {
            "id": fid,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "pretty_type": mimetype,
            "user": "",
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"{self.url}/files-pri/{TEAM_ID}-{fid}/{name}",
            "url_private_download": f"{self.url}/files-pri/{TEAM_ID}-{fid}/download/{name}",
            "permalink": f"{self.url}/files/{fid}/{name}",
        }
        with self.lock:
            self.files[fid] = file
            self.file_bytes[fid] = data
        return file

    def remove_file_bytes(self, file_id: str) -> None:
        """The file's download answers 404 (deleted, or hidden from the bot)."""
        with self.lock:
            self.file_bytes.pop(file_id, None)

    def say(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: tuple[Json, ...] | list[Json] = (),
        team: str | None = None,
    ) -> Message:
        """A person posts a message (a thread reply with `thread_ts`); returns it.

        A channel the workspace lacks is made: someone made it to post there.
        """
        [cid] = self.create_channels(channel)
        with self.lock:
            known = self.users.get(user)
        message = Message(
            cid,
            self._ts(),
            text,
            [],
            thread_ts,
            user=user,
            bot=False,
            team=team or (known["team_id"] if known else TEAM_ID),
            files=[{**f, "user": user} for f in files],
        )
        with self.lock:
            self.messages[(cid, message.ts)] = message
        return message

    def delete_message(self, channel: str, ts: str) -> None:
        """A person deletes a message: a thread's parent stays as a tombstone, else it goes."""
        cid = self.channel_id(channel)
        with self.lock:
            has_replies = any(
                m.thread_ts == ts and m.ts != ts for (c, _), m in self.messages.items() if c == cid
            )
            if has_replies:
                self.messages[(cid, ts)].deleted = True
            else:
                self.messages.pop((cid, ts), None)

    def _find(self, channel: str) -> str | None:
        """The id of a channel name or id; None for a name the workspace does not have."""
        name = channel.lstrip("#")
        if name[:1] in ("C", "D", "G") and name[1:].isalnum() and name.upper() == name:
            return name
        if name[:1] in ("U", "W") and name.upper() == name:
            return self._dm(name)
        with self.lock:
            return self.channels.get(name)

    def _dm(self, user_id: str) -> str:
        return "D" + user_id[1:]

    def _ts(self) -> str:
        # Slack's ts: seconds and a sequence number, unique per channel and increasing.
        with self._seq_lock:
            self._clock += 1
            return f"{int(time.time())}.{self._clock:06d}"

    # ------------------------------------------------------------ methods

    def _auth_test(self, args: Json) -> Json:
        return {
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": "feedback-hub",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _need(self, args: Json, name: str, error: str | None = None) -> Any:
        value = args.get(name)
        if value in (None, ""):
            raise SlackError(error or "invalid_arguments")
        return value

    def _post_message(self, args: Json) -> Json:
        channel = self.channel_id(self._need(args, "channel", "channel_not_found"))
        blocks = _decoded(args.get("blocks")) or []
        text = args.get("text") or ""
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        message = Message(channel, self._ts(), text, blocks, args.get("thread_ts") or None)
        with self.lock:
            self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts, "message": message.as_slack()}

    def _update(self, args: Json) -> Json:
        channel = self.channel_id(self._need(args, "channel", "channel_not_found"))
        ts = self._need(args, "ts", "message_not_found")
        with self.lock:
            message = self.messages.get((channel, ts))
            if message is None:
                raise SlackError("message_not_found")
            if "text" in args or "blocks" in args:
                message.history.append(message.text)
            if "text" in args:
                message.text = args["text"] or ""
            if "blocks" in args:
                message.blocks = _decoded(args["blocks"]) or []
            message.edited_ts = self._ts()
            return {
                "channel": channel,
                "ts": ts,
                "text": message.text,
                "message": message.as_slack(),
            }

    def _post_ephemeral(self, args: Json) -> Json:
        channel = self.channel_id(self._need(args, "channel", "channel_not_found"))
        user = self._need(args, "user", "user_not_found")
        ts = self._ts()
        with self.lock:
            self.ephemeral.append(
                {
                    "channel": channel,
                    "user": user,
                    "text": args.get("text") or "",
                    "blocks": _decoded(args.get("blocks")) or [],
                    "thread_ts": args.get("thread_ts"),
                    "message_ts": ts,
                }
            )
        return {"message_ts": ts}

    def _permalink(self, args: Json) -> Json:
        channel = self.channel_id(self._need(args, "channel", "channel_not_found"))
        ts = self._need(args, "message_ts", "message_not_found")
        with self.lock:
            if (channel, ts) not in self.messages:
                raise SlackError("message_not_found")
        return {
            "channel": channel,
            "permalink": f"{self.url}/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _view(self, view: Json, view_id: str | None = None, previous: Json | None = None) -> Json:
        view_id = view_id or "V" + secrets.token_hex(5).upper()
        return {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view.get("type", "modal"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "previous_view_id": None,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }

    def _views_open(self, args: Json) -> Json:
        trigger_id = self._need(args, "trigger_id", "invalid_trigger_id")
        view = _decoded(args.get("view"))
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        with self.lock:
            # A trigger_id opens one view only (Slack answers exchanged_trigger_id after).
            if trigger_id in self._used_triggers:
                raise SlackError("exchanged_trigger_id")
            self._used_triggers.add(trigger_id)
            opened = self._view(view)
            self.views[opened["id"]] = opened
        return {"view": opened}

    def _views_update(self, args: Json) -> Json:
        view = _decoded(args.get("view"))
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        with self.lock:
            view_id = args.get("view_id")
            if not view_id and args.get("external_id"):
                view_id = next(
                    (
                        v["id"]
                        for v in self.views.values()
                        if v["external_id"] == args["external_id"]
                    ),
                    None,
                )
            previous = self.views.get(view_id or "")
            if previous is None:
                raise SlackError("not_found")
            updated = self._view(view, previous["id"], previous)
            self.views[updated["id"]] = updated
        return {"view": updated}

    def _users_info(self, args: Json) -> Json:
        with self.lock:
            user = self.users.get(self._need(args, "user", "user_not_found"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _conversation(self, cid: str) -> Json:
        names = {v: k for k, v in self.channels.items()}
        shared = self.shared.get(cid)
        return {
            "id": cid,
            "name": names.get(cid, cid.lower()),
            "is_channel": cid.startswith("C"),
            "is_group": False,
            "is_im": cid.startswith("D"),
            "is_mpim": cid.startswith("G"),
            "is_private": cid.startswith("G"),
            "is_archived": False,
            "is_shared": bool(shared),
            "is_org_shared": False,
            "is_ext_shared": bool(shared),
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "conversation_host_id": TEAM_ID,
            "shared_team_ids": list(shared or [TEAM_ID]),
            "pending_connected_team_ids": [],
            "is_member": cid not in self.not_member,
        }

    def _conversations_info(self, args: Json) -> Json:
        channel = str(self._need(args, "channel", "channel_not_found"))
        # Slack wants an id here: a name is channel_not_found.
        if channel.startswith("#") or channel != channel.upper():
            raise SlackError("channel_not_found")
        with self.lock:
            return {"channel": self._conversation(channel)}

    def _conversations_list(self, args: Json) -> Json:
        with self.lock:
            ids = sorted(set(self.channels.values()) | {c for c, _ in self.messages})
            found = [self._conversation(c) for c in ids if c.startswith(("C", "G"))]
        return _page(found, args, "channels", 200)

    def _conversations_replies(self, args: Json) -> Json:
        cid = str(self._need(args, "channel", "channel_not_found"))
        ts = str(self._need(args, "ts", "thread_not_found"))
        with self.lock:
            if cid in self.not_member:
                raise SlackError("not_in_channel")
            parent = self.messages.get((cid, ts))
            if parent is None:
                raise SlackError("thread_not_found")
            root = parent.thread_ts or parent.ts
            thread = sorted(
                (
                    m
                    for (c, _), m in self.messages.items()
                    if c == cid and (m.ts == root or m.thread_ts == root)
                ),
                key=lambda m: m.ts,
            )
            found = [m.as_slack() for m in thread]
        if found and found[0]["ts"] == root:
            found[0]["reply_count"] = len(found) - 1
        return _page(found, args, "messages", self.replies_page)

    def _conversations_open(self, args: Json) -> Json:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if args.get("channel"):
            return {"channel": {"id": self.channel_id(args["channel"])}}
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) == 1:
            return {
                "no_op": True,
                "already_open": True,
                "channel": {"id": self._dm(users[0]), "is_im": True, "user": users[0]},
            }
        digest = hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:9].upper()  # noqa: S324
        return {"channel": {"id": f"G{digest}", "is_mpim": True}}

    # ------------------------------------------------------------ HTTP

    def _args(self) -> Json:
        args: Json = dict(request.args.items())
        args.update(request.form.items())
        if request.is_json:
            data = request.get_json(silent=True)
            if isinstance(data, dict):
                args.update(data)
        return args

    def _authorized(self, args: Json) -> str | None:
        """None when the token is good, else Slack's error code."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or args.pop("token", None)
        if not token:
            return "not_authed"
        if self.token is not None and not hmac.compare_digest(str(token), self.token):
            return "invalid_auth"
        return None

    def _record(self, method: str, args: Json, ok: bool, error: str | None) -> None:
        with self.lock:
            self._calls.append(Call(method, args, time.time(), ok, error))

    def _routes(self) -> None:
        app = self.app

        @app.before_request
        def faults() -> Response | tuple[Response, int] | None:
            # Only the Web API misbehaves; the page, the sink and the control endpoints stay up.
            if not request.path.startswith("/api/"):
                return None
            with self.lock:
                down, delay = self.faults.down, self.faults.delay
            if down:
                return Response("<html><body>503 Service Unavailable</body></html>", 503)
            if delay:
                time.sleep(delay)
            status = self.injected_error()
            if status is not None:
                return jsonify(ok=False, error="fatal_error"), status
            return None

        @app.after_request
        def count(response: Response) -> Response:
            if request.path.startswith("/api/") or request.path.startswith("/response/"):
                rule = request.url_rule.rule if request.url_rule else "unmatched"
                if request.view_args and "method" in request.view_args:
                    rule = f"/api/{request.view_args['method']}"
                self.count(f"{request.method} {rule}", response.status_code)
            return response

        @app.route("/api/<method>", methods=["GET", "POST"])
        def api(method: str) -> Response | tuple[Response, int]:
            args = self._args()
            error = self._authorized(args)
            if error is not None:
                self._record(method, args, False, error)
                return jsonify(ok=False, error=error)
            with self.lock:
                limit = self.limits.get(method)
                if limit is not None and limit.after > 0:
                    limit.after -= 1
                    limit = None
                elif limit is not None and limit.remaining is not None:
                    limit.remaining -= 1
                    if limit.remaining <= 0:
                        del self.limits[method]
            if limit is not None:
                self._record(method, args, False, "ratelimited")
                response = jsonify(ok=False, error="ratelimited")
                response.headers["Retry-After"] = str(limit.retry_after)
                return response, 429
            handler = self._methods.get(method)
            if handler is None:
                self._record(method, args, False, "unknown_method")
                return jsonify(ok=False, error="unknown_method"), 404
            try:
                result = handler(args)
            except SlackError as exc:
                self._record(method, args, False, exc.error)
                return jsonify(ok=False, error=exc.error)
            self._record(method, args, True, None)
            logs.event(log, "sandbox.slack.call", method=method)
            return jsonify(ok=True, **result)

        @app.post("/response/<name>")
        def response_sink(name: str) -> Response:
            body: Any = request.get_json(silent=True)
            if body is None:
                body = request.form.to_dict() or request.get_data(as_text=True)
            with self.lock:
                self.responses.append({"name": name, "body": body, "at": time.time()})
            return jsonify(ok=True)

        @app.get("/files-pri/<file_ref>/<path:name>")
        def file_download(file_ref: str, name: str) -> BaseResponse:
            # Slack's file host wants the bot token as a Bearer header (files:read).
            header = request.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ").strip()
            if not header.startswith("Bearer ") or (
                self.token is not None and not hmac.compare_digest(token, self.token)
            ):
                return Response("<html>sign in</html>", 302, {"Location": "/signin"})
            fid = file_ref.rsplit("-", 1)[-1]
            with self.lock:
                data = self.file_bytes.get(fid)
                file = self.files.get(fid) or {}
            if data is None:
                return Response("not found", 404)
            return Response(data, 200, {"Content-Type": file.get("mimetype", "")})

        @app.post(f"{CONTROL}/say")
        def say() -> Response:
            data = request.get_json(force=True) or {}
            files = [
                self.add_file(
                    f["name"],
                    base64.b64decode(f["content_base64"])
                    if "content_base64" in f
                    else str(f.get("content", "")).encode(),
                    f.get("mimetype", "text/plain"),
                )
                for f in data.get("files") or []
            ]
            message = self.say(
                data["channel"],
                data["user"],
                data.get("text", ""),
                thread_ts=data.get("thread_ts"),
                files=files,
                team=data.get("team"),
            )
            return jsonify(channel=message.channel, ts=message.ts, message=message.as_slack())

        @app.post(f"{CONTROL}/share")
        def share() -> Response:
            data = request.get_json(force=True) or {}
            cid = self.share_channel(data["channel"], *(data.get("teams") or ()))
            return jsonify(channel=cid)

        @app.post(f"{CONTROL}/channels")
        def create_channels() -> Response:
            data = request.get_json(force=True) or {}
            names = [str(n) for n in data.get("names") or ()]
            return jsonify(channels=dict(zip(names, self.create_channels(*names), strict=True)))

        @app.get(f"{CONTROL}/channels")
        def list_channels() -> Response:
            with self.lock:
                return jsonify(channels=dict(self.channels))

        @app.get("/archives/<channel>/<ts>")
        def archive(channel: str, ts: str) -> BaseResponse:
            return redirect(f"/#msg-{channel}-{ts.removeprefix('p')}")

        @app.get(f"{CONTROL}/calls")
        def calls() -> Response:
            items = self.calls(request.args.get("method"))
            return jsonify(calls=[asdict(c) for c in items])

        @app.get(f"{CONTROL}/responses")
        def responses() -> Response:
            with self.lock:
                return jsonify(responses=list(self.responses))

        @app.get(f"{CONTROL}/messages")
        def messages() -> Response:
            with self.lock:
                items = [asdict(m) for m in sorted(self.messages.values(), key=lambda m: m.ts)]
                return jsonify(messages=items, ephemeral=list(self.ephemeral))

        @app.post(f"{CONTROL}/ratelimit")
        def ratelimit() -> Response:
            data = request.get_json(force=True) or {}
            if data.get("method"):
                self.rate_limit(
                    data["method"],
                    retry_after=int(data.get("retry_after", 1)),
                    count=data.get("count"),
                    after=int(data.get("after", 0)),
                )
            else:
                self.clear_rate_limits()
            return jsonify(ok=True)

        @app.post(f"{CONTROL}/users")
        def add_user() -> Response:
            data = request.get_json(force=True) or {}
            user = self.add_user(
                data["id"],
                data["name"],
                data.get("real_name", data["name"]),
                data.get("email"),
                team=data.get("team") or TEAM_ID,
            )
            return jsonify(user=user)

        @app.get("/")
        def page() -> str:
            # Messages as Slack shows them, the JSON one click away: slack_page.py.
            from integrations.sandbox.slack_page import render_page

            return render_page(self)


def _page(items: list[Json], args: Json, name: str, default_limit: int) -> Json:
    """One page of a cursor-paginated list, as Slack answers it (the cursor is an offset)."""
    try:
        start = int(str(args.get("cursor") or "0").removeprefix("offset:") or 0)
        limit = int(args.get("limit") or default_limit)
    except ValueError:
        raise SlackError("invalid_cursor") from None
    page = items[start : start + max(1, limit)]
    more = start + len(page) < len(items)
    cursor = f"offset:{start + len(page)}" if more else ""
    return {name: page, "has_more": more, "response_metadata": {"next_cursor": cursor}}


def _decoded(value: Any) -> Any:
    # Form-encoded calls carry blocks and views as JSON strings.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
