"""Attachment storage: files from the web process wait here for the worker to upload them.

The web process streams each accepted file into the store and puts only an
`AttachmentRef` into the job; the worker reads the bytes, uploads them to
Zendesk, creates the ticket and deletes them. Redis with a TTL is enough at the
hub's scale (see docs/mobile.md, "Limits"); the `AttachmentStore` protocol is
what an object store (S3, GCS) would implement instead.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError

from integrations.report import AttachmentRef

# The file_report job's retries last about 12 hours (integrations.queue.DEFAULT_RETRY);
# a week leaves room for an operator to replay a dead letter after a long outage.
ATTACHMENT_TTL = 7 * 24 * 3600
# Written to Redis this much at a time, so a 10 MB upload never sits in the web
# process's memory twice.
CHUNK_BYTES = 256 * 1024


class Readable(Protocol):
    """A binary stream: an open file, a Werkzeug upload, a checking wrapper around either."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


class AttachmentStore(Protocol):
    """Where attachment bytes wait between the web process and the worker."""

    def put(self, data: bytes | Readable, filename: str, content_type: str) -> AttachmentRef:
        """Store the bytes (or everything a binary stream yields) and return their reference."""
        ...

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when they expired or were deleted."""
        ...

    def delete(self, key: str) -> None:
        """Forget the bytes (after the upload to Zendesk); deleting twice is fine."""
        ...


class RedisAttachmentStore:
    """Attachments as Redis strings that expire after `ttl_seconds`."""

    def __init__(self, redis: Redis, ttl_seconds: int = ATTACHMENT_TTL) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    def _key(self, key: str) -> str:
        return f"hub:attachment:{key}"

    def put(self, data: bytes | Readable, filename: str, content_type: str) -> AttachmentRef:
        """Store the bytes under a new random key; a stream is copied chunk by chunk."""
        key = uuid.uuid4().hex
        redis_key = self._key(key)
        size = 0
        try:
            if isinstance(data, bytes):
                self.redis.set(redis_key, data, ex=self.ttl_seconds)
                size = len(data)
            else:
                # The TTL is set with the first chunk: a copy cut short by a crash
                # expires on its own.
                self.redis.set(redis_key, b"", ex=self.ttl_seconds)
                while chunk := data.read(CHUNK_BYTES):
                    self.redis.append(redis_key, chunk)
                    size += len(chunk)
        except BaseException:
            self._forget(redis_key)
            raise
        return AttachmentRef(key=key, filename=filename, content_type=content_type, size=size)

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when they expired or were deleted."""
        value = self.redis.get(self._key(key))
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        """Forget the bytes; deleting twice is fine."""
        self.redis.delete(self._key(key))

    def _forget(self, redis_key: str) -> None:
        # Best effort: when Redis itself failed, the TTL removes the partial copy.
        with contextlib.suppress(RedisError):
            self.redis.delete(redis_key)


def attachment_store(redis: Redis) -> AttachmentStore:
    """The store the web process writes to and the worker reads from."""
    return RedisAttachmentStore(redis)
