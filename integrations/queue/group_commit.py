"""Group commit: the writes of concurrent callers sent to Redis in one round trip."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from integrations.queue import wire
from integrations.queue.wire import Commands


class _Outcome:
    """One caller's commands in a shared round trip, and what became of them."""

    __slots__ = ("commands", "error", "results")

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.results: list[Any] | None = None
        self.error: Exception | None = None

    def result(self) -> list[Any]:
        """The replies, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results


class _Entry(_Outcome):
    """A thread's commands waiting in a GroupCommit."""

    __slots__ = ("lead", "signal")

    def __init__(self, commands: Commands) -> None:
        super().__init__(commands)
        # Held until the caller is woken, exactly once: given the lead, or its replies are in.
        # A bare lock is the cheapest one-shot hand-off between threads (an Event is a
        # Condition, a lock and a list around the same wait).
        self.signal = threading.Lock()
        self.signal.acquire()
        self.lead = False


class _Rerun(_Outcome):
    """The commands of an entry that Redis had no script for, sent again once it has them.

    Only those: the entry's other commands have run. With two scripts in one write (rq's
    enqueue, the console's record) one may run while the other has no script, and rq's
    sent again would answer "exists", which the caller would read as a duplicate report.
    """

    __slots__ = ("at", "entry", "replies")

    def __init__(self, entry: _Outcome, replies: list[Any]) -> None:
        self.at = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        commands = Commands()
        for i in self.at:
            commands.add_encoded(entry.commands.parts[i])
        super().__init__(commands)
        self.entry = entry
        self.replies = replies

    def finish(self) -> None:
        """Give the entry its replies, these in their places, or the error."""
        if self.results is None:
            self.entry.error = self.error or RedisError("the write was not sent again")
            return
        for i, reply in zip(self.at, self.results, strict=True):
            self.replies[i] = reply
        self.entry.results = self.replies


class GroupCommit:
    """Sends the writes of concurrent callers to Redis together: one round trip for many.

    A web process answers each request only after Redis holds its job. While one
    round trip is on the wire, the requests that arrive queue their commands here,
    and the next round trip carries all of them (databases call this group commit):
    the same durability per request, a fraction of the system calls, which is what
    an intake under load spends its time on. A caller alone is sent at once.

    Leader and followers: the caller that finds nothing in flight sends the batch
    and hands the lead to the first caller waiting, who sends the next batch.
    Thread-safe; one per process (the pool gives each round trip its own connection).
    """

    def __init__(self, connection: Redis, *, wait_seconds: float = 10.0) -> None:
        self.connection = connection
        # A follower's bound on waiting: a round trip is bounded by the client's
        # socket timeout, so this only guards against a leader that died mid-send.
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._pending: list[_Entry] = []
        self._sending = False

    def write(self, commands: Commands) -> list[Any]:
        """Send the commands (with others'); their replies in order, or raise the first error."""
        entry = _Entry(commands)
        with self._lock:
            self._pending.append(entry)
            entry.lead = not self._sending
            self._sending = True
        while not entry.lead and entry.results is None and entry.error is None:
            if not entry.signal.acquire(timeout=self.wait_seconds):
                with self._lock:
                    # Given the lead meanwhile (under this lock): it must send, not leave.
                    if not entry.lead and entry in self._pending:
                        self._pending.remove(entry)
                        raise RedisTimeoutError("the intake's write to Redis did not start")
        if entry.results is None and entry.error is None:
            self._send_batch(entry)
        return entry.result()

    def _send_batch(self, leader: _Entry) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            _send(self.connection, batch)
        finally:
            with self._lock:
                if self._pending:
                    # The next batch is the first waiter's to send.
                    successor = self._pending[0]
                    successor.lead = True
                    successor.signal.release()
                else:
                    self._sending = False
            for entry in batch:
                if entry is not leader:
                    entry.signal.release()


class AsyncGroupCommit:
    """GroupCommit for an event loop (the web process's `/slack/commands`).

    A caller's commands join the pending batch; when no round trip is in flight, a task
    starts one, and keeps sending what queued meanwhile until nothing waits. Each caller
    resumes with its own replies or its own error once Redis has answered. One per event
    loop: an asyncio client's connections belong to the loop that opened them.
    """

    def __init__(self, client: AsyncRedis) -> None:
        self.client = client
        self._pending: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def write(self, commands: Commands) -> list[Any]:
        """Send the commands (with others'); their replies in order, or raise the first error."""
        loop = asyncio.get_running_loop()
        outcome, answered = _Outcome(commands), loop.create_future()
        self._pending.append((outcome, answered))
        if self._sender is None:
            self._sender = loop.create_task(self._send_pending())
        # A caller that goes away (the client hung up) leaves its write to finish: a
        # write is never half-sent, and the job is durable whoever waits for it.
        await answered
        return outcome.result()

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await _send_async(self.client, [outcome for outcome, _ in batch])
                except Exception as exc:  # a bug: every waiter gets it, the loop goes on
                    for outcome, _ in batch:
                        outcome.error = outcome.error or exc
                finally:
                    for _, answered in batch:
                        if not answered.done():
                            answered.set_result(None)
        finally:
            self._sender = None

    async def close(self) -> None:
        """Finish what is pending, then close the client's connections."""
        if self._sender is not None:
            await self._sender
        await self.client.aclose()


def write_now(connection: Redis, commands: Commands) -> list[Any]:
    """The commands in a round trip of their own: their replies, or raise."""
    entry = _Outcome(commands)
    _send(connection, [entry])
    return entry.result()


def _send(connection: Redis, batch: Sequence[_Outcome]) -> None:
    """One round trip for the batch; each entry gets its own replies or its own error."""
    try:
        replies = wire.round_trip(connection, _together(batch))
    except RedisError as exc:
        _fail(batch, exc)
        return
    except Exception as exc:  # a bug must reach every waiter, not strand them
        _fail(batch, exc)
        raise
    retry = _settle(batch, replies)
    if retry:
        # A new or restarted Redis has no scripts yet: load them, send what needed them.
        try:
            for source in wire.SCRIPTS.values():
                connection.script_load(source)
        except RedisError as exc:
            _fail(retry, exc)
        else:
            _send(connection, retry)
        finally:
            for rerun in retry:
                rerun.finish()


async def _send_async(client: AsyncRedis, batch: Sequence[_Outcome]) -> None:
    """`_send` on an event loop."""
    try:
        replies = await wire.round_trip_async(client, _together(batch))
    except RedisError as exc:
        _fail(batch, exc)
        return
    retry = _settle(batch, replies)
    if retry:
        try:
            for source in wire.SCRIPTS.values():
                await client.script_load(source)
        except RedisError as exc:
            _fail(retry, exc)
        else:
            await _send_async(client, retry)
        finally:
            for rerun in retry:
                rerun.finish()


def _fail(entries: Sequence[_Outcome], exc: Exception) -> None:
    for entry in entries:
        entry.error = exc


def _together(batch: Sequence[_Outcome]) -> Commands:
    together = Commands()
    for entry in batch:
        together.extend(entry.commands)
    return together


def _settle(batch: Sequence[_Outcome], replies: list[Any]) -> list[_Rerun]:
    """Give each entry its replies or its error; what to send again once Redis has scripts."""
    retry: list[_Rerun] = []
    start = 0
    for entry in batch:
        mine = replies[start : start + entry.commands.count]
        start += entry.commands.count
        failed = next(
            (r for r in mine if isinstance(r, Exception) and not isinstance(r, NoScriptError)),
            None,
        )
        if failed is not None:
            entry.error = failed
        elif any(isinstance(r, NoScriptError) for r in mine):
            retry.append(_Rerun(entry, mine))
        else:
            entry.results = mine
    return retry
