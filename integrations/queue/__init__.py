"""The Redis plumbing that the web process and the workers share.

- `connection`: the Redis client with bounded timeouts, the named queues.
- `enqueue`: enqueue a piece of work once per idempotency key, in one round trip.
- `group_commit`: concurrent callers' writes sent together.
- `wire`: Redis commands encoded once (the hub's hand-written infrastructure).
- `status`, `attachments`, `ratelimit`: a report's status, its stored uploads, and the
  rate-limit state all workers share.
- `report_log`: the console's record of recent reports, begun in the intake's write and
  completed by the intake job.

The public names of the first three are re-exported here.
"""

from integrations.queue.connection import (
    EVENTS,
    NOTIFY,
    QUEUES,
    TICKETS,
    connect,
    connect_async,
    fetch_job,
    queue,
)
from integrations.queue.enqueue import (
    DEDUPE_SECONDS,
    DEFAULT_RETRY,
    JOB_FAILED,
    JOB_TIMEOUT,
    KEEP_FOREVER,
    Enqueued,
    JobTemplate,
    StagedEnqueue,
    enqueue_once,
    job_id,
    stage_enqueue,
)
from integrations.queue.group_commit import AsyncGroupCommit, GroupCommit

__all__ = [
    "DEDUPE_SECONDS",
    "DEFAULT_RETRY",
    "EVENTS",
    "JOB_FAILED",
    "JOB_TIMEOUT",
    "KEEP_FOREVER",
    "NOTIFY",
    "QUEUES",
    "TICKETS",
    "AsyncGroupCommit",
    "Enqueued",
    "GroupCommit",
    "JobTemplate",
    "StagedEnqueue",
    "connect",
    "connect_async",
    "enqueue_once",
    "fetch_job",
    "job_id",
    "queue",
    "stage_enqueue",
]
