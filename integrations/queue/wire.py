"""Redis commands for the intake's one write, and the round trip that sends them.

The hub's hand-written infrastructure, in one module (tests/integrations/queue/test_wire.py
pins each part to the library it stands in for):

- Encoding is the library's: `hiredis.pack_command`, the C encoder redis-py itself
  uses when hiredis is installed. A `CommandTemplate` keeps the arguments that never
  change already converted, and converts only the ones that differ per call.
- The round trip is written here. redis-py's pipeline encodes every argument again
  on every call and runs its machinery around one socket write: measured at more CPU
  than the rest of a `/feedback` request (docs/slack.md). `round_trip` is a single
  write of the bytes and one reply read per command, on a connection from the
  client's own pool, with the client's own retry policy.
- `script` registers the Lua scripts the write calls by EVALSHA (rq's unique enqueue, the
  console's record of an accepted report), so a Redis that lost them is given them again.
- The job's data is zlib's (`zlib.compress`), as rq writes it, at level 0 for a small
  report (docs/architecture.md: the bench that chose it).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import zlib
from collections.abc import Mapping
from typing import Any

import hiredis
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float


def arg(value: Arg) -> bytes:
    """One argument as redis-py sends it: bytes as they are, text as UTF-8, numbers as repr."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        # redis-py refuses bools too: True would go out as "True", not 1.
        raise TypeError("a bool is not a Redis argument; convert it to bytes, str or a number")
    if isinstance(value, int | float):
        return repr(value).encode()
    raise TypeError(f"a {type(value).__name__} is not a Redis argument")


def command(*args: Arg) -> bytes:
    """A whole command in RESP."""
    # hiredis's type stub declares a one-element tuple; any length is packed.
    return hiredis.pack_command(tuple(arg(a) for a in args))  # type: ignore[arg-type]


class Slot(str):
    """The name of an argument a CommandTemplate leaves open, given per call."""


class CommandTemplate:
    """A command whose fixed arguments are converted once; Slots are given per call."""

    def __init__(self, *args: Arg | Slot) -> None:
        self._args: list[bytes | Slot] = [a if isinstance(a, Slot) else arg(a) for a in args]
        self._slots = [(i, str(a)) for i, a in enumerate(args) if isinstance(a, Slot)]

    def fill(self, values: Mapping[str, Arg]) -> bytes:
        """The whole command, each slot replaced by its value."""
        args = list(self._args)
        for i, name in self._slots:
            value = values[name]
            args[i] = value if isinstance(value, bytes) else arg(value)
        return hiredis.pack_command(tuple(args))  # type: ignore[arg-type]


# The Lua scripts the intake's write calls by EVALSHA, by SHA-1: a Redis that answers
# NOSCRIPT (restarted, SCRIPT FLUSH) is given every one, and the write is sent again
# (group_commit).
SCRIPTS: dict[str, str] = {}


def script(source: str) -> str:
    """Register a Lua script that staged writes call by EVALSHA; its SHA-1."""
    # Redis names scripts by their SHA-1 (EVALSHA); not a security use.
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    SCRIPTS[sha] = source
    return sha


class Commands:
    """Commands in wire format, in order, to go to Redis in one write; one reply each."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0

    def add(self, *args: Arg) -> Commands:
        """Append one command given by its arguments, e.g. add("SET", key, value, "NX")."""
        return self.add_encoded(command(*args))

    def add_encoded(self, encoded: bytes) -> Commands:
        """Append one command already in RESP (`command`, `CommandTemplate.fill`)."""
        self.parts.append(encoded)
        self.count += 1
        return self

    def extend(self, other: Commands) -> Commands:
        """Append another caller's commands, in their order."""
        self.parts += other.parts
        self.count += other.count
        return self


def round_trip(connection: Redis, commands: Commands) -> list[Any]:
    """Send the commands in one write and read their replies, in order.

    A reply that is an error (WRONGTYPE, NOSCRIPT, a script's error) comes back in
    its place as the ResponseError, as a pipeline's execute(raise_on_error=False)
    gives it; the others are the raw replies (bytes, ints, None). A connection or
    timeout error is retried as the client retries any command (its `retry`, on a new
    connection), then raised: every command sent this way must be safe to repeat.
    """
    pool = connection.connection_pool
    conn = pool.get_connection()
    data = b"".join(commands.parts)

    def send() -> list[Any]:
        conn.send_packed_command([data])
        replies: list[Any] = []
        for _ in range(commands.count):
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    try:
        result: list[Any] = conn.retry.call_with_retry(send, lambda _error: conn.disconnect())
        return result
    finally:
        pool.release(conn)


async def round_trip_async(client: AsyncRedis, commands: Commands) -> list[Any]:
    """`round_trip` for an event loop, on an asyncio client's pool and retry policy.

    The replies are read under one timeout for the whole trip (the client's socket
    timeout), not one per reply: each of those put a timer on the loop's heap and took it
    off again, three times a report.
    """
    pool = client.connection_pool
    conn = await pool.get_connection()
    data = b"".join(commands.parts)

    async def send() -> list[Any]:
        await conn.send_packed_command([data])
        replies: list[Any] = []
        try:
            async with asyncio.timeout(conn.socket_timeout):
                for _ in range(commands.count):
                    try:
                        # math.inf: no timeout of its own (redis-py's documented opt-in).
                        replies.append(await conn.read_response(timeout=math.inf))
                    except ResponseError as exc:
                        replies.append(exc)
        except TimeoutError:
            # The read was cancelled part way: the connection's state is unknown.
            await conn.disconnect(nowait=True)
            raise RedisTimeoutError(f"no reply from Redis within {conn.socket_timeout} s") from None
        return replies

    async def reconnect(_error: Exception) -> None:
        await conn.disconnect()

    try:
        result: list[Any] = await conn.retry.call_with_retry(send, reconnect)
        return result
    finally:
        await pool.release(conn)


# Below this size a job's data is stored in its zlib stream, not squeezed: compressing a
# small report cost more than the rest of its intake's Python, to save a few hundred bytes
# of a hash that lives a day. Larger data is compressed as rq does it.
STORE_BELOW = 4096


def deflate(data: bytes) -> bytes:
    """The job's data as rq writes it: a zlib stream (rq reads it with zlib.decompress)."""
    return zlib.compress(data, 0 if len(data) < STORE_BELOW else 6)


_second: tuple[int, str] = (-1, "")


def utc_stamp() -> str:
    """Now as rq's utcformat writes it (`2026-12-06T05:20:41.123456Z`), the seconds formatted
    once a second: strftime on every enqueue cost more than serializing the job."""
    global _second
    now_ns = time.time_ns()
    second, micros = divmod(now_ns // 1000, 1_000_000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z"
