"""The console's pages under /admin/: what the hub did and why, and the fixes it allows.

Server-rendered Jinja templates (autoescaped: report text with HTML or Slack markup
is shown as text); htmx, served from workers/console/static/, refreshes the Reports
table in place. The blueprint lives with the workers because it reads what they
keep and calls their operator actions (workers/deadletters.py, the rules engine);
integrations/__init__.py names it by path, so the lower layers never import it.
The Tags page's 12-week charts are a dozen server-rendered SVG bars each: a chart
library would mean more JavaScript for what a template draws.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, get_args
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from werkzeug.exceptions import NotFound

from integrations import logs
from integrations.queue import QUEUES, fetch_job, queue
from integrations.queue.report_log import ReportFilter, ReportRow, report_log
from integrations.queue.tag_counts import recent_weeks, weekly_counts
from integrations.queue.timers import TimerStore
from integrations.report import Report, Source
from integrations.settings import Settings
from rules.decision import Decision
from rules.examples import decide
from rules.store import store_for
from rules.yaml_reader import RulesError
from workers import deadletters
from workers.console import auth, issues

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Vendored front-end files, served by the hub (never a CDN); licences in static/NOTICE.
ASSETS = {"htmx.min.js": "text/javascript", "console.css": "text/css"}
PAGE_ROWS = 50
POLL_SECONDS = 3
SOURCES: tuple[str, ...] = get_args(Source)
STATES = ("queued", "delayed", "filed", "failed")
REPLAY_LOCK_SECONDS = 30

blueprint = Blueprint("console", __name__, template_folder="templates", url_prefix="/admin")

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def _settings() -> Settings:
    settings: Settings = current_app.extensions["feedback_hub"].settings
    return settings


def _redis() -> Redis:
    redis: Redis = current_app.extensions["feedback_hub"].redis
    return redis


def _configured(settings: Settings) -> bool:
    return bool(settings.secret_key and settings.slack_client_id and settings.slack_client_secret)


@blueprint.record_once
def _install(state: Any) -> None:
    settings: Settings = state.app.extensions["feedback_hub"].settings
    if settings.secret_key:
        auth.configure_sessions(state.app, settings)


def _json_error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error=code, message=message), status


@blueprint.before_request
def _guard() -> ResponseReturnValue | None:
    settings = _settings()
    if request.endpoint == "console.asset":
        return None
    if not _configured(settings):
        return _json_error(
            503,
            "console_not_configured",
            "the console needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SECRET_KEY",
        )
    # A session past its 12 hours, or of someone no longer allowed, ends here: the
    # checks below then see no one signed in.
    auth.still_allowed(settings)
    if request.method == "POST":
        # Every state-changing request: a session first, then its CSRF token.
        if auth.signed_in() is None:
            return _json_error(401, "not_signed_in", "sign in to the console first (/admin/)")
        if not auth.csrf_ok(request):
            return _json_error(403, "csrf", "this form is out of date or not from the console")
    return None


def page(view: F) -> F:
    """A page: without a session the browser is sent to sign in (and comes back here)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if auth.signed_in() is None:
            return redirect(url_for("console.signin", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def data(view: F) -> F:
    """Data or an action: without a session, 401 JSON."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if auth.signed_in() is None:
            return _json_error(401, "not_signed_in", "sign in to the console first (/admin/)")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@blueprint.app_context_processor
def _template_values() -> dict[str, Any]:
    if request.blueprint != "console":
        return {}
    person = auth.signed_in()
    return {
        "person": person,
        "csrf_token": auth.csrf_token() if person else "",
        "when": _when,
    }


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _person() -> auth.Person:
    person = auth.signed_in()
    assert person is not None, "only called behind @page or @data"
    return person


def _flash(message: str) -> None:
    session["flash"] = message


def _take_flash() -> str | None:
    message = session.pop("flash", None)
    return message if isinstance(message, str) else None


# ---------------------------------------------------------------- sign-in


@blueprint.get("/")
@page
def index() -> ResponseReturnValue:
    return redirect(url_for("console.reports"))


@blueprint.get("/signin")
def signin() -> ResponseReturnValue:
    """Send the browser to Slack's sign-in, remembering where it wanted to go."""
    settings = _settings()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    session["oidc"] = {"state": state, "nonce": nonce, "next": _safe_next(request.args.get("next"))}
    redirect_uri = _callback_url()
    return redirect(auth.authorize_url(settings, redirect_uri, state, nonce))


@blueprint.get("/signin/callback")
def signin_callback() -> ResponseReturnValue:
    """Slack sends the browser back here with a code: who is it, and may they enter?"""
    pending = session.pop("oidc", None)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if request.args.get("error"):
        return _message_page(400, "Sign-in cancelled", "Slack did not sign you in.")
    if not isinstance(pending, dict) or not code:
        return _message_page(400, "Sign-in expired", "This sign-in link is stale: start again.")
    if not secrets.compare_digest(state.encode(), str(pending.get("state", "")).encode()):
        return _message_page(400, "Sign-in expired", "This sign-in link is stale: start again.")
    redirect_uri = _callback_url()
    try:
        person = auth.sign_in(_settings(), code, redirect_uri)
    except auth.SignInRefused as exc:
        return _message_page(
            exc.status, "Not allowed" if exc.status == 403 else "Sign-in", exc.message
        )
    session.clear()
    session.permanent = True
    # Allowed as of now (sign_in checked): still_allowed counts from these.
    session["since"] = session["checked"] = time.time()
    session["user"] = {
        "user_id": person.user_id,
        "name": person.name,
        "email": person.email,
        "team_id": person.team_id,
    }
    auth.csrf_token()
    return redirect(pending.get("next") or url_for("console.reports"))


@blueprint.post("/signout")
def signout() -> ResponseReturnValue:
    session.clear()
    return _message_page(200, "Signed out", "You are signed out of the console.", signin_link=True)


def _callback_url() -> str:
    """Where Slack sends the browser back: https when the browser came over https, even
    through a router that speaks http to the hub (X-Forwarded-Proto), as the app's
    redirect URL in Slack says."""
    secure = auth.ConsoleSessions().get_cookie_secure(current_app)
    return url_for("console.signin_callback", _external=True, _scheme="https" if secure else None)


def _safe_next(target: str | None) -> str | None:
    """Only a path of this console: never an open redirect to another site."""
    if not target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        # A control character would be a broken Location header (urlsplit drops them).
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return None
    return target


def _message_page(status: int, title: str, message: str, *, signin_link: bool = False) -> Any:
    return render_template(
        "console/message.html", title=title, message=message, signin_link=signin_link
    ), status


# ---------------------------------------------------------------- assets


@blueprint.get("/assets/<name>")
def asset(name: str) -> ResponseReturnValue:
    """The console's vendored htmx and its stylesheet (no session needed: nothing secret)."""
    if name not in ASSETS:
        raise NotFound(f"no console asset named {name!r}")
    response = send_from_directory(HERE / "static", name, mimetype=ASSETS[name], max_age=3600)
    return response


# ---------------------------------------------------------------- reports


@blueprint.get("/reports")
@page
def reports() -> ResponseReturnValue:
    wanted = ReportFilter.from_args(request.args)
    before = _float(request.args.get("before"))
    log_ = report_log(_redis(), _settings())
    found = log_.page(wanted, limit=PAGE_ROWS, before=before)
    waiting = sum(queue(_redis(), name).count for name in QUEUES[:1])
    return render_template(
        "console/reports.html",
        found=found,
        wanted=wanted,
        before=before,
        stored=log_.count(),
        waiting=waiting,
        sources=SOURCES,
        states=STATES,
        rows_url=url_for("console.report_rows", **_args(wanted)),
        older_url=(
            url_for("console.reports", **_args(wanted, before=found.next_before))
            if found.next_before is not None
            else None
        ),
        poll=POLL_SECONDS,
    )


@blueprint.get("/reports/rows")
@data
def report_rows() -> ResponseReturnValue:
    """The first page's rows (htmx swaps them in every few seconds)."""
    wanted = ReportFilter.from_args(request.args)
    found = report_log(_redis(), _settings()).page(wanted, limit=PAGE_ROWS)
    return render_template("console/report_rows.html", rows=found.rows)


@blueprint.get("/api/reports")
@data
def reports_json() -> ResponseReturnValue:
    """The Reports page as JSON (same filters, `before` for older pages)."""
    wanted = ReportFilter.from_args(request.args)
    found = report_log(_redis(), _settings()).page(
        wanted, limit=PAGE_ROWS, before=_float(request.args.get("before"))
    )
    return jsonify(
        reports=[_row_json(r) for r in found.rows],
        next_before=found.next_before,
        scanned=found.scanned,
        truncated=found.truncated,
    )


def _args(wanted: ReportFilter, **more: Any) -> dict[str, Any]:
    return {**wanted.active(), **more}


def _row_json(row: ReportRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": row.received_at,
        "source": row.source,
        "reporter": row.reporter_name,
        "subject": row.subject,
        "state": row.state,
        "ticket_id": row.ticket_id,
        "ticket_url": row.ticket_url,
        "group": row.group,
        "priority": row.priority,
        "tags": row.tags,
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


@blueprint.get("/reports/<report_id>")
@page
def report(report_id: str) -> ResponseReturnValue:
    row = report_log(_redis(), _settings()).get(report_id)
    if row is None:
        return _message_page(
            404, "No such report", "The console keeps no report with this id (it may be too old)."
        )
    decision = Decision.from_json(row.decision) if row.decision else None
    redis = _redis()
    return render_template(
        "console/report.html",
        row=row,
        related=issues.related_of(redis, row.ticket_id) if row.ticket_id else None,
        timer=TimerStore(redis).get(row.ticket_id) if row.ticket_id else None,
        decision=decision,
        explanation=_explanation(decision) if decision else None,
        actions=auth.audit_entries(_redis(), target=f"report:{row.id}"),
    )


def _explanation(decision: Decision) -> dict[str, Any]:
    """The decision as the page shows it: fields in the order rules set them, tags and words."""
    fields = []
    for name, why in decision.why.items():
        fields.append(
            {
                "field": name,
                "value": why.value,
                "by": str(why.set_by),
                "overridden": [f"{w.cause} set {w.value}" for w in why.overridden],
            }
        )
    tags = [
        {
            "tag": change.tag,
            "change": change.change,
            "by": "taxonomy" if change.cause.by == "taxonomy" else str(change.cause),
            "words": change.cause.detail if change.cause.by == "taxonomy" else None,
        }
        for change in decision.tag_changes
    ]
    return {
        "fields": fields,
        "tags": tags,
        "final_tags": decision.tags,
        "matched": [str(r) for r in decision.matched_rules],
        "stopped_by": str(decision.stopped_by) if decision.stopped_by else None,
        "notifications": [f"{n.channel}: {n.text} ({n.cause})" for n in decision.notifications],
        "version": decision.rules_version,
    }


# ---------------------------------------------------------------- dead letters


@blueprint.get("/dead-letters")
@page
def dead_letter_list() -> ResponseReturnValue:
    return render_template(
        "console/dead_letters.html",
        letters=list(reversed(deadletters.dead_letters(_redis()))),
        flash=_take_flash(),
        actions=auth.audit_entries(_redis(), target="dead-letter"),
    )


@blueprint.get("/dead-letters/<job_id>")
@page
def dead_letter_detail(job_id: str) -> ResponseReturnValue:
    redis = _redis()
    letter = deadletters.dead_letter(redis, job_id)
    job = fetch_job(redis, job_id)
    return render_template(
        "console/dead_letter.html",
        job_id=job_id,
        letter=letter,
        status=job.get_status(refresh=False) if job is not None else None,
        error=_error_text(job) if letter is not None else "",
        flash=_take_flash(),
        actions=auth.audit_entries(redis, target=f"dead-letter:{job_id}"),
    )


def _error_text(job: Any) -> str:
    """The failure as rq kept it (the response body is in it), with every secret replaced."""
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or job._exc_info or ""
    lines = text.strip().splitlines()[-40:]
    return logs.Redactor(_settings().secrets)("\n".join(lines))


@blueprint.post("/dead-letters/<job_id>/replay")
@data
def dead_letter_replay(job_id: str) -> ResponseReturnValue:
    """Replay one dead letter; a second click while it runs, or after, is not a second replay."""
    redis, person = _redis(), _person()
    if not redis.set(
        f"hub:console:replaying:{job_id}", person.user_id, nx=True, ex=REPLAY_LOCK_SECONDS
    ):
        _flash(f"{job_id} is already being replayed.")
        return redirect(url_for("console.dead_letter_detail", job_id=job_id), 303)
    try:
        letter = deadletters.replay(redis, job_id)
    except KeyError:
        _flash(f"{job_id} is not a dead letter any more (already replayed?): nothing done.")
        return redirect(url_for("console.dead_letter_detail", job_id=job_id), 303)
    auth.audit(redis, person, "replayed", f"dead-letter:{job_id}", letter.summary)
    _report_event(redis, job_id, f"replayed by {person.label}")
    _flash(f"{job_id} is queued again ({letter.summary}).")
    return redirect(url_for("console.dead_letter_detail", job_id=job_id), 303)


@blueprint.post("/dead-letters/replay-all")
@data
def dead_letter_replay_all() -> ResponseReturnValue:
    redis, person = _redis(), _person()
    done = 0
    for letter in deadletters.dead_letters(redis):
        lock = f"hub:console:replaying:{letter.job_id}"
        if not redis.set(lock, person.user_id, nx=True, ex=REPLAY_LOCK_SECONDS):
            continue
        try:
            deadletters.replay(redis, letter.job_id)
        except KeyError:
            continue
        auth.audit(redis, person, "replayed", f"dead-letter:{letter.job_id}", letter.summary)
        _report_event(redis, letter.job_id, f"replayed by {person.label}")
        done += 1
    _flash(f"{done} dead letter{'s' if done != 1 else ''} queued again.")
    return redirect(url_for("console.dead_letter_list"), 303)


def _report_event(redis: Redis, job_id: str, event: str) -> None:
    """A replayed report's timeline says who replayed it."""
    job = fetch_job(redis, job_id)
    if job is None or not job.args or not isinstance(job.args[0], dict):
        return
    try:
        report = Report.from_job(job.args[0])
    except ValidationError:
        return
    report_log(redis, _settings()).add_event(report.key_digest, event)
    auth.audit(redis, _person(), "replayed", f"report:{report.key_digest}", job_id)


# ---------------------------------------------------------------- rules


@blueprint.get("/rules")
@page
def rules() -> ResponseReturnValue:
    return _rules_page(None, "", "slack_command")


@blueprint.post("/rules/try")
@page
def rules_try() -> ResponseReturnValue:
    """Route pasted text with the rules in force (the engine `rules explain` uses)."""
    text = (request.form.get("text") or "").strip()[:20_000]
    source = request.form.get("source") or "slack_command"
    if source not in SOURCES:
        return _json_error(400, "bad_source", f"source must be one of {', '.join(SOURCES)}")
    if not text:
        return _rules_page(None, "", source, problem="Paste a report's text to try the rules.")
    data_: dict[str, Any] = {"text": text, "source": source}
    platform = (request.form.get("platform") or "").strip()
    if platform:
        data_["platform"] = platform
    store = store_for(_settings().rules_path)
    try:
        decision = decide(data_, store.current())
    except (ValueError, ValidationError) as exc:
        return _rules_page(None, text, source, problem=f"Could not route this: {exc}")
    return _rules_page(decision, text, source)


def _rules_page(
    decision: Decision | None, text: str, source: str, problem: str | None = None
) -> ResponseReturnValue:
    store = store_for(_settings().rules_path)
    ruleset = store.current()
    error: RulesError | None = store.last_error
    return render_template(
        "console/rules.html",
        path=str(store.path),
        version=ruleset.version,
        summary=ruleset.summary(),
        loaded_at=getattr(store, "loaded_at", None),
        problems=[str(p) for p in error.problems] if error else [],
        rule_names=[r.name for r in ruleset.intake],
        decision=decision,
        explanation=_explanation(decision) if decision else None,
        text=text,
        source=source,
        sources=SOURCES,
        problem=problem,
    )


# ---------------------------------------------------------------- health


@blueprint.get("/health")
@page
def health() -> ResponseReturnValue:
    redis = _redis()
    queues = []
    for name in QUEUES:
        q = queue(redis, name)
        queues.append(
            {
                "name": name,
                "waiting": q.count,
                "scheduled": ScheduledJobRegistry(queue=q).count,
                "dead": FailedJobRegistry(queue=q).count,
            }
        )
    workers = [
        {
            "name": w.name,
            "state": str(w.get_state()),
            "queues": ", ".join(w.queue_names()),
            "heartbeat": w.last_heartbeat.timestamp() if w.last_heartbeat else None,
        }
        for w in Worker.all(connection=redis)
    ]
    memory = redis.info("memory")
    return render_template(
        "console/health.html",
        queues=queues,
        workers=workers,
        limits=_rate_limits(redis),
        memory={
            "used": memory.get("used_memory_human"),
            "peak": memory.get("used_memory_peak_human"),
            "max": memory.get("maxmemory_human") or "no limit",
            "policy": memory.get("maxmemory_policy"),
        },
        stored=report_log(redis, _settings()).count(),
        now=time.time(),
    )


def _rate_limits(redis: Redis) -> list[dict[str, Any]]:
    """The shared rate-limit budgets (integrations/queue/ratelimit.py keeps them)."""
    out = []
    for key in sorted(redis.scan_iter("hub:ratelimit:*", count=200)):
        name = _text(key).removeprefix("hub:ratelimit:")
        try:
            raw: dict[Any, Any] = redis.hgetall(key)
            state = {_text(k): _text(v) for k, v in raw.items()}
        except RedisError:
            continue
        out.append(
            {
                "name": name,
                "remaining": state.get("remaining", "?"),
                "limit": state.get("limit", "?"),
                "blocked_until": _float(state.get("blocked_until")),
            }
        )
    return out


# ---------------------------------------------------------------- issues


@blueprint.get("/issues")
@page
def issue_list() -> ResponseReturnValue:
    return render_template(
        "console/issues.html",
        issues=issues.issues(_redis()),
        flash=_take_flash(),
        actions=auth.audit_entries(_redis(), target="issue"),
    )


@blueprint.post("/issues/<action>")
@data
def issue_action(action: str) -> ResponseReturnValue:
    """Merge, not-related or split: queued as the Slack buttons queue them (once per press)."""
    if action not in issues.ACTIONS:
        return _json_error(
            404, "unknown_action", f"no action {action!r}: merge, not-related, split"
        )
    ticket_id = _ticket_number(request.form.get("ticket"))
    other_id = _ticket_number(request.form.get("other"))
    if ticket_id is None or (action != "split" and other_id is None):
        return _json_error(400, "bad_ticket", "ticket (and, but for split, other) must be numbers")
    person = _person()
    queued = issues.queue_action(_redis(), action, ticket_id, other_id, person.user_id, person.name)
    what = f"#{ticket_id}" + (f" and #{other_id}" if other_id else "")
    auth.audit(_redis(), person, action, f"issue:{what}", "queued" if queued else "already queued")
    _flash(
        f"{action} of {what} is queued: the engineering card and Zendesk notes follow."
        if queued
        else f"{action} of {what} was already queued: nothing more done."
    )
    return redirect(url_for("console.issue_list"), 303)


def _ticket_number(value: str | None) -> int | None:
    value = (value or "").strip().lstrip("#")
    return int(value) if value.isdigit() else None


# ---------------------------------------------------------------- tags


@blueprint.get("/tags")
@page
def tags() -> ResponseReturnValue:
    counts = weekly_counts(_redis(), weeks=12)
    weeks = recent_weeks(12)
    rows: list[dict[str, Any]] = []
    for tag, series in counts.items():
        this_week, last_week = series[-1], series[-2]
        rows.append(
            {
                "tag": tag,
                "this_week": this_week,
                "last_week": last_week,
                "change": this_week - last_week,
                "series": series,
                "peak": max(series) or 1,
            }
        )
    rows.sort(key=lambda r: (-r["this_week"], -r["last_week"], r["tag"]))
    return render_template("console/tags.html", rows=rows, weeks=weeks)


__all__ = ["blueprint"]
