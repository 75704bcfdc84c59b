"""slack_sdk's WebClient, wrapped so a worker never sleeps on Slack: errors become hub errors.

- 429 (`ratelimited`): Retryable(retry_after=Retry-After); the wait is shared by every
  worker through the rate limiter in Redis, and the job is rescheduled, not slept.
- connection errors and 5xx: a few quick retries inside the call (tenacity), then Retryable.
- any other error (`channel_not_found`, `not_in_channel`, ...): Permanent with Slack's code.

response_url posts go only to Slack's hook host or to the host of SLACK_API_URL (the
sandbox): a forged payload must not make the hub POST anywhere it names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.client import HTTPException
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from integrations import logs
from integrations.errors import Permanent, Retryable
from integrations.queue.ratelimit import DEFAULT_RETRY_AFTER, RateLimiter, retry_after_seconds
from integrations.settings import Settings

log = logging.getLogger(__name__)

SLACK_HOOK_HOST = "hooks.slack.com"
# In a worker: enough to ride out a blip, short enough not to hold the job.
WORKER_TIMEOUT = 10
WORKER_ATTEMPTS = 3


class _Transient(Exception):
    """A failure worth an immediate retry (connection error, 5xx)."""


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

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a Web API method by its name ("chat.postMessage") through slack_sdk's own method."""
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

    def post_message(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """chat.postMessage with a message from `messages`."""
        return self.call("chat.postMessage", channel=channel, **_chat_fields(message))

    def post_ephemeral(
        self, channel: str, user: str, message: dict[str, Any], thread_ts: str | None = None
    ) -> dict[str, Any]:
        """chat.postEphemeral: a message only `user` sees in `channel`."""
        extra = {"thread_ts": thread_ts} if thread_ts else {}
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
