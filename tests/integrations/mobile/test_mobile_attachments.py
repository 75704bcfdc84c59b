"""Attachment storage in Redis: what the web process puts is what the worker gets, until TTL."""

from __future__ import annotations

import io

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from integrations.queue.attachments import CHUNK_BYTES, RedisAttachmentStore, attachment_store


def test_bytes_round_trip_then_delete(redis: Redis) -> None:
    store = attachment_store(redis)
    ref = store.put(b"hello log", "app.log", "text/plain")
    assert (ref.filename, ref.content_type, ref.size) == ("app.log", "text/plain", 9)
    assert store.get(ref.key) == b"hello log"
    store.delete(ref.key)
    assert store.get(ref.key) is None
    store.delete(ref.key)  # twice is fine


def test_stream_is_copied_in_chunks_and_expires(redis: Redis) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 3 + 7)
    store = RedisAttachmentStore(redis, ttl_seconds=600)
    ref = store.put(io.BytesIO(data), "movie.mp4", "video/mp4")
    assert ref.size == len(data)
    assert store.get(ref.key) == data
    assert 0 < redis.ttl(f"hub:attachment:{ref.key}") <= 600


def test_empty_stream_is_stored_as_empty(redis: Redis) -> None:
    store = attachment_store(redis)
    ref = store.put(io.BytesIO(b""), "empty.txt", "text/plain")
    assert ref.size == 0 and store.get(ref.key) == b""


class _Broken(io.BytesIO):
    """A stream that fails after its first chunk, as a client disconnecting mid-upload does."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def read(self, size: int | None = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise OSError("client went away")
        return b"x" * 10


def test_a_stream_cut_short_leaves_nothing_behind(redis: Redis) -> None:
    store = attachment_store(redis)
    with pytest.raises(OSError, match="client went away"):
        store.put(_Broken(), "a.txt", "text/plain")
    assert redis.keys("hub:attachment:*") == []


def test_redis_down_raises_redis_error() -> None:
    dead = Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(RedisError):
        attachment_store(dead).put(b"x", "a.txt", "text/plain")
