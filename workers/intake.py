"""The intake job: a report becomes one routed Zendesk ticket; what follows is queued."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Retry, get_current_job

from integrations import logs
from integrations.queue import enqueue_once
from integrations.queue.jobs import GROUP_REPORT, OPS_ALERT, REPORT_FILED
from integrations.queue.report_log import report_log
from integrations.queue.status import StatusStore
from integrations.report import Report
from integrations.slack.loop import remember_reporter
from integrations.zendesk import messages
from integrations.zendesk.gateway import Ticket, TicketDraft, UnknownName
from rules.decision import Decision
from rules.engine import evaluate
from workers.context import JobContext, context
from workers.receipts import reporter_identity, with_permalink
from workers.retry import run_guarded
from workers.tags import count_filed
from workers.timers import start_timer

log = logging.getLogger(__name__)

# Zendesk upload tokens expire after 60 minutes; reuse one for less than that.
UPLOAD_TOKEN_SECONDS = 50 * 60
# How long "why was this ticket routed so" stays answerable.
DECISION_TTL = 90 * 24 * 3600


def file_report(data: dict[str, Any]) -> dict[str, Any] | Retry:
    """Turn a report into exactly one Zendesk ticket, then tell the reporter."""
    outcome = run_guarded(_file_report, data)
    if isinstance(outcome, Retry):
        # Waiting out Zendesk's rate limit: the status API says so until it is filed.
        StatusStore(context().redis).set(
            Report.from_job(data).key_digest,
            "delayed",
            reason="Zendesk is limiting requests; filed as soon as it allows",
        )
    return outcome


def _file_report(data: dict[str, Any]) -> dict[str, Any]:
    ctx = context()
    settings, redis, gateway = ctx.settings, ctx.redis, ctx.zendesk
    report = Report.from_job(data)
    if report.source == "slack_shortcut":
        report = with_permalink(ctx, report)

    decision = evaluate(report, ctx.rules())
    # The console's record (integrations/queue/report_log.py): kept from the first attempt,
    # so a report that never files is there with its decision too.
    console = report_log(redis, settings)
    console.record(report, decision=decision.to_json(), state="queued", event=_attempt())
    uploads, missing = _upload_attachments(ctx, report)
    draft = TicketDraft(
        external_id=report.external_id,
        subject=messages.subject(report),
        body=messages.ticket_body(report, missing_attachments=missing),
        requester=_requester(ctx, report),
        tags=decision.tags,
        priority=decision.priority,
        type=decision.type,
        group_id=_resolve(redis, "group", decision.group, gateway.group_id),
        assignee_id=_resolve(redis, "assignee", decision.assignee, gateway.agent_id),
        custom_fields={f["id"]: f["value"] for f in decision.zendesk_custom_fields()},
        uploads=tuple(uploads),
    )
    ticket, created = gateway.create_ticket(draft)
    remember_decision(redis, ticket.id, decision)
    console.record(
        report,
        decision=decision.to_json(),
        state="filed",
        event=f"ticket #{ticket.id} {'created' if created else 'found (filed before)'}",
        ticket_id=ticket.id,
        ticket_url=f"{settings.zendesk_url}/agent/tickets/{ticket.id}",
    )
    # The first-reply clock, running since the report was accepted (workers/timers.py).
    start_timer(redis, report, ticket, decision, ctx.rules())
    # Tag trends (integrations/queue/tag_counts.py): once per ticket, one round trip.
    count_filed(redis, report, ticket, decision)
    StatusStore(redis).set(
        report.key_digest, "filed", ticket_id=ticket.id, ticket_url=settings.request_url(ticket.id)
    )
    for ref in report.attachments:
        ctx.attachments.delete(ref.key)
    logs.event(
        log,
        "report.filed",
        ticket=ticket.id,
        created=created,
        source=report.source,
        report=report.key_digest,
        group=decision.group,
        priority=decision.priority,
        rules=[r.index for r in decision.matched_rules],
    )
    _after_filing(redis, report, ticket, decision)
    return ticket.to_job()


def _attempt() -> str:
    job = get_current_job()
    number = (job.number_of_retries or 0) + 1 if job is not None else 1
    return f"filing, attempt {number}"


def _after_filing(redis: Redis, report: Report, ticket: Ticket, decision: Decision) -> None:
    """Queue what follows a ticket: each is its own job, so one failing never refiles."""
    # Who to tell when an agent answers (the reporter loop, workers/events.py).
    remember_reporter(redis, ticket.id, report)
    if report.source.startswith("slack"):
        enqueue_once(redis, REPORT_FILED, report.to_job(), ticket.to_job(), key=report.external_id)
    # Related-issue grouping, then the group's one engineering message (not one per
    # report) and its problem ticket: workers/grouping.py.
    enqueue_once(
        redis,
        GROUP_REPORT,
        report.to_job(),
        ticket.to_job(),
        _engineering_channels(decision, ticket),
        decision.priority,
        decision.force_problem,
        key=str(ticket.id),
    )


def _engineering_channels(decision: Decision, ticket: Ticket) -> dict[str, str]:
    """Channel -> why, from the rules' notify actions and escalation."""
    channels: dict[str, str] = {}
    for note in decision.notifications:
        channels.setdefault(note.channel, note.fill(ticket_id=ticket.id, ticket_url=ticket.url))
    if decision.escalate and decision.escalate_channel:
        why = decision.why.get("escalate")
        channels.setdefault(decision.escalate_channel, f"escalated by {why.set_by}" if why else "")
    return channels


def _resolve(redis: Redis, what: str, name: str | None, lookup: Callable[[str], int]) -> int | None:
    """A rule's group or assignee name as a Zendesk id; a name Zendesk lacks files without it.

    A typo in the rules must not hold reports back: the ticket is filed
    unassigned and an operator is alerted to fix the rule.
    """
    if not name:
        return None
    if name.isdigit():
        return int(name)
    try:
        return lookup(name)
    except UnknownName as exc:
        logs.event(
            log, "rules.unknown_target", logging.ERROR, what=what, name=name, reason=exc.reason
        )
        enqueue_once(
            redis,
            OPS_ALERT,
            f":warning: the rules route to {what} {name!r}, which Zendesk does not know: "
            f"{exc.reason}. Tickets are filed without it until the rules are fixed.",
            key=f"unknown-{what}:{name}:{int(time.time() // 3600)}",
        )
        return None


def remember_decision(redis: Redis, ticket_id: int, decision: Decision) -> None:
    """Keep why a ticket was routed as it was, for `feedback-hub rules why TICKET`."""
    redis.set(f"hub:ticket:{ticket_id}:decision", json.dumps(decision.to_json()), ex=DECISION_TTL)


def routing_of(redis: Redis, ticket_id: int) -> Decision | None:
    """The routing decision recorded when the hub filed this ticket, if it did (and recently)."""
    raw = redis.get(f"hub:ticket:{ticket_id}:decision")
    return Decision.from_json(json.loads(raw)) if raw else None


def _requester(ctx: JobContext, report: Report) -> dict[str, Any]:
    """Who the ticket is from: by email when known, else a user keyed by an external id."""
    reporter = report.reporter
    name, email = reporter.name, reporter.email
    external_id = reporter.external_id
    if email is None and reporter.slack_user_id and reporter.slack_team_id:
        name, email = reporter_identity(ctx, reporter.slack_team_id, reporter.slack_user_id)
        external_id = f"slack:{reporter.slack_team_id}:{reporter.slack_user_id}"
    if email:
        # Zendesk finds the user with this email, or creates them, within the
        # ticket create itself: no extra request.
        return {"name": name or email, "email": email}
    if external_id:
        return {"requester_id": ctx.zendesk.user_id(name=name, email=None, external_id=external_id)}
    return {}


def _upload_attachments(ctx: JobContext, report: Report) -> tuple[list[str], list[str]]:
    """Upload each stored attachment once; return the tokens and the names that expired."""
    tokens: list[str] = []
    missing: list[str] = []
    for ref in report.attachments:
        cache_key = f"hub:zendesk:upload:{report.external_id}:{ref.key}"
        if cached := ctx.redis.get(cache_key):
            tokens.append(cached.decode() if isinstance(cached, bytes) else str(cached))
            continue
        data = ctx.attachments.get(ref.key)
        if data is None:
            missing.append(ref.filename)
            continue
        token = ctx.zendesk.upload(ref.filename, ref.content_type, data)
        ctx.redis.set(cache_key, token, ex=UPLOAD_TOKEN_SECONDS)
        tokens.append(token)
    return tokens, missing
