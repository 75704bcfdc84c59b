"""Related-issue grouping after a ticket is filed: one group, one engineering message, one problem.

`group_report` (queued by workers/intake.py after a ticket is filed) finds the
report's group in the related-issue index (rules/related) and queues what
follows, each its own job so that a failing one never redoes another:

- `group_engineering` (Slack): the group's engineering message is posted once,
  its reporter count edited in place, and a joining report said in its thread;
- `open_problem` (Zendesk): at GROUP_PROBLEM_THRESHOLD reports (or when a rule
  says `force_problem`) one problem ticket, every member linked as an incident;
- `link_incident` (Zendesk): a report joining a group that has its problem;
- `problem_engineering` (Slack): the group's message becomes the problem's.

A solved or closed ticket leaves the index (`ticket_status_changed`, called by
workers/events.py); a solved problem is said in its thread, and Zendesk solves
its incidents, whose events tell their reporters through the reporter loop.

Redis (besides the index's own keys):

    hub:grouping:ticket:{id}     hash   group, joined, subject, url of a grouped ticket
    hub:grouping:group:{g}       hash   subject, tags, issue (the engineering message's
                                        issue before a problem), problem, problem_url
    hub:grouping:problem:{id}    string the group of a problem ticket
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from redis import Redis
from rq import Retry

from integrations import logs
from integrations.errors import Permanent
from integrations.queue import enqueue_once
from integrations.queue.jobs import (
    GROUP_ENGINEERING,
    LINK_INCIDENT,
    OPEN_PROBLEM,
    PROBLEM_ENGINEERING,
)
from integrations.queue.marks import exclusive
from integrations.queue.report_log import report_log
from integrations.report import Report
from integrations.slack.cards import (
    SUGGESTIONS_SHOWN,
    Card,
    Suggestion,
    joined_blocks,
    joined_note,
    problem_opened_note,
    problem_solved_note,
)
from integrations.slack.engineering import EngineeringChannels
from integrations.zendesk.gateway import Ticket, ZendeskGateway
from integrations.zendesk.messages import problem_body
from rules.related import GroupDecision, IndexedDoc, Match, RelatedIndex
from workers.context import context
from workers.retry import run_guarded

log = logging.getLogger(__name__)

# As long as the engineering messages are edited (integrations/slack/engineering.py).
KEEP_SECONDS = 180 * 24 * 3600
# Long enough for one group's Slack calls; a crashed job frees it by expiry.
ENGINEERING_LOCK_SECONDS = 60
PROBLEM_TAG = "feedback_hub_problem"


# ---------------------------------------------------------------- policy (pure)


def needs_problem(size: int, threshold: int, *, forced: bool, has_problem: bool) -> bool:
    """Whether a group of `size` reports should get its Zendesk problem ticket now."""
    if has_problem:
        return False
    return forced or size >= threshold


def problem_external_id(group_id: str) -> str:
    """The problem ticket's external_id: one problem per group, whatever retries."""
    return f"feedback-hub-problem-{group_id}"


def indexed_doc(report: Report, ticket: Ticket) -> IndexedDoc:
    """What the related-issue index keeps of a filed report."""
    return IndexedDoc(
        id=str(ticket.id),
        created_at=report.received_at,
        title=report.subject,
        body=report.description,
        crash_signature=report.crash_signature,
        platform=report.fields.platform,
        app_version=report.fields.app_version,
    )


# ---------------------------------------------------------------- wording


def evidence_line(match: Match, score: float | None) -> str:
    """Why a candidate is suggested, in one line: the signals, then the shared words."""
    parts = []
    if match.evidence.signature_equal:
        parts.append("same crash signature")
    elif match.evidence.signature_differs:
        # Never joined on words (decide_group), but an engineer may still know better.
        parts.append("different crash signature")
    if match.evidence.same_platform:
        parts.append("same platform")
    if match.evidence.same_app_version:
        parts.append("same app version")
    # Short numbers ("1", "14": steps, times, versions' parts) say nothing to a reader.
    words = [t for t, _ in match.evidence.shared_terms if not (t.isdigit() and len(t) < 3)][:5]
    if words:
        parts.append("shared words: " + ", ".join(words))
    parts.append(f"similarity {match.similarity:.2f}")
    if score is not None:
        parts.append(f"same-issue score {score:.2f}")
    return " · ".join(parts)


def suggestions_of(
    redis: Redis, decision: GroupDecision, limit: int = SUGGESTIONS_SHOWN
) -> list[dict[str, Any]]:
    """What a report's card suggests: its best candidates outside its own group, one per
    group (its best match there): two members of one issue are one suggestion, and Same
    issue on it merges into that whole group."""
    out = []
    seen = {decision.group_id}
    for m in decision.matches:
        if m.group_id is not None:
            if m.group_id in seen:
                continue
            seen.add(m.group_id)
        url = _text(redis.hget(_ticket_key(int(m.doc_id)), "url")) if m.doc_id.isdigit() else ""
        out.append(
            {
                "ticket_id": int(m.doc_id),
                "subject": m.title,
                "url": url,
                "evidence": evidence_line(m, decision.scores.get(m.doc_id)),
            }
        )
        if len(out) >= limit:
            break
    return [s for s in out if s["ticket_id"]]


# ---------------------------------------------------------------- state


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _ticket_key(ticket_id: int) -> str:
    return f"hub:grouping:ticket:{ticket_id}"


def _group_key(group_id: str) -> str:
    return f"hub:grouping:group:{group_id}"


def _problem_key(problem_id: int) -> str:
    return f"hub:grouping:problem:{problem_id}"


def group_of(redis: Redis, ticket_id: int) -> str | None:
    """The group a filed ticket was put in, if grouping ran for it."""
    value = redis.hget(_ticket_key(ticket_id), "group")
    return _text(value) or None


def problem_of(redis: Redis, group_id: str) -> int | None:
    """The group's problem ticket id, once it has one."""
    value = redis.hget(_group_key(group_id), "problem")
    return int(value) if value else None


def group_of_problem(redis: Redis, problem_id: int) -> str | None:
    """The group a problem ticket was opened for."""
    return _text(redis.get(_problem_key(problem_id))) or None


def _index(redis: Redis, join_score: float | None = None) -> RelatedIndex:
    # The index the CLI (`feedback-hub related explain`) reads: default prefix and window;
    # the join threshold is RELATED_JOIN_SCORE's when set.
    if join_score is None:
        return RelatedIndex(redis)
    return RelatedIndex(redis, join_threshold=join_score)


# ---------------------------------------------------------------- 1. the group


def group_report(
    report: dict[str, Any],
    ticket: dict[str, Any],
    channels: dict[str, str] | None = None,
    priority: str | None = None,
    force_problem: bool = False,
) -> dict[str, Any] | Retry:
    """Job: put a filed report in its related-issue group and queue what follows.

    `channels` (engineering channel -> why), `priority` and `force_problem` are the
    intake Decision's.
    """
    return run_guarded(_group_report, report, ticket, channels or {}, priority, force_problem)


def _group_report(
    report_data: dict[str, Any],
    ticket_data: dict[str, Any],
    channels: dict[str, str],
    priority: str | None,
    force_problem: bool,
) -> dict[str, Any]:
    ctx = context()
    settings, redis = ctx.settings, ctx.redis
    report = Report.from_job(report_data)
    ticket = Ticket.from_job(ticket_data)
    index = _index(redis, settings.related_join_score)

    group_id = group_of(redis, ticket.id)
    if group_id is None:
        doc = indexed_doc(report, ticket)
        # Before add: the report must not find itself.
        found = index.group_for(doc)
        index.assign(doc, found)
        index.add(doc)
        group_id, joined = found.group_id, found.joined
        # Not joined: its best candidates are suggested on its card, people decide.
        suggested = [] if joined else suggestions_of(redis, found)
        pipe = redis.pipeline()
        pipe.hset(
            _ticket_key(ticket.id),
            mapping={
                "group": group_id,
                "joined": int(joined),
                "subject": report.subject,
                "url": ticket.url,
                "suggestions": json.dumps(suggested),
            },
        )
        pipe.expire(_ticket_key(ticket.id), KEEP_SECONDS)
        # The group's first report names it (and its problem ticket).
        pipe.hsetnx(_group_key(group_id), "subject", report.subject)
        pipe.hsetnx(_group_key(group_id), "tags", json.dumps(list(ticket.tags)))
        pipe.expire(_group_key(group_id), KEEP_SECONDS)
        pipe.execute()
        logs.event(
            log,
            "grouping.grouped",
            ticket=ticket.id,
            group=group_id,
            joined=joined,
            why=found.reason,
        )
        # The console's timeline of the report: where grouping put it, and why.
        outcome = f"joined issue {group_id}" if joined else f"a new issue {group_id}"
        shown = f"; {len(suggested)} suggested" if suggested else ""
        report_log(redis, settings).add_event(
            report.key_digest, "grouped", f"{outcome} ({found.reason}){shown}"
        )
    else:
        # A retry or a replay: the group is decided; what follows is queued again (once).
        joined = _text(redis.hget(_ticket_key(ticket.id), "joined")) == "1"
    size = index.group_size(group_id)

    enqueue_once(
        redis,
        GROUP_ENGINEERING,
        group_id,
        report.to_job(),
        ticket.to_job(),
        channels,
        priority,
        joined,
        key=str(ticket.id),
    )
    # Read after this report joined: a problem opened meanwhile is seen here, or its
    # job (which records the problem, then reads the members) links this report.
    problem_id = problem_of(redis, group_id)
    if problem_id is not None:
        enqueue_once(
            redis,
            LINK_INCIDENT,
            ticket.id,
            problem_id,
            key=f"{ticket.id}:{problem_id}",
        )
    elif needs_problem(
        size, settings.group_problem_threshold, forced=force_problem, has_problem=False
    ):
        enqueue_once(redis, OPEN_PROBLEM, group_id, key=group_id)
    return {"group": group_id, "joined": joined, "size": size, "problem": problem_id}


# ---------------------------------------------------------------- 2. engineering (Slack)


def _group_lock(redis: Redis, group_id: str) -> AbstractContextManager[None]:
    """One Slack job per group at a time: the message moves between issues under it."""
    return exclusive(
        redis,
        f"hub:grouping:lock:{group_id}",
        ttl=ENGINEERING_LOCK_SECONDS,
        busy="another worker is updating this group's message",
    )


def _issue(redis: Redis, eng: EngineeringChannels, group_id: str, claim: int | None) -> int | None:
    """The issue the group's message is under: its problem once it has one, else the first
    ticket that asked for a message (`claim` claims it when there is none yet)."""
    key = _group_key(group_id)
    before = redis.hget(key, "issue")
    problem = problem_of(redis, group_id)
    if problem is not None:
        if before and int(before) != problem:
            eng.move_issue(int(before), problem)
        redis.hset(key, "issue", problem)
        return problem
    if before is None and claim is not None:
        redis.hsetnx(key, "issue", claim)
        before = redis.hget(key, "issue")
    return int(before) if before else None


def group_engineering(
    group_id: str,
    report: dict[str, Any],
    ticket: dict[str, Any],
    channels: dict[str, str],
    priority: str | None,
    joined: bool,
) -> Any:
    """Job: the group's engineering message shows this report (count, thread reply)."""
    return run_guarded(_group_engineering, group_id, report, ticket, channels, priority, joined)


def _group_engineering(
    group_id: str,
    report_data: dict[str, Any],
    ticket_data: dict[str, Any],
    channels: dict[str, str],
    priority: str | None,
    joined: bool,
) -> dict[str, Any]:
    ctx = context()
    redis = ctx.redis
    report = Report.from_job(report_data)
    ticket = Ticket.from_job(ticket_data)
    eng = EngineeringChannels(ctx.slack, redis)
    with _group_lock(redis, group_id):
        issue = _issue(redis, eng, group_id, ticket.id if channels else None)
        if issue is None:
            # No report of the group asked for engineering: nothing to show yet.
            return {"issue": None}
        count = eng.add_reporter(issue, ticket.id)
        card = eng.card(issue) or _new_card(redis, group_id, issue, report, ticket, priority)
        if card.reason is None and channels:
            card = replace(card, reason=next(iter(channels.values())) or None)
        card = replace(card, reporters=max(count, card.reporters))
        posted = eng.messages(issue)
        for channel in channels:
            if channel not in posted:
                eng.notify(channel, card)
        edited = eng.refresh(card)
        said = 0
        if joined:
            text = joined_note(report.subject, ticket.id, ticket.url)
            said = eng.thread(
                issue,
                text,
                once_key=f"grouping:joined:{ticket.id}",
                blocks=joined_blocks(text, ticket.id),
            )
        if issue == problem_of(redis, group_id):
            # The message may be posted after problem_engineering ran (Slack was down).
            said += _say_problem_opened(redis, eng, group_id, issue)
    logs.event(log, "grouping.engineering", group=group_id, issue=issue, reporters=card.reporters)
    return {"issue": issue, "reporters": card.reporters, "edited": edited, "said": said}


def _new_card(
    redis: Redis,
    group_id: str,
    issue: int,
    report: Report,
    ticket: Ticket,
    priority: str | None,
) -> Card:
    card = Card.for_report(report, ticket, priority=priority)
    raw = redis.hget(_ticket_key(ticket.id), "suggestions")
    if raw and issue == ticket.id:
        card = replace(card, suggestions=tuple(Suggestion(**s) for s in json.loads(raw)))
    problem_url = _text(redis.hget(_group_key(group_id), "problem_url"))
    if issue == problem_of(redis, group_id) and problem_url:
        subject = _text(redis.hget(_group_key(group_id), "subject")) or card.subject
        return replace(card, issue_id=issue, url=problem_url, subject=subject)
    return replace(card, issue_id=issue)


# ---------------------------------------------------------------- 3. the problem (Zendesk)


def open_problem(group_id: str) -> Any:
    """Job: one Zendesk problem ticket for the group, every member linked as an incident."""
    return run_guarded(_open_problem, group_id)


def _open_problem(group_id: str) -> dict[str, Any]:
    ctx = context()
    redis = ctx.redis
    gateway = ctx.zendesk
    index = _index(redis)
    key = _group_key(group_id)
    problem_id = problem_of(redis, group_id)
    created = False
    if problem_id is None:
        members = [int(m) for m in index.group_members(group_id)]
        listed = [(m, _text(redis.hget(_ticket_key(m), "subject"))) for m in members]
        subject = _text(redis.hget(key, "subject")) or next((s for _, s in listed if s), "")
        raw_tags = redis.hget(key, "tags")
        tags = tuple(dict.fromkeys([PROBLEM_TAG, *json.loads(raw_tags or "[]")]))
        # external_id makes a retried create find the first one (gateway.create_ticket).
        problem, created = gateway.create_problem(
            problem_external_id(group_id),
            subject or f"Related reports ({group_id})",
            problem_body(listed, len(members)),
            tags,
        )
        problem_id = problem.id
        pipe = redis.pipeline()
        # Recorded before the members are read: a report joining from now on sees it
        # in its own group_report and is linked there.
        pipe.hset(key, mapping={"problem": problem_id, "problem_url": problem.url})
        pipe.expire(key, KEEP_SECONDS)
        pipe.set(_problem_key(problem_id), group_id, ex=KEEP_SECONDS)
        pipe.execute()
        logs.event(log, "grouping.problem.opened", group=group_id, problem=problem_id)
    members = [int(m) for m in index.group_members(group_id)]
    # A retry (Zendesk failing mid-way) goes on where the last attempt stopped: the
    # tickets it linked are not read from Zendesk again.
    pipe = redis.pipeline(transaction=False)
    for m in members:
        pipe.hget(_ticket_key(m), "incident_of")
    done = {
        m for m, of in zip(members, pipe.execute(), strict=True) if _text(of) == str(problem_id)
    }
    linked = [m for m in members if m not in done and _link(gateway, redis, m, problem_id)]
    enqueue_once(
        redis,
        PROBLEM_ENGINEERING,
        group_id,
        problem_id,
        key=f"{group_id}:{problem_id}",
    )
    return {"problem": problem_id, "created": created, "linked": len(linked)}


def _link(gateway: ZendeskGateway, redis: Redis, ticket_id: int, problem_id: int) -> bool:
    """Link one ticket; a closed ticket cannot change any more and stays as it is."""
    try:
        _, changed = gateway.link_incident(ticket_id, problem_id)
    except Permanent as exc:
        if exc.status != 422:
            raise
        logs.event(log, "grouping.link.refused", ticket=ticket_id, problem=problem_id)
        return False
    pipe = redis.pipeline()
    pipe.hset(_ticket_key(ticket_id), "incident_of", problem_id)
    pipe.expire(_ticket_key(ticket_id), KEEP_SECONDS)
    pipe.execute()
    return changed


def link_incident(ticket_id: int, problem_id: int) -> Any:
    """Job: link a report that joined a group with a problem ticket as its incident."""
    return run_guarded(_link_incident, ticket_id, problem_id)


def _link_incident(ticket_id: int, problem_id: int) -> bool:
    ctx = context()
    redis = ctx.redis
    return _link(ctx.zendesk, redis, ticket_id, problem_id)


# ---------------------------------------------------------------- 4. the problem (Slack)


def problem_engineering(group_id: str, problem_id: int) -> Any:
    """Job: the group's message becomes the problem's, and its thread hears of it."""
    return run_guarded(_problem_engineering, group_id, problem_id)


def _problem_engineering(group_id: str, problem_id: int) -> dict[str, Any]:
    ctx = context()
    redis = ctx.redis
    eng = EngineeringChannels(ctx.slack, redis)
    key = _group_key(group_id)
    with _group_lock(redis, group_id):
        issue = _issue(redis, eng, group_id, None)
        card = eng.card(problem_id)
        if issue is None or card is None:
            # The group has no message (yet): the first one posted will be the problem's.
            return {"issue": issue}
        url = _text(redis.hget(key, "problem_url")) or card.url
        subject = _text(redis.hget(key, "subject")) or card.subject
        card = replace(card, issue_id=problem_id, url=url, subject=subject)
        edited = eng.refresh(card)
        said = _say_problem_opened(redis, eng, group_id, problem_id)
    return {"issue": problem_id, "edited": edited, "said": said}


def _say_problem_opened(
    redis: Redis, eng: EngineeringChannels, group_id: str, problem_id: int
) -> int:
    """Say in the group's thread that its problem ticket exists (once per message)."""
    url = _text(redis.hget(_group_key(group_id), "problem_url"))
    incidents = _index(redis).group_size(group_id)
    return eng.thread(
        problem_id,
        problem_opened_note(problem_id, url, incidents),
        once_key=f"grouping:problem:{problem_id}",
    )


# ---------------------------------------------------------------- 5. ticket events


def ticket_status_changed(
    redis: Redis, eng: EngineeringChannels, ticket_id: int, status: str, *, once_key: str
) -> dict[str, Any]:
    """A solved or closed ticket leaves the index; a solved problem is said in its thread."""
    done: dict[str, Any] = {}
    if status in ("solved", "closed"):
        done["unindexed"] = _index(redis).remove(str(ticket_id))
    group_id = group_of_problem(redis, ticket_id)
    if status == "solved" and group_id is not None:
        done["said"] = eng.thread(
            ticket_id, problem_solved_note(ticket_id), once_key=f"grouping:solved:{once_key}"
        )
        logs.event(log, "grouping.problem.solved", group=group_id, problem=ticket_id)
    return done
