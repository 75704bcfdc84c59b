"""Commands in Redis's wire format: the same bytes redis-py sends, and a round trip that
gives each command its own reply or error and survives a dropped connection."""

from __future__ import annotations

import socket
import threading
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from redis.connection import PythonRespSerializer
from redis.exceptions import NoScriptError, ResponseError
from rq.utils import now as utcnow
from rq.utils import utcparse

from integrations.queue import (
    DEFAULT_RETRY,
    JOB_TIMEOUT,
    TICKETS,
    JobTemplate,
    queue,
)
from integrations.queue.enqueue import UNIQUE_ENQUEUE_SHA
from integrations.queue.wire import Commands, CommandTemplate, Slot, arg, command, round_trip

_PACKER = PythonRespSerializer(buffer_cutoff=1 << 30, encode=lambda v: _encoder().encode(v))


def _encoder() -> Any:
    from redis._parsers.encoders import Encoder

    return Encoder("utf-8", "strict", False)


def redis_py_bytes(*args: Any) -> bytes:
    """What redis-py's own (pure Python) packer sends for the same command."""
    return b"".join(_PACKER.pack(*args))


arguments = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)


@given(st.lists(arguments, min_size=1, max_size=12))
def test_a_command_is_the_bytes_redis_py_sends(args: list[Any]) -> None:
    assert command("SET", *args) == redis_py_bytes("SET", *args)


@given(st.lists(st.tuples(arguments, st.booleans()), min_size=1, max_size=12))
def test_a_template_filled_in_is_the_command_with_those_arguments(
    args: list[tuple[Any, bool]],
) -> None:
    # Each argument either fixed in the template or left as a slot and given at fill time.
    template = CommandTemplate(
        "SET", *(Slot(f"a{i}") if open_ else value for i, (value, open_) in enumerate(args))
    )
    filled = template.fill({f"a{i}": value for i, (value, open_) in enumerate(args) if open_})
    assert filled == command("SET", *(value for value, _ in args))


def test_a_bool_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(TypeError, match="bool"):
        command("SET", "k", True)


def test_the_enqueue_call_is_rqs_script_call_with_this_jobs_fields(redis: Redis) -> None:
    q = queue(redis, TICKETS)
    template = JobTemplate(q, "workers.intake.file_report", DEFAULT_RETRY, JOB_TIMEOUT, {})
    args = ({"subject": "The export button does nothing", "tags": ["slack", "export"]},)

    encoded = template.enqueue_command("file-report-abc", args, description="file_report x")

    sent = _parse_resp(encoded)
    assert encoded == redis_py_bytes(*sent)  # framed exactly as redis-py frames it
    assert sent[:8] == [
        b"EVALSHA", UNIQUE_ENQUEUE_SHA.encode(), b"2", b"rq:job:file-report-abc",
        q.key.encode(), b"file-report-abc", b"R", str(template.ttl).encode(),
    ]  # fmt: skip
    got = dict(zip(sent[8::2], sent[9::2], strict=True))
    rqs = {arg(k): arg(v) for k, v in zip(template.fields[::2], template.fields[1::2], strict=True)}
    per_job = {b"data", b"description", b"created_at", b"enqueued_at"}
    assert got.keys() == rqs.keys()
    assert {k: v for k, v in got.items() if k not in per_job} == {
        k: v for k, v in rqs.items() if k not in per_job
    }
    assert got[b"description"] == b"file_report x"
    data = template.serializer.loads(zlib.decompress(got[b"data"]))
    assert data == ("workers.intake.file_report", None, args, {})
    for stamp in (b"created_at", b"enqueued_at"):
        assert abs((utcparse(got[stamp].decode()) - utcnow()).total_seconds()) < 5


def test_each_command_gets_its_own_reply_or_error(redis: Redis) -> None:
    redis.set("a-string", "x")
    commands = (
        Commands()
        .add("SET", "k", "v")
        .add("LPUSH", "a-string", "y")
        .add("INCRBY", "n", 41)
        .add("EVALSHA", "0" * 40, 0)
        .add("GET", "k")
    )

    replies = round_trip(redis, commands)

    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError) and "WRONGTYPE" in str(replies[1])
    assert replies[2] == 41
    assert isinstance(replies[3], NoScriptError)
    assert replies[4] == b"v"


def test_a_connection_dropped_mid_trip_is_retried_on_a_new_one(redis: Redis) -> None:
    # A proxy in front of Redis that drops the connection the commands first arrive on,
    # after its handshake, as a failover or a network blip would.
    kwargs = redis.connection_pool.connection_kwargs
    with _DroppingProxy(kwargs["host"], kwargs["port"], when=b"tries") as proxy:
        client = Redis(port=proxy.port, db=kwargs.get("db", 0), socket_timeout=5)

        replies = round_trip(client, Commands().add("INCR", "tries").add("SET", "after", "1"))

        client.close()
    assert proxy.dropped == 1
    assert replies == [1, b"OK"]  # sent again on a new connection, done once
    assert redis.get("after") == b"1"


class _DroppingProxy:
    """A TCP proxy to Redis that drops the first connection whose data contains `when`."""

    def __init__(self, host: str, port: int, when: bytes) -> None:
        self.target = (host, port)
        self.when = when
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.dropped = 0

    def __enter__(self) -> _DroppingProxy:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        try:
            while data := src.recv(65536):
                if watch and self.when in data and not self.dropped:
                    self.dropped += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                sock.close()


def _parse_resp(data: bytes) -> list[bytes]:
    """The arguments of one RESP command."""
    head, _, rest = data.partition(b"\r\n")
    assert head.startswith(b"*")
    out = []
    for _ in range(int(head[1:])):
        size, _, rest = rest.partition(b"\r\n")
        n = int(size[1:])
        out.append(rest[:n])
        rest = rest[n + 2 :]
    assert rest == b""
    return out
