"""The hub's small exception family: views and jobs turn these into answers in one place each."""

from __future__ import annotations

import logging

from integrations import logs


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class Rejected(HubError):
    """Bad input from a caller: answered with `status` and a message that says what is wrong."""

    def __init__(self, status: int, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code or _CODES.get(status, "bad_request")


class Retryable(HubError):
    """An outside service failed in a way that may pass: try again after `retry_after` seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Permanent(HubError):
    """An outside service refused the request for good (a 4xx other than 429): dead letters."""

    def __init__(self, reason: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body


class Unavailable(HubError):
    """The hub cannot accept work right now (Redis down): the caller must retry."""


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    431: "headers_too_large",
    501: "not_implemented",
    503: "unavailable",
}


def error_code(status: int) -> str:
    """The JSON error code for an HTTP status."""
    return _CODES.get(status, "error" if status >= 500 else "bad_request")


def error_payload(status: int, message: str, code: str | None = None) -> dict[str, str]:
    """Every route's error answer: {"error": code, "message": text}."""
    return {"error": code or error_code(status), "message": message}


def internal_error(log: logging.Logger, exc: BaseException, path: str) -> dict[str, str]:
    """A bug that reached a route: logged (an event line, then the traceback); the 500's payload.

    Every route answers it the same way, whoever caught it: Flask, /slack/commands on the
    event loop, or the bridge between the two.
    """
    logs.event(log, "http.internal_error", logging.ERROR, path=path, error=type(exc).__name__)
    log.error("unhandled error", exc_info=exc)
    return error_payload(500, "internal error; it has been logged", "internal")
