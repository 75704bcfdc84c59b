"""Request bodies under a size limit, as the web process's routes read them.

The checks `/slack/commands` makes (integrations/slack/commands.py) and the ones the
bridge to Flask makes (integrations/asgi.py) are the same: a Content-Length that is not a
number is a 400, a body declared or found over the limit a 413, and a client that hangs up
before its body arrived gets no answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

from integrations.errors import Rejected

# ASGI: the connection's scope, and its receive and send channels.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Disconnected(Exception):
    """The request body stopped before its end: the client went away, or sent nothing more
    for gunicorn's timeout (30 s). Answered 408 (`BODY_TIMEOUT`): a client still there
    reads it; one that went away is not written to."""


BODY_TIMEOUT = "the request body did not arrive in full in time; send the request again"


def request_headers(scope: Scope, names: frozenset[bytes]) -> dict[str, str]:
    """The request's headers named in `names` (lowercase bytes, as ASGI gives them)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in names
    }


def check_length(length: str, limit: int, too_large: str) -> None:
    """A declared Content-Length: Rejected(400) if it is not a number, (413) if over `limit`."""
    if not length.isdigit():
        raise Rejected(400, "Content-Length is not a number")
    if int(length) > limit:
        raise Rejected(413, too_large)


async def receive_body(
    receive: Receive, length: str | None, limit: int, too_large: str, into: IO[bytes]
) -> int:
    """Read an ASGI request's body into `into`; its size. Refused (413) once past `limit`."""
    if length is not None:
        check_length(length, limit, too_large)
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Rejected(413, too_large)
        into.write(chunk)
        if not message.get("more_body", False):
            return size


def json_of(data: str | bytes, what: str) -> Any:
    """`data` parsed as JSON; Rejected(400) naming `what` when it is not JSON or nests too
    deeply (Python's parser recurses: a signed body of 100,000 brackets was once a 500)."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, f"{what} is not JSON") from None
    except RecursionError:
        raise Rejected(400, f"{what} nests too deeply to be read") from None
