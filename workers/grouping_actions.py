"""People correct the grouping: Same issue (merge), Not related, Split out.

Plain functions taking who acted (`Actor`), so the Slack buttons (the `*_job` wrappers,
queued by integrations/slack/engineering.py) and the triage console call the same code:

- `merge(ticket, into, actor)`: the ticket's group joins the group of `into`; its tickets
  are linked as incidents of that group's problem (or the problem is opened once the
  group is big enough, workers/grouping.py); the remaining card counts them and is
  edited in place, the merged one says "merged into #N". Reporters are told nothing:
  their tickets only get internal notes.
- `not_related(ticket, candidate, actor)`: the pair is recorded and never suggested or
  joined again; the suggestion leaves the card.
- `split(ticket, actor)`: the ticket leaves its group for its own again; its incident
  link is removed, the group's card stops counting it, and its own card is back.

Each action says who did it in the thread(s) and as an internal note on the ticket, and
is kept as a label (rules/related/labels.py). Each is idempotent: a double click, a
retried job, or the same press a day later does it once (a Redis record of the action
in progress, and once-marks on every message and note).
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from integrations import logs
from integrations.errors import Retryable
from integrations.queue import enqueue_once
from integrations.queue.jobs import OPEN_PROBLEM
from integrations.queue.marks import once
from integrations.slack.cards import (
    Card,
    merged_away_note,
    merged_note,
    not_related_note,
    split_away_note,
    split_note,
    zendesk_merge_note,
    zendesk_not_related_note,
    zendesk_split_note,
)
from integrations.slack.engineering import EngineeringChannels, corrections_key
from integrations.slack.mrkdwn import escape_mrkdwn
from integrations.zendesk.own_comments import mark_own_comment
from rules.related.documents import stored_doc
from rules.related.labels import Label, LabeledReport, Labels
from rules.related.scoring import new_group_id
from workers.context import JobContext, context
from workers.grouping import (
    KEEP_SECONDS,
    _group_key,
    _group_lock,
    _index,
    _issue,
    _link,
    _text,
    _ticket_key,
    group_of,
    group_of_problem,
    needs_problem,
    problem_of,
)
from workers.retry import run_guarded

log = logging.getLogger(__name__)

# How long an action in progress is remembered (a retry finishes it, a repeat is one).
ACTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Actor:
    """Who corrected the grouping: a name for Zendesk notes, a Slack user for mentions."""

    name: str
    slack_user_id: str | None = None

    @property
    def mention(self) -> str:
        """How Slack messages name them."""
        return f"<@{self.slack_user_id}>" if self.slack_user_id else escape_mrkdwn(self.name)


# ---------------------------------------------------------------- helpers


def _group_of_issue(redis: Redis, ticket_id: int) -> str | None:
    """The group of a ticket, or of a problem ticket."""
    return group_of(redis, ticket_id) or group_of_problem(redis, ticket_id)


def _report_of(redis: Redis, ticket_id: int) -> int:
    """The report behind an issue id: itself, or a problem's first member."""
    if group_of(redis, ticket_id) is None:
        group = group_of_problem(redis, ticket_id)
        if group is not None:
            members = _index(redis).group_members(group)
            if members:
                return int(members[0])
    return ticket_id


def _labeled(redis: Redis, ticket_id: int) -> LabeledReport:
    """What a label keeps of a ticket: from the index, else what grouping recorded."""
    index = _index(redis)
    stored = stored_doc(redis, index._doc(str(ticket_id)), str(ticket_id))
    if stored is not None:
        doc = stored[0]
        when = doc.created_at.isoformat().replace("+00:00", "Z")
        return LabeledReport(str(ticket_id), when, doc.title)
    subject = _text(redis.hget(_ticket_key(ticket_id), "subject"))
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return LabeledReport(str(ticket_id), now, subject)


def _label(redis: Redis, a: int, b: int, label: Label, actor: Actor) -> None:
    Labels(redis).record(_labeled(redis, a), _labeled(redis, b), label, by=actor.name)


def _note_once(ctx: JobContext, ticket_id: int, body: str, key: str) -> bool:
    """An internal note on the ticket, once per `key` (agents only, never the reporter)."""
    with once(ctx.redis, f"hub:grouping:noted:{key}", ttl=KEEP_SECONDS) as claim:
        if claim is None:
            return False
        mark_own_comment(ctx.redis, ticket_id, body)
        ctx.zendesk.add_note(ticket_id, body)
        claim.done()
    return True


def _begin(redis: Redis, key: str, state: dict[str, Any]) -> dict[str, Any]:
    """The action in progress under `key`: a retry continues the first attempt's."""
    state = {**state, "nonce": secrets.token_hex(6)}
    redis.set(key, json.dumps(state), nx=True, ex=ACTION_SECONDS)
    return dict(json.loads(redis.get(key) or "{}"))


def _in_progress(redis: Redis, key: str) -> dict[str, Any] | None:
    raw = redis.get(key)
    return dict(json.loads(raw)) if raw else None


def _locks(redis: Redis, *groups: str) -> ExitStack:
    stack = ExitStack()
    for group in sorted(set(groups)):
        stack.enter_context(_group_lock(redis, group))
    return stack


def _corrected(redis: Redis, *tickets: int) -> None:
    """Count a finished correction: the same button pressed from now on is a new press."""
    pipe = redis.pipeline()
    for ticket in tickets:
        pipe.incr(corrections_key(ticket))
        pipe.expire(corrections_key(ticket), KEEP_SECONDS)
    pipe.execute()


def _ticket_url(redis: Redis, eng: EngineeringChannels, ticket_id: int) -> str:
    card = eng.card(ticket_id)
    return card.url if card is not None else _text(redis.hget(_ticket_key(ticket_id), "url"))


# ---------------------------------------------------------------- merge


def merge(
    ticket_id: int, into_id: int, actor: Actor, ctx: JobContext | None = None
) -> dict[str, Any]:
    """Same issue: the group of `ticket_id` joins the group of `into_id`."""
    ctx = ctx or context()
    redis = ctx.redis
    source, target = _group_of_issue(redis, ticket_id), _group_of_issue(redis, into_id)
    if source is None or target is None:
        # Grouping of a just-filed report has not run yet: it will have.
        raise Retryable("a report of this merge is not grouped yet", retry_after=30)
    key = f"hub:grouping:action:merge:{ticket_id}:{into_id}"
    eng = EngineeringChannels(ctx.slack, redis)
    index = _index(redis)
    with _locks(redis, source, target):
        state = _in_progress(redis, key)
        if state is None:
            if source == target:
                return {"merged": False, "why": "already the same issue"}
            state = _begin(
                redis,
                key,
                {
                    "source": source,
                    "target": target,
                    "members": index.group_members(source),
                    "source_issue": _issue(redis, eng, source, None),
                },
            )
        source, target, nonce = state["source"], state["target"], state["nonce"]
        members = [int(m) for m in state["members"]]
        for m in members:
            if group_of(redis, m) != target:
                index.move(str(m), source, target)
                redis.hset(_ticket_key(m), mapping={"group": target, "joined": 1})
        _label(redis, _report_of(redis, ticket_id), _report_of(redis, into_id), "same", actor)
        size = index.group_size(target)

        # Zendesk: linked as incidents of the group's problem, or the problem opened.
        problem = problem_of(redis, target)
        if problem is not None:
            for m in members:
                if _text(redis.hget(_ticket_key(m), "incident_of")) != str(problem):
                    _link(ctx.zendesk, redis, m, problem)
        elif needs_problem(
            size, ctx.settings.group_problem_threshold, forced=False, has_problem=False
        ):
            enqueue_once(redis, OPEN_PROBLEM, target, key=target)

        # Slack: the remaining card counts the merged reports; the other says where it went.
        source_issue = state.get("source_issue")
        target_issue = _issue(redis, eng, target, None)
        if target_issue is None and source_issue is not None:
            # The group joined has no message: the merged one is the group's from now on.
            redis.hset(_group_key(target), "issue", source_issue)
            target_issue = source_issue
        target_url = _ticket_url(redis, eng, target_issue or into_id)
        subject = _text(redis.hget(_ticket_key(ticket_id), "subject"))
        if target_issue is not None and target_issue != source_issue:
            count = 0
            for m in members:
                count = eng.add_reporter(target_issue, m)
            card = eng.card(target_issue)
            if card is not None:
                eng.refresh(replace(card, reporters=max(count, card.reporters)))
            url = _ticket_url(redis, eng, ticket_id)
            eng.thread(
                target_issue,
                merged_note(subject, ticket_id, url, actor.mention),
                once_key=f"grouping:merge:{nonce}:into",
            )
        if source_issue is not None and source_issue != target_issue:
            old = eng.card(source_issue)
            if old is not None:
                eng.refresh(
                    replace(
                        old,
                        merged_into=target_issue or into_id,
                        merged_url=target_url or None,
                        merged_by=actor.mention,
                        suggestions=(),
                    )
                )
            eng.thread(
                source_issue,
                merged_away_note(target_issue or into_id, target_url, actor.mention),
                once_key=f"grouping:merge:{nonce}:away",
            )
        for m in members:
            _note_once(ctx, m, zendesk_merge_note(into_id, actor.name), f"merge:{nonce}:{m}")
        redis.delete(key)
        _corrected(redis, ticket_id, into_id)
    logs.event(log, "grouping.merged", ticket=ticket_id, into=into_id, group=target, by=actor.name)
    return {"merged": True, "group": target, "members": members, "problem": problem}


# ---------------------------------------------------------------- not related


def not_related(
    ticket_id: int, candidate_id: int, actor: Actor, ctx: JobContext | None = None
) -> dict[str, Any]:
    """Not related: the pair is kept as a label, and the suggestion leaves the card."""
    ctx = ctx or context()
    redis = ctx.redis
    eng = EngineeringChannels(ctx.slack, redis)
    report = _report_of(redis, ticket_id)
    _label(redis, report, candidate_id, "not_related", actor)
    card = eng.card(ticket_id)
    if card is not None:
        kept = tuple(s for s in card.suggestions if s.ticket_id != candidate_id)
        if kept != card.suggestions:
            eng.refresh(replace(card, suggestions=kept))
    # Kept with the report's grouping record too: a card built later does not show it.
    _drop_suggestion(redis, report, candidate_id)
    said = eng.thread(
        ticket_id,
        not_related_note(candidate_id, actor.mention),
        once_key=f"grouping:not-related:{ticket_id}:{candidate_id}",
    )
    noted = _note_once(
        ctx,
        report,
        zendesk_not_related_note(candidate_id, actor.name),
        f"not-related:{report}:{candidate_id}",
    )
    _corrected(redis, ticket_id)
    logs.event(log, "grouping.not_related", ticket=report, candidate=candidate_id, by=actor.name)
    return {"said": said, "noted": noted}


def _drop_suggestion(redis: Redis, ticket_id: int, candidate_id: int) -> None:
    raw = redis.hget(_ticket_key(ticket_id), "suggestions")
    if raw:
        kept = [s for s in json.loads(raw) if int(s["ticket_id"]) != candidate_id]
        redis.hset(_ticket_key(ticket_id), "suggestions", json.dumps(kept))


# ---------------------------------------------------------------- split


def split(ticket_id: int, actor: Actor, ctx: JobContext | None = None) -> dict[str, Any]:
    """Split out: the ticket leaves its group and is its own issue again."""
    ctx = ctx or context()
    redis = ctx.redis
    group = group_of(redis, ticket_id)
    if group is None:
        raise Retryable("this report is not grouped yet", retry_after=30)
    own = new_group_id(str(ticket_id))
    key = f"hub:grouping:action:split:{ticket_id}"
    eng = EngineeringChannels(ctx.slack, redis)
    index = _index(redis)
    with _locks(redis, group, own):
        state = _in_progress(redis, key)
        if state is None:
            if group == own:
                return {"split": False, "why": "already its own issue"}
            members = [m for m in index.group_members(group) if m != str(ticket_id)]
            state = _begin(
                redis,
                key,
                {
                    "group": group,
                    "issue": _issue(redis, eng, group, None),
                    "partner": int(members[0]) if members else None,
                },
            )
        group, nonce, issue = state["group"], state["nonce"], state.get("issue")
        if group_of(redis, ticket_id) != own:
            index.move(str(ticket_id), group, own)
            redis.hset(_ticket_key(ticket_id), mapping={"group": own, "joined": 0})
        if state.get("partner") is not None:
            _label(redis, ticket_id, int(state["partner"]), "not_related", actor)

        # Zendesk: no longer an incident of the group's problem.
        if _text(redis.hget(_ticket_key(ticket_id), "incident_of")):
            ctx.zendesk.update_ticket(ticket_id, problem_id=None)
            redis.hdel(_ticket_key(ticket_id), "incident_of")

        # Slack: the group's card stops counting it; its own card is back.
        if issue is not None and issue != ticket_id:
            count = eng.remove_reporter(issue, ticket_id)
            card = eng.card(issue)
            if card is not None:
                eng.refresh(replace(card, reporters=max(count, 1)))
            eng.thread(
                issue,
                split_note(ticket_id, actor.mention),
                once_key=f"grouping:split:{nonce}:group",
            )
        own_issue = _text(redis.hget(_group_key(own), "issue"))
        mine = eng.card(int(own_issue)) if own_issue else None
        if mine is not None:
            eng.refresh(replace(mine, merged_into=None, merged_url=None, merged_by=None))
        elif issue is not None:
            # It never had a message of its own (it was joined on arrival): one is posted
            # where the group's is.
            mine = _own_card(redis, eng, ticket_id)
            for channel in eng.messages(issue):
                eng.notify(channel, mine)
            eng.add_reporter(ticket_id, ticket_id)
            redis.hset(_group_key(own), "issue", ticket_id)
            redis.expire(_group_key(own), KEEP_SECONDS)
        if mine is not None:
            eng.thread(
                mine.issue_id,
                split_away_note(issue or ticket_id, actor.mention),
                once_key=f"grouping:split:{nonce}:own",
            )
        _note_once(
            ctx, ticket_id, zendesk_split_note(issue or ticket_id, actor.name), f"split:{nonce}"
        )
        redis.delete(key)
        _corrected(redis, ticket_id)
    logs.event(log, "grouping.split", ticket=ticket_id, group=group, by=actor.name)
    return {"split": True, "from": group}


def _own_card(redis: Redis, eng: EngineeringChannels, ticket_id: int) -> Card:
    key = _ticket_key(ticket_id)
    return Card(
        issue_id=ticket_id,
        subject=_text(redis.hget(key, "subject")),
        url=_text(redis.hget(key, "url")),
    )


# ---------------------------------------------------------------- jobs (the Slack buttons)


def merge_job(ticket_id: int, into_id: int | None, user_id: str, user_name: str) -> Any:
    """Job: "Same issue" pressed on a suggestion."""
    assert into_id is not None
    return run_guarded(merge, ticket_id, into_id, Actor(user_name or user_id, user_id))


def not_related_job(ticket_id: int, candidate_id: int | None, user_id: str, user_name: str) -> Any:
    """Job: "Not related" pressed on a suggestion."""
    assert candidate_id is not None
    return run_guarded(not_related, ticket_id, candidate_id, Actor(user_name or user_id, user_id))


def split_job(ticket_id: int, _other: int | None, user_id: str, user_name: str) -> Any:
    """Job: "Split out again" pressed on a merged issue's message."""
    return run_guarded(split, ticket_id, Actor(user_name or user_id, user_id))
