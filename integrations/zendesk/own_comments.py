"""The hub's own comments on tickets, fingerprinted in Redis so their webhooks are recognized.

A comment the hub writes (a reporter's Slack reply relayed, an acknowledgement note)
comes back as a `comment_added` webhook like anyone's: it is never relayed to the
reporter again, and it never stops a first-reply clock (workers/timers.py).
"""

from __future__ import annotations

import hashlib

from redis import Redis

OWN_COMMENT_SECONDS = 30 * 24 * 3600


def fingerprint(body: str) -> str:
    """What makes two comment bodies the same comment."""
    # Zendesk may trim or re-wrap; whitespace is not part of what makes a comment ours.
    return hashlib.sha256(" ".join(body.split()).encode()).hexdigest()[:32]


def mark_own_comment(redis: Redis, ticket_id: int, body: str) -> None:
    """Remember a comment the hub is about to write, so its webhook is not relayed back."""
    key = f"hub:zendesk:own:{ticket_id}"
    redis.sadd(key, fingerprint(body))
    redis.expire(key, OWN_COMMENT_SECONDS)


def is_own_comment(redis: Redis, ticket_id: int, body: str) -> bool:
    """True when the hub wrote this comment."""
    return bool(redis.sismember(f"hub:zendesk:own:{ticket_id}", fingerprint(body)))
