"""slack_sdk's WebClient, wrapped so a worker never sleeps on Slack: errors become hub errors.

- 429 (`ratelimited`): Retryable(retry_after=Retry-After); the wait is shared by every
  worker through the rate limiter in Redis, and the job is rescheduled, not slept.
- connection errors and 5xx: a few quick retries inside the call (tenacity), then Retryable.
- any other error (`channel_not_found`, `not_in_channel`, ...): Permanent with Slack's code.

response_url posts go only to Slack's hook host or to the host of SLACK_API_URL (the
sandbox): a forged payload must not make the hub POST anywhere it names.

The wall: every chat.postMessage / chat.update is internal (engineering cards, routing
explanations, thread notes, ops alerts) unless its caller says it is for the reporter
(`to_reporter=True`: receipts, relayed agent replies, "Ticket #N filed" in the filed
thread). An internal post first checks the channel with conversations.info (cached in
Redis): a channel shared with another organization (`is_ext_shared`, or an invitation
pending) is refused with an error log, an ops alert, and `SharedChannel` (Permanent).
A channel the wall cannot check (missing scope...) is refused too: it fails closed. So is
a channel name conversations.list does not return: the bot may still be able to post there
(a private Slack Connect channel it was invited to since the list was read, a listing that
misses a channel), and nothing says that channel is internal.

Files in threads are downloaded with the bot token, which only ever goes to Slack's file
host (or the host of SLACK_API_URL: the sandbox).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

import requests
from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from integrations import logs
from integrations.errors import Permanent, Retryable
from integrations.queue.enqueue import enqueue_once
from integrations.queue.jobs import OPS_ALERT
from integrations.queue.ratelimit import DEFAULT_RETRY_AFTER, RateLimiter, retry_after_seconds
from integrations.settings import Settings

log = logging.getLogger(__name__)

SLACK_HOOK_HOST = "hooks.slack.com"
SLACK_FILE_HOST = "files.slack.com"
# Posting methods the wall checks (they make messages other people read).
POSTING = frozenset({"chat.postMessage", "chat.update", "chat.scheduleMessage", "chat.meMessage"})
# A channel's shared state is asked again after this: a channel shared since is caught soon.
WALL_CACHE_SECONDS = 600
# Channel names ("#eng") resolved to ids for conversations.info, which takes ids only.
CHANNEL_IDS_SECONDS = 3600
CHANNEL_IDS_KEY = "hub:slack:channel-ids"
# Conversation (C, G, D) and user (U, W) ids: upper-case letters and digits.
SLACK_ID = re.compile(r"[CGDUW][A-Z0-9]{5,}")
# A name conversations.list did not return is asked again after this: a channel made (or
# the bot invited) since is found within a minute; until then its posts are refused.
MISSING_CHANNEL_SECONDS = 60
MISSING_CHANNEL_KEY = "hub:slack:channel-missing:{name}"
# conversations.info errors after which the post would fail the same way: let Slack say so.
_POST_FAILS_ANYWAY = {"channel_not_found", "is_archived"}
# In a worker: enough to ride out a blip, short enough not to hold the job.
WORKER_TIMEOUT = 10
WORKER_ATTEMPTS = 3


class _Transient(Exception):
    """A failure worth an immediate retry (connection error, 5xx)."""


class SharedChannel(Permanent):
    """The wall: an internal message aimed at a channel another organization reads (or may)."""


@dataclass(frozen=True)
class Refusal:
    """Why the wall refuses a channel, and what an operator does about it."""

    # Completes "that channel ...": "is shared with another organization (Slack Connect)".
    why: str
    fix: str


# The operator's fix when the channel is (or may be) another organization's.
_POINT_ELSEWHERE = "Point the rule (or SLACK_OPS_CHANNEL) at an internal channel."


class SlackApi:
    """The Slack Web API calls the hub makes, with Slack's failures turned into hub errors."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: Redis | None = None,
        timeout: float = WORKER_TIMEOUT,
        attempts: int = WORKER_ATTEMPTS,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.timeout = timeout
        self.attempts = attempts
        # No retry handlers: slack_sdk's would sleep in this thread (see module docstring).
        self.client = WebClient(
            token=settings.slack_bot_token,
            base_url=settings.slack_api_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
        )

    # ------------------------------------------------------------ Web API methods

    def call(self, method: str, *, to_reporter: bool = False, **params: Any) -> dict[str, Any]:
        """Call a Web API method by its name ("chat.postMessage") through slack_sdk's own method.

        A post is internal unless `to_reporter`: the wall checks its channel first.
        """
        if method in POSTING and not to_reporter:
            self.check_wall(str(params.get("channel") or ""), method)
        send: Callable[..., Any] = getattr(self.client, method.replace(".", "_"))
        limiter = RateLimiter(self.redis, f"slack:{method}") if self.redis is not None else None

        def once() -> dict[str, Any]:
            if limiter is not None:
                limiter.acquire()
            try:
                response = send(**params)
            except SlackApiError as exc:
                raise self._api_error(method, exc, limiter) from None
            except (URLError, HTTPException, OSError, SlackRequestError) as exc:
                raise _Transient(f"Slack {method}: {type(exc).__name__}") from None
            data: dict[str, Any] = response.data if isinstance(response.data, dict) else {}
            return data

        return self._with_retries(once)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """views.open: show a modal (needs the trigger_id within 3 s, once)."""
        return self.call("views.open", trigger_id=trigger_id, view=view)

    def post_message(
        self, channel: str, message: dict[str, Any], *, to_reporter: bool = False
    ) -> dict[str, Any]:
        """chat.postMessage with a message from `messages` (internal unless `to_reporter`)."""
        return self.call(
            "chat.postMessage", to_reporter=to_reporter, channel=channel, **_chat_fields(message)
        )

    def post_ephemeral(
        self, channel: str, user: str, message: dict[str, Any], thread_ts: str | None = None
    ) -> dict[str, Any]:
        """chat.postEphemeral: a message only `user` sees in `channel`."""
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        return self.call(
            "chat.postEphemeral", channel=channel, user=user, **_chat_fields(message), **extra
        )

    def open_dm(self, user: str) -> str:
        """conversations.open with one user: the DM channel id."""
        data = self.call("conversations.open", users=user)
        channel = data.get("channel") or {}
        return str(channel.get("id") or "")

    def user_info(self, user: str) -> dict[str, Any]:
        """users.info: the user object (profile.email needs users:read.email)."""
        user_data: dict[str, Any] = self.call("users.info", user=user).get("user") or {}
        return user_data

    def permalink(self, channel: str, ts: str) -> str | None:
        """chat.getPermalink for a message."""
        link = self.call("chat.getPermalink", channel=channel, message_ts=ts).get("permalink")
        return str(link) if link else None

    # ------------------------------------------------------------ the wall

    def check_wall(self, channel: str, method: str = "chat.postMessage") -> None:
        """Raise SharedChannel when `channel` is, or cannot be shown not to be, shared."""
        refusal = self._refusal(channel)
        if refusal is None:
            return
        logs.event(
            log,
            "slack.wall.refused",
            logging.ERROR,
            channel=channel,
            method=method,
            why=refusal.why,
        )
        self._alert_wall(channel, refusal)
        raise SharedChannel(
            f"Slack {method}: refused, {channel} {refusal.why}: internal messages go only to "
            f"channels known to be internal. {refusal.fix}",
            status=403,
            body="shared_channel",
        )

    def conversation_info(self, channel: str) -> dict[str, Any]:
        """conversations.info: the conversation object (`channel` is an id)."""
        info: dict[str, Any] = self.call("conversations.info", channel=channel).get("channel") or {}
        return info

    def _refusal(self, channel: str) -> Refusal | None:
        """Why an internal post to `channel` is refused; None when it may go."""
        channel_id = self.channel_id(channel)
        if channel_id is None:
            # Fail closed: a name conversations.list does not return may still take the
            # bot's post (a private Slack Connect channel it joined within the missing
            # cache, a listing that misses a channel), and it cannot be checked.
            return Refusal(
                "could not be found by name, so whether it is shared could not be checked",
                "Check that the bot is in that channel (/invite @feedback-hub), that the app has "
                "the channels:read and groups:read scopes, and that the name is right.",
            )
        if channel_id.startswith(("D", "U", "W")):
            return None  # a DM with one of the workspace's people (alerts, receipts)
        key = f"hub:slack:shared:{channel_id}"
        if self.redis is not None and (cached := self.redis.get(key)) is not None:
            value = cached.decode() if isinstance(cached, bytes) else str(cached)
            return None if value == "internal" else Refusal(value, _POINT_ELSEWHERE)
        try:
            info = self.conversation_info(channel_id)
        except SharedChannel:
            raise
        except Permanent as exc:
            if error_code(exc) in _POST_FAILS_ANYWAY:
                return None
            # Fail closed: a channel the hub cannot check is not known to be internal.
            why = f"could not be checked ({error_code(exc) or exc.reason})"
            return Refusal(why, _POINT_ELSEWHERE)
        verdict = shared_verdict(info)
        if self.redis is not None:
            self.redis.set(key, verdict, ex=WALL_CACHE_SECONDS)
        return None if verdict == "internal" else Refusal(verdict, _POINT_ELSEWHERE)

    def channel_id(self, channel: str) -> str | None:
        """A channel's id: ids pass through, "#name" is looked up (conversations.list, cached)."""
        name = channel_name(channel)
        if name is None:
            return channel  # a channel, DM or user id: no lookup
        if self.redis is not None and (known := self.redis.hget(CHANNEL_IDS_KEY, name)):
            return known.decode() if isinstance(known, bytes) else str(known)
        missing = MISSING_CHANNEL_KEY.format(name=name)
        if self.redis is not None and self.redis.exists(missing):
            return None
        ids: dict[Any, Any] = {}
        cursor = ""
        while True:
            params: dict[str, Any] = {
                "types": "public_channel,private_channel",
                "exclude_archived": True,
                "limit": 200,
            }
            if cursor:
                params["cursor"] = cursor
            page = self.call("conversations.list", **params)
            for found in page.get("channels") or []:
                if found.get("name") and found.get("id"):
                    ids[str(found["name"])] = str(found["id"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        if self.redis is not None:
            pipe = self.redis.pipeline()
            if ids:
                pipe.hset(CHANNEL_IDS_KEY, mapping=ids)
                pipe.expire(CHANNEL_IDS_KEY, CHANNEL_IDS_SECONDS)
            if name not in ids:
                # Not listed (private without the bot, misspelt, or a scope missing): the
                # wall refuses it. Asked again soon: a channel made since is checked.
                pipe.set(missing, 1, ex=MISSING_CHANNEL_SECONDS)
            pipe.execute()
        found = ids.get(name)
        return str(found) if found else None

    def _alert_wall(self, channel: str, refusal: Refusal) -> None:
        ops = self.settings.slack_ops_channel
        if self.redis is None or (ops and ops.lstrip("#") == channel.lstrip("#")):
            return  # the ops channel itself is refused: the error log is all that is left
        hour = int(time.time() // 3600)
        enqueue_once(
            self.redis,
            OPS_ALERT,
            f":no_entry: the wall held: an internal message for {channel} was not posted, "
            f"because that channel {refusal.why}. {refusal.fix}",
            key=f"wall:{channel}:{hour}",
        )

    # ------------------------------------------------------------ files

    def download(self, url: str, *, max_bytes: int) -> bytes | None:
        """A Slack file's bytes with the bot token; None when it is larger than `max_bytes`.

        The token goes only to Slack's file host (https) or the host of SLACK_API_URL.
        """
        parts = urlsplit(url)
        api = urlsplit(self.settings.slack_api_url)
        slack_host = parts.scheme == "https" and parts.hostname == SLACK_FILE_HOST
        if not (slack_host or (parts.scheme == api.scheme and parts.netloc == api.netloc)):
            raise Permanent(f"Slack file at {_host(url)} refused: not Slack's file host", 400)

        def once() -> bytes | None:
            try:
                with requests.get(
                    url,
                    headers={"Authorization": f"Bearer {self.settings.slack_bot_token}"},
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                ) as response:
                    if response.status_code == 429:
                        wait = retry_after_seconds(response.headers.get("Retry-After"))
                        raise Retryable("Slack file: rate limited", wait or DEFAULT_RETRY_AFTER)
                    if response.status_code >= 500:
                        raise _Transient(f"Slack file: HTTP {response.status_code}")
                    if response.status_code != 200 or "text/html" in response.headers.get(
                        "Content-Type", ""
                    ):
                        # Slack answers a file the token cannot read with a sign-in page.
                        raise Permanent(
                            f"Slack file: HTTP {response.status_code}",
                            status=response.status_code,
                            body="file_not_downloadable",
                        )
                    data = bytearray()
                    for chunk in response.iter_content(64 * 1024):
                        data += chunk
                        if len(data) > max_bytes:
                            return None
                    return bytes(data)
            except requests.RequestException as exc:
                raise _Transient(f"Slack file: {type(exc).__name__}") from None

        result: bytes | None = self._with_retries(once)
        return result

    # ------------------------------------------------------------ response_url

    def response_url_allowed(self, url: str | None) -> bool:
        """True only for Slack's hook host (https) or the host of SLACK_API_URL (the sandbox)."""
        if not url:
            return False
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.username is not None or parts.password is not None:
            return False  # "https://hooks.slack.com@elsewhere/" names another host
        if parts.scheme == "https" and parts.hostname == SLACK_HOOK_HOST and port in (None, 443):
            return True
        api = urlsplit(self.settings.slack_api_url)
        return parts.scheme == api.scheme and parts.netloc == api.netloc

    def respond(self, url: str, message: dict[str, Any]) -> bool:
        """Post to a response_url; False when it is not allowed or no longer usable."""
        if not self.response_url_allowed(url):
            logs.event(log, "slack.response_url.refused", logging.WARNING, host=_host(url))
            return False
        hook = WebhookClient(url, timeout=int(self.timeout) or 1, retry_handlers=[])

        def once() -> bool:
            try:
                response = hook.send_dict(message)
            except (URLError, HTTPException, OSError) as exc:
                raise _Transient(f"Slack response_url: {type(exc).__name__}") from None
            if response.status_code == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                raise Retryable("Slack response_url: rate limited", wait or DEFAULT_RETRY_AFTER)
            if response.status_code >= 500:
                raise _Transient(f"Slack response_url: HTTP {response.status_code}")
            if response.status_code >= 400:
                # Expired (30 minutes) or used up (5 replies): Slack says so with a 404.
                logs.event(
                    log,
                    "slack.response_url.unusable",
                    status=response.status_code,
                    body=(response.body or "")[:60],
                )
                return False
            return True

        return self._with_retries(once)

    # ------------------------------------------------------------ helpers

    def _with_retries(self, fn: Callable[[], Any]) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(max(self.attempts, 1)),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            return retrying(fn)
        except _Transient as exc:
            raise Retryable(str(exc), retry_after=None) from None

    def _api_error(self, method: str, exc: SlackApiError, limiter: RateLimiter | None) -> Exception:
        response = exc.response
        status = int(response.status_code or 0)
        data = response.data if isinstance(response.data, dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        if status == 429 or code == "ratelimited":
            headers = {str(k): str(v) for k, v in (response.headers or {}).items()}
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            wait = limiter.observe(429, {"Retry-After": retry_after or ""}) if limiter else None
            wait = wait or retry_after_seconds(retry_after) or DEFAULT_RETRY_AFTER
            logs.event(log, "slack.rate_limited", method=method, retry_after=wait)
            return Retryable(f"Slack {method}: rate limited", retry_after=wait)
        if status >= 500:
            return _Transient(f"Slack {method}: HTTP {status}")
        return Permanent(f"Slack {method}: {code}", status=status, body=code)


def shared_verdict(conversation: dict[str, Any]) -> str:
    """ "internal", or why another organization reads this conversation (conversations.info)."""
    if conversation.get("is_ext_shared"):
        return "is shared with another organization (Slack Connect)"
    if conversation.get("is_pending_ext_shared"):
        return "is being shared with another organization (Slack Connect invitation pending)"
    return "internal"


def channel_name(channel: str) -> str | None:
    """The name in "#eng" or "eng"; None for a channel, DM or user id ("C0123ABC", "U0ADA")."""
    name = channel.lstrip("#")
    if not channel.startswith("#") and SLACK_ID.fullmatch(name):
        return None
    return name


def error_code(exc: Permanent) -> str:
    """Slack's error code ("channel_not_found") from a Permanent raised by SlackApi."""
    return exc.body or ""


def _chat_fields(message: dict[str, Any]) -> dict[str, Any]:
    # response_url-only fields mean nothing to chat.* methods.
    return {k: v for k, v in message.items() if k not in ("response_type", "replace_original")}


def _host(url: str | None) -> str:
    try:
        return urlsplit(url or "").hostname or ""
    except ValueError:
        return ""
