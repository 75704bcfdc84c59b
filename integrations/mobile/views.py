"""The mobile bug-report API: verify the app key, parse, store files, enqueue, answer 202.

POST /api/v1/bug-reports         a report (JSON, or multipart with files): 202 {id, status, ...}
GET  /api/v1/bug-reports/<id>    where it stands: queued, filed (ticket), delayed, failed
GET  /api/v1/openapi.yaml        the API's OpenAPI document
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from integrations import logs
from integrations.errors import Rejected
from integrations.mobile import messages, payloads, verify
from integrations.mobile.idempotency import KEY_PATTERN, Idempotency, Record, fingerprint
from integrations.mobile.limits import Limits, RateLimit, size_text
from integrations.mobile.payloads import BugReport, BugReportStatus, Error, Problem, problems
from integrations.mobile.reports import to_report
from integrations.mobile.uploads import TEXT, Incoming, check_and_store, discard
from integrations.queue.attachments import AttachmentStore, attachment_store
from integrations.queue.status import StatusStore
from integrations.report import AttachmentRef, digest
from integrations.web import hub

log = logging.getLogger(__name__)

blueprint = Blueprint("mobile", __name__, url_prefix="/api/v1")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
_REPORT_ID = re.compile(r"^[0-9a-f]{32}$")
_LIMITS = "mobile_limits"


@blueprint.record_once
def _configure(state: BlueprintSetupState) -> None:
    # From the app's Settings (validated at start); a test may put its own Limits here first.
    settings = state.app.extensions["feedback_hub"].settings
    state.app.extensions.setdefault(_LIMITS, Limits(rate_per_minute=settings.mobile_rate_limit))


def largest_body(app: Flask) -> int:
    """The largest request body any mobile route accepts (the web server's cap on bodies)."""
    found: Limits = app.extensions[_LIMITS]
    return max(found.body_bytes, found.report_bytes)


def limits() -> Limits:
    """The limits of the running app."""
    found: Limits = current_app.extensions[_LIMITS]
    return found


class Refused(Rejected):
    """A refusal with details: each problem of an invalid report, or headers (Retry-After)."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.problems = problems
        self.headers = headers or {}


@blueprint.errorhandler(Rejected)
def _refused(exc: Rejected) -> tuple[Response, int, dict[str, str]]:
    body = Error(error=exc.code, message=exc.reason, problems=getattr(exc, "problems", None))
    headers: dict[str, str] = getattr(exc, "headers", {})
    return jsonify(body.model_dump(exclude_none=True)), exc.status, headers


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
    lim = limits()
    if request.mimetype == "multipart/form-data":
        length = request.content_length
        if length is not None and length <= lim.body_bytes:
            message = (
                f"a part without a filename (the report) is larger than "
                f"{size_text(lim.report_bytes)}, its limit; files need a filename"
            )
        else:
            message = (
                f"the request is larger than {size_text(lim.body_bytes)}, the limit for a "
                f"report with its files (each file at most {size_text(lim.file_bytes)})"
            )
    else:
        message = (
            f"the report is larger than {size_text(lim.report_bytes)}, the limit for "
            "application/json; send long logs as a file with multipart/form-data"
        )
    return _refused(Rejected(413, message))[:2]


@blueprint.before_request
def _body_limits() -> None:
    # The app refuses bodies over 1 MiB; reports with files may be larger.
    lim = limits()
    if request.mimetype == "multipart/form-data":
        request.max_content_length = lim.body_bytes
    else:
        request.max_content_length = lim.report_bytes
    # The `report` part of a multipart body (files are not held in memory).
    request.max_form_memory_size = lim.report_bytes


@dataclass(frozen=True)
class Submission:
    """A request, parsed: the validated report and the files as they arrived."""

    body: BugReport
    files: list[Incoming]


@blueprint.post("/bug-reports")
def file_bug_report() -> tuple[Response, int, dict[str, str]]:
    """Accept a report: 202 once it is durably queued (or, for a retry, the same report)."""
    the_hub = hub()
    app_id = verify.app_for(request.headers.get("Authorization"), the_hub.settings.mobile_api_keys)
    if request.mimetype not in ("application/json", "multipart/form-data"):
        shown = request.mimetype or "no Content-Type"
        raise Rejected(
            415,
            f"send application/json, or multipart/form-data with a 'report' JSON part and "
            f"files; got {shown}",
        )
    key = _idempotency_key()
    idempotency = Idempotency(the_hub.redis)
    earlier = idempotency.get(app_id, key) if key else None
    lim = limits()
    if earlier is None:
        # Counted before the body is read: a flooding client costs little.
        wait = RateLimit(the_hub.redis, lim.rate_per_minute).take(app_id)
        if wait is not None:
            raise Refused(
                429,
                f"too many reports from this app: at most {lim.rate_per_minute} a minute; "
                f"retry in {int(wait)} s",
                headers={"Retry-After": str(int(wait))},
            )

    submission = _parse(lim)
    store = attachment_store(the_hub.redis)
    report_key = f"{app_id}:{key or uuid.uuid4().hex}"
    report_id = digest("mobile", report_key)

    if earlier is not None:
        checked = check_and_store(submission.files, None, file_bytes=lim.file_bytes)
        print_ = fingerprint(submission.body, [c.fingerprint for c in checked])
        _same_or_conflict(key, earlier, print_)
        logs.event(log, "mobile.report.replayed", app=app_id, report=earlier.report_id)
        return _answer(earlier.report_id, replayed=True, body=submission.body)

    checked = check_and_store(submission.files, store, file_bytes=lim.file_bytes)
    refs = [c.ref for c in checked if c.ref is not None]
    print_ = fingerprint(submission.body, [c.fingerprint for c in checked])
    try:
        refs += _full_logs(submission.body, store, lim)
        report = to_report(
            submission.body,
            app_id=app_id,
            idempotency_key=report_key,
            attachments=refs,
            log_excerpt_chars=lim.log_excerpt_chars,
        )
    except BaseException:
        discard(store, refs)
        raise
    try:
        enqueued = the_hub.file_report(report)
    except RedisError:
        # The job may exist even so (a timeout after Redis took it), and it needs these
        # files: they stay until their TTL. The app gets 503 and retries the same report.
        logs.event(log, "mobile.report.not_queued", logging.WARNING, app=app_id, files=len(refs))
        raise
    idempotency.remember(app_id, key if enqueued.created else None, Record(report_id, print_))
    if not enqueued.created:
        # The same key raced another request, which queued its report first.
        discard(store, refs)
        first = idempotency.get(app_id, key) if key else None
        if first is not None:
            _same_or_conflict(key, first, print_)
        return _answer(report_id, replayed=True, body=submission.body)
    logs.event(
        log,
        "mobile.report.accepted",
        app=app_id,
        report=report_id,
        files=len(refs),
        crash_signature=report.crash_signature,
        unknown_fields=payloads.unknown_field_count(submission.body),
    )
    return _answer(report_id, replayed=False, body=submission.body)


@blueprint.get("/bug-reports/<report_id>")
def bug_report_status(report_id: str) -> Response:
    """Where a report stands; only the app that filed it may ask."""
    the_hub = hub()
    app_id = verify.app_for(request.headers.get("Authorization"), the_hub.settings.mobile_api_keys)
    if not _REPORT_ID.match(report_id) or Idempotency(the_hub.redis).owner(report_id) != app_id:
        raise Rejected(404, f"this app has no bug report {report_id[:64]!r}")
    return jsonify(_status(report_id).model_dump(exclude_none=True))


@blueprint.get("/openapi.yaml")
def openapi() -> Response:
    """The API's OpenAPI document."""
    return Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")


# ------------------------------------------------------------------ parsing


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not KEY_PATTERN.match(value):
        raise Refused(
            400,
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        )
    return value


def _parse(lim: Limits) -> Submission:
    """The report and files of the request, or 400/413/422 saying what is wrong."""
    if request.mimetype == "application/json":
        return Submission(body=_validate(request.get_data(cache=False)), files=[])

    form, files = request.form, request.files
    raw: str | bytes | None = form.get("report")
    if raw is None and "report" in files:
        raw = files["report"].stream.read(lim.report_bytes + 1)
        if len(raw) > lim.report_bytes:
            raise RequestEntityTooLarge()
    if raw is None:
        raise Refused(
            422,
            "the multipart body has no 'report' part",
            problems=[Problem(path="report", message="a part holding the report JSON is required")],
        )
    stray = [name for name in form if name != "report"]
    if stray:
        raise Refused(
            422,
            f"unexpected form field {stray[0]!r}: files need a filename in their "
            "Content-Disposition, and the report goes in the 'report' part",
        )
    body = _validate(raw)
    incoming = [
        Incoming(stream=f.stream, filename=f.filename, content_type=f.mimetype)
        for name, f in files.items(multi=True)
        if name != "report" and f.filename != ""
    ]
    if len(incoming) > lim.files:
        raise Rejected(
            413, f"too many files: {len(incoming)}; a report may have at most {lim.files}"
        )
    return Submission(body=body, files=incoming)


def _validate(raw: str | bytes) -> BugReport:
    try:
        return BugReport.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
            raise Refused(400, f"the report is not valid UTF-8 JSON: {detail}") from None
        found = problems(exc)
        summary = "; ".join(f"{p.path}: {p.message}" for p in found[:5])
        count = f"{len(found)} problem{'s' if len(found) != 1 else ''}"
        raise Refused(422, f"{count}: {summary}", problems=found) from None


def _full_logs(body: BugReport, store: AttachmentStore, lim: Limits) -> list[AttachmentRef]:
    # Long logs are cut in the ticket text; the whole log goes along as a file.
    if body.logs is None or len(body.logs.strip("\n")) <= lim.log_excerpt_chars:
        return []
    return [store.put(body.logs.encode(), messages.LOGS_FILENAME, TEXT.content_type)]


# ------------------------------------------------------------------ answers


def _same_or_conflict(key: str | None, earlier: Record, print_: str) -> None:
    if earlier.fingerprint != print_:
        raise Rejected(
            409,
            f"Idempotency-Key {key!r} was already used for a different report "
            f"({earlier.report_id}); use a new key for a new report",
        )


def _status(report_id: str) -> BugReportStatus:
    status = StatusStore(hub().redis).get(report_id)
    return BugReportStatus(
        id=report_id,
        # Owned but no status yet: the job exists (it is recorded after enqueueing).
        status=status.state if status else "queued",
        status_url=f"{blueprint.url_prefix}/bug-reports/{report_id}",
        ticket_id=status.ticket_id if status else None,
        ticket_url=status.ticket_url if status else None,
        reason=status.reason if status else None,
    )


def _answer(
    report_id: str, *, replayed: bool, body: BugReport
) -> tuple[Response, int, dict[str, str]]:
    status = _status(report_id)
    status.warnings = payloads.warnings(body) or None
    headers = {"Location": status.status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return jsonify(status.model_dump(exclude_none=True)), 202, headers
