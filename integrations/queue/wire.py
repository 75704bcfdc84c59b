"""Redis commands written in Redis's wire format, and the round trip that sends them.

The intake's write is three commands, one of them rq's enqueue script with some forty
arguments. redis-py's pipeline encodes every argument of every command on every call
and runs its pipeline machinery around one socket write: together more CPU than all of
the rest of a `/feedback` request (docs/slack.md). Here a command is encoded once into
RESP (Redis's protocol: `*<count>` then `$<length>` and the bytes of each argument), so
a caller can keep the parts that never change already encoded, and a round trip is a
single write of the bytes and one reply read per command, on a connection from the
client's own pool, with the client's own retry policy.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Mapping
from typing import Any

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


def bulk(value: bytes) -> bytes:
    """One argument in RESP: `$<length>`, the bytes."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*args: Arg) -> bytes:
    """A whole command in RESP."""
    return b"*%d\r\n" % len(args) + b"".join(bulk(arg(a)) for a in args)


class Slot(str):
    """The name of an argument a CommandTemplate leaves open, given per call."""


class CommandTemplate:
    """A command encoded once, with Slots for the arguments that differ from call to call."""

    def __init__(self, *args: Arg | Slot) -> None:
        # The encoded runs of fixed arguments between the slots: the first before any slot,
        # then each slot's name with the run that follows it.
        names: list[str] = []
        runs: list[bytes] = []
        fixed = [b"*%d\r\n" % len(args)]
        for value in args:
            if isinstance(value, Slot):
                names.append(str(value))
                runs.append(b"".join(fixed))
                fixed = []
            else:
                fixed.append(bulk(arg(value)))
        runs.append(b"".join(fixed))
        self._head = runs[0]
        self._slots = list(zip(names, runs[1:], strict=True))

    def fill(self, values: Mapping[str, Arg]) -> bytes:
        """The whole command, each slot replaced by its value."""
        parts = [self._head]
        for name, after in self._slots:
            value = values[name]
            encoded = value if isinstance(value, bytes) else arg(value)
            parts += (b"$%d\r\n" % len(encoded), encoded, b"\r\n", after)
        return b"".join(parts)


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


# Below this size a job's data is stored in its zlib stream, not squeezed: setting up a
# compressor cost a small report more than the rest of its intake's Python, to save a few
# hundred bytes of a hash that lives a day. Larger data is compressed as rq does it.
STORE_BELOW = 4096
# A zlib stream (RFC 1950): header 0x78 0x01 (deflate, 32 KB window, no dictionary).
_ZLIB_HEADER = b"\x78\x01"


def deflate(data: bytes) -> bytes:
    """The job's data as rq writes it: a zlib stream (rq reads it with zlib.decompress).

    zlib sets up some 256 KB of state for every stream it writes, whatever the level; on
    this project's machine that allocation alone cost 60 us a call (zlib.compress at level
    0 included), a sixth of an intake request (docs/slack.md). A small report is written
    here as one stored deflate block (RFC 1951: final, uncompressed; its length and the
    length's complement) inside the zlib framing, with zlib's own Adler-32: 1 us, 11 bytes
    more than the data. A large one is compressed at level 6 with memLevel 4, a quarter of
    the hash memory, within a few percent of zlib.compress's size.
    """
    size = len(data)
    if size < STORE_BELOW:
        block = b"\x01" + size.to_bytes(2, "little") + (size ^ 0xFFFF).to_bytes(2, "little")
        return _ZLIB_HEADER + block + data + zlib.adler32(data).to_bytes(4, "big")
    deflate = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 4)
    return deflate.compress(data) + deflate.flush()


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
