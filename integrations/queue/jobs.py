"""Every job the hub runs, declared once: the function a worker runs, its queue, its kind.

Enqueuing takes a declaration (`enqueue_once(redis, FILE_REPORT, ...)`), never a dotted
string. A declaration names its function by import path: this module sits in the lowest
layer, which the web process imports, and worker code is never imported there (zenpy,
the rules engine: seconds of start-up and memory a web worker does not need). The test
in tests/queue/test_jobs.py imports every declared function.

The kind makes a job's id: one job per (kind, key), so a repeat of the same work is
refused as a duplicate (`enqueue_once`). Kinds never change once released: a job id
made by the previous version must still match the next one's.

`RENAMED`: jobs keep running under the names they were queued with. A job queued by
one version runs in a worker of the next; rq stores the function's dotted name in the
job, so a renamed job would fail with an ImportError after a deploy. The worker's job
class (workers/worker.py) resolves an old name through this table. Old names are kept
for at least one release after the rename.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from integrations.queue.connection import EVENTS, NOTIFY, QUEUES, TICKETS

_KIND = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class JobSpec:
    """One kind of job: what a worker runs, from which queue, and what makes two the same."""

    func: str
    queue: str
    kind: str
    # Ahead of the queue's waiting jobs, for the next free worker.
    at_front: bool = False

    @property
    def name(self) -> str:
        """The function's own name, for logs and job descriptions."""
        return self.func.rsplit(".", 1)[-1]


JOBS: dict[str, JobSpec] = {}


def declare(func: str, queue: str, kind: str, *, at_front: bool = False) -> JobSpec:
    """Add a job to the registry; a second declaration of a function or kind is a bug."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; the hub's queues are {', '.join(QUEUES)}")
    if not _KIND.match(kind):
        raise ValueError(f"job kind {kind!r} must match [A-Za-z0-9_-]+")
    if func in JOBS or any(spec.kind == kind for spec in JOBS.values()):
        raise ValueError(f"job {func} (kind {kind}) is declared twice")
    spec = JOBS[func] = JobSpec(func, queue, kind, at_front)
    return spec


# ---------------------------------------------------------------- intake (queued by the web)

# A report becomes exactly one Zendesk ticket (key: the report's external id).
FILE_REPORT = declare("workers.intake.file_report", TICKETS, "file-report")
# The shortcut's receipt: its HTTP answer shows nothing. At the front of the queue
# workers take first, so it comes before "Ticket #N filed".
REPORT_RECEIVED = declare(
    "workers.receipts.report_received", TICKETS, "slack-receipt", at_front=True
)
# One Zendesk webhook delivery through the ticket-event rules (key: the event's id).
HANDLE_TICKET_EVENT = declare("workers.ticket_events.handle_ticket_event", EVENTS, "zendesk-event")
# The reporter's reply in the thread of a hub message becomes their public comment.
RELAY_REPORTER_REPLY = declare("workers.ticket_events.relay_reporter_reply", EVENTS, "slack-event")
# A message reacted to with the ticket emoji: its thread read, its files fetched, then filed
# (key: the team, channel and message, so a second reaction files nothing new).
FILE_REACTION = declare("workers.reactions.file_reaction", TICKETS, "slack-reaction")
# The rest of a thread Slack's rate limit kept from its ticket, added as a comment.
COMPLETE_THREAD = declare("workers.reactions.complete_thread", NOTIFY, "slack-thread-rest")
# Someone pressed "Acknowledge" on an engineering message.
ACKNOWLEDGE = declare("workers.engineering.acknowledge", NOTIFY, "eng-ack")
# Someone pressed "Same issue", "Not related" or "Split out again" (workers/grouping_actions.py).
MERGE_REPORTS = declare("workers.grouping_actions.merge_job", NOTIFY, "group-merge")
MARK_NOT_RELATED = declare("workers.grouping_actions.not_related_job", NOTIFY, "group-not-related")
SPLIT_REPORT = declare("workers.grouping_actions.split_job", NOTIFY, "group-split")

# ---------------------------------------------------------------- what follows a ticket

REPORT_FILED = declare("workers.receipts.report_filed", NOTIFY, "report-filed")
REPORT_DELAYED = declare("workers.receipts.report_delayed", NOTIFY, "report-delayed")
GROUP_REPORT = declare("workers.grouping.group_report", NOTIFY, "group-report")
GROUP_ENGINEERING = declare("workers.grouping.group_engineering", NOTIFY, "group-engineering")
OPEN_PROBLEM = declare("workers.grouping.open_problem", NOTIFY, "group-problem")
LINK_INCIDENT = declare("workers.grouping.link_incident", NOTIFY, "group-link")
PROBLEM_ENGINEERING = declare(
    "workers.grouping.problem_engineering", NOTIFY, "group-problem-engineering"
)
NOTIFY_ENGINEERING = declare("workers.engineering.notify_engineering", NOTIFY, "eng-notify")
# An operator alert to SLACK_OPS_CHANNEL (dead letters, rules naming unknown targets).
OPS_ALERT = declare("workers.alerts.ops_alert", NOTIFY, "ops-alert")

# ---------------------------------------------------------------- first-reply timers

# The scheduler tick: hands due timers to TIMER_DUE jobs, then schedules the next tick.
TIMER_TICK = declare("workers.timers.tick", EVENTS, "timer-tick", at_front=True)
# One timer's nudge or breach (key: ticket and stage), after a look at Zendesk's comments.
TIMER_DUE = declare("workers.timers.timer_due", EVENTS, "timer-due")

# ---------------------------------------------------------------- the weekly tag digest

# The digest of one ISO week to DIGEST_CHANNEL (key: the week; workers/digest.py).
SEND_DIGEST = declare("workers.digest.send_digest", NOTIFY, "weekly-digest")

# ---------------------------------------------------------------- names of earlier releases

RENAMED: dict[str, JobSpec] = {
    "workers.jobs.file_report": FILE_REPORT,
    "workers.events.handle_ticket_event": HANDLE_TICKET_EVENT,
    "workers.events.relay_reporter_reply": RELAY_REPORTER_REPLY,
    "integrations.slack.jobs.report_received": REPORT_RECEIVED,
    "integrations.slack.jobs.report_filed": REPORT_FILED,
    "integrations.slack.jobs.report_delayed": REPORT_DELAYED,
    "integrations.slack.jobs.ops_alert": OPS_ALERT,
    "integrations.slack.engineering.acknowledge": ACKNOWLEDGE,
    "integrations.slack.engineering.notify_engineering": NOTIFY_ENGINEERING,
}


def spec_for(func_name: str | None) -> JobSpec | None:
    """The declaration of a job by the function name stored in it, old names included."""
    if func_name is None:
        return None
    return JOBS.get(func_name) or RENAMED.get(func_name)


def current_name(func_name: str) -> str:
    """The import path to run for a stored function name (an old name's new path)."""
    renamed = RENAMED.get(func_name)
    return renamed.func if renamed is not None else func_name
