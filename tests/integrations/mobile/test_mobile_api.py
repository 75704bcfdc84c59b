"""The mobile bug-report API as an app sees it: statuses, error messages, and the queued report."""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from app import create_app
from integrations.mobile.limits import Limits
from integrations.queue import TICKETS, queue
from integrations.queue.attachments import attachment_store
from integrations.queue.status import StatusStore
from integrations.report import Report
from integrations.settings import Settings
from tests import REPO_ROOT
from tests.jobs import run_jobs

FIXTURES = REPO_ROOT / "integrations" / "mobile" / "fixtures"
IOS = {"Authorization": "Bearer mobile-key-ios-0000"}
ANDROID = {"Authorization": "Bearer mobile-key-android-0000"}
URL = "/api/v1/bug-reports"


def png(width: int = 4, height: int = 3, noise: bytes = b"") -> bytes:
    """A valid RGB PNG, written by hand (zlib + struct); `noise` pads it with a text chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes([x * 40 % 256, y * 60 % 256, 128]) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"Comment\x00" + noise) if noise else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def js(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries."""
    data = response.get_json()
    assert isinstance(data, dict), response.data
    return data


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def post_json(
    client: FlaskClient, body: Any, headers: dict[str, str] | None = None
) -> TestResponse:
    return client.post(URL, json=body, headers=headers or IOS)


def post_multipart(
    client: FlaskClient,
    report: Any,
    files: list[tuple[bytes, str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST a multipart report, encoded here (the test client's temp files are never closed)."""
    data: MultiDict[str, Any] = MultiDict(
        [("report", report if isinstance(report, str) else json.dumps(report))]
    )
    for content, name, ctype in files or []:
        data.add("files", FileStorage(io.BytesIO(content), filename=name, content_type=ctype))
    boundary, body = encode_multipart(data)
    return client.post(
        URL,
        data=body,
        headers=headers or IOS,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def queued_reports(redis: Redis) -> list[Report]:
    return [Report.from_job(job.args[0]) for job in queue(redis, TICKETS).jobs]


def stored_attachments(redis: Redis) -> list[bytes]:
    return sorted(redis.keys("hub:attachment:*"))  # type: ignore[arg-type]


# ------------------------------------------------------------------ auth


def test_no_key_is_401_with_a_bearer_challenge(client: FlaskClient) -> None:
    r = client.post(URL, json={"description": "x"})
    assert r.status_code == 401
    assert r.json == {
        "error": "unauthorized",
        "message": "send the app's API key as 'Authorization: Bearer <key>'",
    }
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="feedback-hub mobile API"'


@pytest.mark.parametrize(
    "header", ["Bearer wrong-key", "Bearer mobile-key-ios-000", "Basic bW9iaWxlLWtleQ==", "Bearer "]
)
def test_wrong_key_is_401(client: FlaskClient, redis: Redis, header: str) -> None:
    r = client.post(URL, json={"description": "x"}, headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert queued_reports(redis) == []


def test_the_key_decides_the_app(client: FlaskClient, redis: Redis) -> None:
    r = post_json(client, {"description": "x", "app": {"id": "com.acme.shop"}}, ANDROID)
    assert r.status_code == 202
    (report,) = queued_reports(redis)
    assert report.fields.app_id == "android-app"
    assert report.context["App"] == "android-app (com.acme.shop)"


def test_another_apps_key_cannot_read_the_status(client: FlaskClient) -> None:
    r = post_json(client, {"description": "x"})
    url = js(r)["status_url"]
    assert client.get(url, headers=IOS).status_code == 200
    other = client.get(url, headers=ANDROID)
    assert other.status_code == 404
    assert js(other)["error"] == "not_found"
    assert client.get(url).status_code == 401


# ------------------------------------------------------------------ accepted, and status


def test_json_report_is_accepted_and_queued(client: FlaskClient, redis: Redis) -> None:
    r = post_json(client, fixture("report__android_minimal.json"), ANDROID)
    assert r.status_code == 202
    body = r.json
    assert body is not None
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/v1/bug-reports/{body['id']}"
    assert r.headers["Location"] == body["status_url"]
    (report,) = queued_reports(redis)
    assert report.key_digest == body["id"]
    assert report.source == "mobile"


def test_status_follows_the_job(client: FlaskClient, redis: Redis) -> None:
    body = post_json(client, {"description": "x"}).json
    assert body is not None
    url = body["status_url"]
    assert client.get(url, headers=IOS).json == {
        "id": body["id"],
        "status": "queued",
        "status_url": url,
    }
    statuses = StatusStore(redis)
    statuses.set(body["id"], "delayed", reason="Zendesk is rate limiting; retrying in 60 s")
    assert js(client.get(url, headers=IOS))["reason"].startswith("Zendesk is rate")
    statuses.set(body["id"], "failed", reason="Zendesk refused the ticket: 422")
    failed = client.get(url, headers=IOS).json
    assert failed is not None and (failed["status"], failed["reason"]) == (
        "failed",
        "Zendesk refused the ticket: 422",
    )
    statuses.set(
        body["id"], "filed", ticket_id=123, ticket_url="https://acme.zendesk.com/agent/tickets/123"
    )
    filed = client.get(url, headers=IOS).json
    assert filed is not None
    assert (filed["status"], filed["ticket_id"], filed["ticket_url"]) == (
        "filed",
        123,
        "https://acme.zendesk.com/agent/tickets/123",
    )


@pytest.mark.parametrize("report_id", ["0" * 32, "not-an-id", "a" * 300])
def test_unknown_report_is_404(client: FlaskClient, report_id: str) -> None:
    r = client.get(f"{URL}/{report_id}", headers=IOS)
    assert r.status_code == 404
    assert js(r)["message"].startswith("this app has no bug report")


# ------------------------------------------------------------------ the ticket's content


def test_ios_crash_with_logs_fixture(client: FlaskClient, redis: Redis) -> None:
    r = post_json(client, fixture("report__ios_crash_with_logs.json"))
    assert r.status_code == 202
    (report,) = queued_reports(redis)
    assert report.subject == "App crashes when I tap Pay"
    assert report.description.startswith("I changed the delivery address")
    assert "Steps to reproduce:\n1. Add any item to the cart" in report.description
    assert (
        "Crash: EXC_BREAKPOINT (SIGTRAP): Fatal error: Unexpectedly found nil" in report.description
    )
    assert "closure #1 in CartStore.checkout(using:)" in report.description
    assert "Logs:\n2024-05-02T10:14:03Z INFO  CartStore" in report.description
    assert report.context == {
        "App": "ios-app (com.acme.shop)",
        "Version": "5.2.1 (build 742)",
        "Platform": "iOS",
        "OS": "iOS 17.4.1",
        "Device": "Apple iPhone15,2",
        "Locale": "pt-BR",
        "Time zone": "America/Sao_Paulo",
        "Reporter": "Ana Lima <ana@example.com>",
        "Category": "Checkout",
        "Severity": "high",
        "Crash signature": report.crash_signature,
        "plan": "premium",
        "cart_items": "2",
        "dark_mode": "true",
    }
    assert report.tags == (
        "mobile",
        "bug_report",
        "platform_ios",
        "app_5_2",
        "category_checkout",
        "severity_high",
        "crash",
        f"crash_{(report.crash_signature or '')[:10]}",
        "beta_tester",
        "checkout_v2",
    )
    assert report.reporter.email == "ana@example.com"
    assert report.reporter.external_id is None
    assert report.fields.platform == "ios"
    assert report.fields.severity == "high"
    assert report.custom == {"plan": "premium", "cart_items": "2", "dark_mode": "true"}
    assert report.crash_signature is not None and len(report.crash_signature) == 16


def test_android_minimal_fixture(client: FlaskClient, redis: Redis) -> None:
    assert post_json(client, fixture("report__android_minimal.json"), ANDROID).status_code == 202
    (report,) = queued_reports(redis)
    assert report.subject == "Search results never load when I type more than three words"
    assert report.tags == ("mobile", "bug_report", "platform_android", "app_5_3")
    assert report.context == {
        "App": "android-app",
        "Version": "5.3.0-beta.2",
        "Platform": "Android",
        "OS": "Android 14",
        "Device": "Google Pixel 8",
    }
    assert report.crash_signature is None
    assert report.attachments == ()


def test_react_native_js_error_fixture(client: FlaskClient, redis: Redis) -> None:
    assert (
        post_json(client, fixture("report__react_native_js_error.json"), ANDROID).status_code == 202
    )
    (report,) = queued_reports(redis)
    # No title: the description's first line.
    assert report.subject == "White screen after opening an order from the push notification."
    # No email: the user id identifies them, per app.
    assert report.reporter.external_id == "mobile:android-app:rn-user-9921"
    assert report.context["Reporter"] == "Kenji (user rn-user-9921)"
    assert "category_orders" in report.tags and "app_2_14" in report.tags
    assert report.crash_signature is not None


def test_long_logs_are_cut_in_the_ticket_and_attached_whole(
    client: FlaskClient, redis: Redis, app: Flask
) -> None:
    lines = [f"2024-05-02T10:{i // 60:02d}:{i % 60:02d}Z DEBUG sync: step {i}" for i in range(2000)]
    logs = "\n".join(lines)
    assert post_json(client, {"description": "sync stalls", "logs": logs}).status_code == 202
    (report,) = queued_reports(redis)
    assert "the full log is attached as logs.txt" in report.description
    assert report.description.endswith(lines[-1])
    assert lines[0] not in report.description
    (ref,) = report.attachments
    assert (ref.filename, ref.content_type) == ("logs.txt", "text/plain; charset=utf-8")
    assert attachment_store(redis).get(ref.key) == logs.encode()


def test_long_subject_is_shortened_and_control_characters_dropped(
    client: FlaskClient, redis: Redis
) -> None:
    words = "the checkout button does nothing " * 10
    assert post_json(client, {"description": "\x00" + words + "\x07"}).status_code == 202
    (report,) = queued_reports(redis)
    assert len(report.subject) <= 100 and report.subject.endswith("\u2026")
    assert "\x00" not in report.description and "\x07" not in report.description


# ------------------------------------------------------------------ files


def test_png_and_log_file_are_stored_by_content(client: FlaskClient, redis: Redis) -> None:
    image = png()
    r = post_multipart(
        client,
        {"description": "see screenshot"},
        [(image, "screen.png", "image/png"), (b"line 1\nline 2\n", "app.log", "text/plain")],
    )
    assert r.status_code == 202, r.json
    (report,) = queued_reports(redis)
    shot, log = report.attachments
    assert (shot.filename, shot.content_type, shot.size) == ("screen.png", "image/png", len(image))
    assert (log.filename, log.content_type) == ("app.log", "text/plain; charset=utf-8")
    store = attachment_store(redis)
    assert store.get(shot.key) == image
    assert store.get(log.key) == b"line 1\nline 2\n"


def test_a_png_name_holding_text_is_stored_as_the_text_it_is(
    client: FlaskClient, redis: Redis
) -> None:
    r = post_multipart(client, {"description": "x"}, [(b"not an image", "photo.png", "image/png")])
    assert r.status_code == 202
    (report,) = queued_reports(redis)
    (ref,) = report.attachments
    assert (ref.filename, ref.content_type) == ("photo.txt", "text/plain; charset=utf-8")


def test_an_image_named_as_text_is_stored_as_the_image_it_is(
    client: FlaskClient, redis: Redis
) -> None:
    image = png()
    r = post_multipart(client, {"description": "x"}, [(image, "../../etc/notes.txt", "text/plain")])
    assert r.status_code == 202
    (ref,) = queued_reports(redis)[0].attachments
    assert (ref.filename, ref.content_type) == ("notes.png", "image/png")


def test_json_file_is_kept_as_json(client: FlaskClient, redis: Redis) -> None:
    state = b'{"cart": {"items": 2}}'
    r = post_multipart(client, {"description": "x"}, [(state, "state.json", "application/json")])
    assert r.status_code == 202
    (ref,) = queued_reports(redis)[0].attachments
    assert (ref.filename, ref.content_type) == ("state.json", "application/json")


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "logs.zip"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 40, "screen.png"),
        ("caf\u00e9".encode("latin-1") + b" log line\n", "app.log"),
    ],
    ids=["zip", "exe-named-png", "latin1-text"],
)
def test_files_of_other_types_are_415_naming_the_allowlist(
    client: FlaskClient, redis: Redis, content: bytes, name: str
) -> None:
    r = post_multipart(
        client,
        {"description": "x"},
        [(png(), "ok.png", "image/png"), (content, name, "application/octet-stream")],
    )
    assert r.status_code == 415
    message = js(r)["message"]
    assert message.startswith(
        f"attachment {name!r} is not an accepted type (checked by its content)"
    )
    assert message.endswith(
        "accepted are PNG, JPEG, GIF, WebP, HEIC/HEIF images; MP4 and QuickTime videos; "
        "UTF-8 text and JSON"
    )
    assert queued_reports(redis) == []
    # The PNG stored before the refused file is gone again: nothing half-accepted.
    assert stored_attachments(redis) == []


def test_text_that_turns_invalid_after_the_first_chunk_is_refused(
    client: FlaskClient, redis: Redis
) -> None:
    content = b"fine log line\n" * 50_000 + b"\xff\xfe broken\n"
    r = post_multipart(client, {"description": "x"}, [(content, "big.log", "text/plain")])
    assert r.status_code == 415
    assert f"invalid UTF-8 at byte {len(content) - 10}" in js(r)["message"]
    assert stored_attachments(redis) == []


def test_too_many_files_is_413_naming_the_limit(client: FlaskClient, redis: Redis) -> None:
    files = [(png(), f"s{i}.png", "image/png") for i in range(6)]
    r = post_multipart(client, {"description": "x"}, files)
    assert r.status_code == 413
    assert r.json == {
        "error": "payload_too_large",
        "message": "too many files: 6; a report may have at most 5",
    }
    assert stored_attachments(redis) == []


def test_file_over_the_per_file_limit_is_413(app: Flask, client: FlaskClient, redis: Redis) -> None:
    app.extensions["mobile_limits"] = Limits(file_bytes=1000)
    r = post_multipart(
        client,
        {"description": "x"},
        [(png(), "small.png", "image/png"), (png(noise=b"x" * 2000), "big.png", "image/png")],
    )
    assert r.status_code == 413
    assert js(r)["message"] == "attachment 'big.png' is larger than 1000 bytes, the limit per file"
    assert stored_attachments(redis) == []


def test_body_over_the_limit_is_413_naming_it(app: Flask, client: FlaskClient) -> None:
    app.extensions["mobile_limits"] = Limits(body_bytes=64 * 1024)
    r = post_multipart(
        client, {"description": "x"}, [(png(noise=b"x" * 100_000), "big.png", "image/png")]
    )
    assert r.status_code == 413
    assert js(r)["message"] == (
        "the request is larger than 64 KiB, the limit for a report with its files "
        "(each file at most 10 MiB)"
    )


def test_json_body_over_1_mib_is_413_pointing_to_multipart(client: FlaskClient) -> None:
    r = post_json(client, {"description": "x", "logs": "y" * (1024 * 1024)})
    assert r.status_code == 413
    assert js(r)["message"] == (
        "the report is larger than 1 MiB, the limit for application/json; "
        "send long logs as a file with multipart/form-data"
    )


def test_multipart_may_exceed_the_apps_1_mib_default(client: FlaskClient, redis: Redis) -> None:
    big = png(noise=b"x" * (3 * 1024 * 1024))
    r = post_multipart(client, {"description": "x"}, [(big, "big.png", "image/png")])
    assert r.status_code == 202, r.json
    (ref,) = queued_reports(redis)[0].attachments
    assert ref.size == len(big)


def test_empty_file_is_422(client: FlaskClient) -> None:
    r = post_multipart(client, {"description": "x"}, [(b"", "empty.png", "image/png")])
    assert r.status_code == 422
    assert js(r)["message"] == "attachment 'empty.png' is empty"


# ------------------------------------------------------------------ invalid requests


def test_invalid_report_lists_each_problem(client: FlaskClient, redis: Redis) -> None:
    r = post_json(
        client,
        {
            "description": "   ",
            "device": {"os": 7, "ram": "8 GB"},
            "severity": "apocalyptic",
            "reporter": {"email": "not-an-email"},
            "tags": ["ok", ""],
        },
    )
    assert r.status_code == 422
    body = r.json
    assert body is not None
    assert body["error"] == "invalid"
    assert body["message"].startswith("5 problems: description: String should match pattern")
    # `device.ram` is unknown, not wrong: a newer app's field is no problem.
    assert {p["path"] for p in body["problems"]} == {
        "description",
        "device.os",
        "severity",
        "reporter.email",
        "tags.1",
    }
    messages = {p["path"]: p["message"] for p in body["problems"]}
    assert messages["device.os"] == "Input should be a valid string"
    assert messages["severity"] == "Input should be 'low', 'normal', 'high' or 'critical'"
    assert queued_reports(redis) == []


def test_a_newer_apps_unknown_fields_are_kept_and_named_not_refused(
    client: FlaskClient, redis: Redis
) -> None:
    r = post_json(
        client,
        {
            "description": "The pay button does nothing.",
            "app_theme": "dark",
            "device": {"os": "iOS", "foldable": {"hinge": "open", "angle": 90}},
            "experiment_ids": ["a" * 600],
        },
    )
    assert r.status_code == 202
    assert js(r)["warnings"] == [
        "unknown field 'app_theme' was kept on the ticket under 'Other fields'",
        "unknown field 'experiment_ids' was kept on the ticket under 'Other fields'",
        "unknown field 'device.foldable' was kept on the ticket under 'Other fields'",
    ]
    [report] = queued_reports(redis)
    other = report.description.split("Other fields (sent by the app, not known to the hub yet):\n")[
        1
    ]
    lines = other.splitlines()
    assert lines[0] == "- app_theme: dark"
    assert lines[1].startswith('- experiment_ids: ["aaa') and lines[1].endswith("\u2026")
    assert len(lines[1]) == len("- experiment_ids: ") + 500
    path, _, value = lines[2].partition(": ")
    assert (path, json.loads(value)) == ("- device.foldable", {"hinge": "open", "angle": 90})


def test_a_known_field_of_the_wrong_type_is_still_422(client: FlaskClient) -> None:
    r = post_json(client, {"description": "x", "app_theme": "dark", "app": {"version": 5}})
    assert r.status_code == 422
    assert js(r)["problems"] == [
        {"path": "app.version", "message": "Input should be a valid string"}
    ]


def test_a_report_without_unknown_fields_gets_no_warnings(client: FlaskClient) -> None:
    r = post_json(client, {"description": "The pay button does nothing."})
    assert r.status_code == 202
    assert "warnings" not in js(r)


def test_missing_description_is_422(client: FlaskClient) -> None:
    r = post_json(client, {"title": "x"})
    assert r.status_code == 422
    assert js(r)["problems"] == [{"path": "description", "message": "Field required"}]


def test_report_that_is_not_an_object_is_422(client: FlaskClient) -> None:
    r = client.post(URL, data="[1, 2]", headers=IOS, content_type="application/json")
    assert r.status_code == 422
    assert js(r)["problems"][0]["path"] == "(report)"


def test_malformed_json_is_400(client: FlaskClient) -> None:
    r = client.post(URL, data='{"description": ', headers=IOS, content_type="application/json")
    assert r.status_code == 400
    assert js(r)["message"] == (
        "the report is not valid UTF-8 JSON: EOF while parsing a value at line 1 column 16"
    )


def test_multipart_without_report_part_is_422(client: FlaskClient) -> None:
    r = client.post(
        URL,
        data={"files": (io.BytesIO(png()), "a.png")},
        headers=IOS,
        content_type="multipart/form-data",
    )
    assert r.status_code == 422
    assert js(r)["problems"] == [
        {"path": "report", "message": "a part holding the report JSON is required"}
    ]


def test_report_part_over_its_limit_is_413(app: Flask, client: FlaskClient) -> None:
    app.extensions["mobile_limits"] = Limits(report_bytes=1000)
    r = post_multipart(client, {"description": "x" * 2000})
    assert r.status_code == 413
    assert js(r)["message"] == (
        "a part without a filename (the report) is larger than 1000 bytes, its limit; "
        "files need a filename"
    )


def test_report_part_sent_as_a_file_is_read_too(client: FlaskClient, redis: Redis) -> None:
    r = client.post(
        URL,
        data={"report": (io.BytesIO(b'{"description": "from a file part"}'), "report.json")},
        headers=IOS,
        content_type="multipart/form-data",
    )
    assert r.status_code == 202
    assert queued_reports(redis)[0].subject == "from a file part"


def test_a_file_without_filename_is_explained(client: FlaskClient) -> None:
    r = client.post(
        URL,
        data={"report": json.dumps({"description": "x"}), "screenshot": "iVBORw0KGgo="},
        headers=IOS,
        content_type="multipart/form-data",
    )
    assert r.status_code == 422
    assert js(r)["message"].startswith("unexpected form field 'screenshot': files need a filename")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_other_content_types_are_415(client: FlaskClient, ctype: str | None) -> None:
    r = client.post(URL, data=b"description=x", headers=IOS, content_type=ctype)
    assert r.status_code == 415
    assert js(r)["message"].startswith(
        "send application/json, or multipart/form-data with a 'report' JSON part and files"
    )


# ------------------------------------------------------------------ idempotency


def test_same_key_same_report_one_job(client: FlaskClient, redis: Redis) -> None:
    headers = {**IOS, "Idempotency-Key": "6f1c2e1e-94d3-4c59-9f55-5d1b8b0f2c11"}
    report = {"description": "offline queue retry"}
    first = post_multipart(client, report, [(png(), "s.png", "image/png")], headers)
    second = post_multipart(client, report, [(png(), "s.png", "image/png")], headers)
    assert first.status_code == second.status_code == 202
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(queued_reports(redis)) == 1
    # The retry's files were only checked, not stored a second time.
    assert len(stored_attachments(redis)) == 1


def test_replay_answers_the_current_status(client: FlaskClient, redis: Redis) -> None:
    headers = {**IOS, "Idempotency-Key": "k-filed"}
    first = post_json(client, {"description": "x"}, headers).json
    assert first is not None
    StatusStore(redis).set(
        first["id"], "filed", ticket_id=77, ticket_url="https://z/agent/tickets/77"
    )
    again = post_json(client, {"description": "x"}, headers).json
    assert again is not None and (again["status"], again["ticket_id"]) == ("filed", 77)


def test_same_key_different_body_is_409_naming_the_key(client: FlaskClient, redis: Redis) -> None:
    headers = {**IOS, "Idempotency-Key": "report-42"}
    first = post_json(client, {"description": "first"}, headers)
    r = post_multipart(client, {"description": "first"}, [(png(), "s.png", "image/png")], headers)
    assert r.status_code == 409
    assert js(r)["message"] == (
        f"Idempotency-Key 'report-42' was already used for a different report "
        f"({js(first)['id']}); use a new key for a new report"
    )
    assert len(queued_reports(redis)) == 1


def test_keys_are_per_app(client: FlaskClient, redis: Redis) -> None:
    a = post_json(client, {"description": "x"}, {**IOS, "Idempotency-Key": "same"})
    b = post_json(client, {"description": "y"}, {**ANDROID, "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 202
    assert js(a)["id"] != js(b)["id"]
    assert len(queued_reports(redis)) == 2


def test_without_key_each_post_is_a_new_report(client: FlaskClient, redis: Redis) -> None:
    a = post_json(client, {"description": "x"})
    b = post_json(client, {"description": "x"})
    assert js(a)["id"] != js(b)["id"]
    assert len(queued_reports(redis)) == 2


def test_bad_idempotency_key_is_400(client: FlaskClient) -> None:
    r = post_json(client, {"description": "x"}, {**IOS, "Idempotency-Key": "has space"})
    assert r.status_code == 400
    assert js(r)["message"].startswith("Idempotency-Key must be 1 to 255 visible ASCII")


# ------------------------------------------------------------------ rate limit and outages


def test_rate_limit_is_429_with_retry_after(app: Flask, client: FlaskClient, redis: Redis) -> None:
    app.extensions["mobile_limits"] = Limits(rate_per_minute=2)
    assert (
        post_json(client, {"description": "1"}, {**IOS, "Idempotency-Key": "r1"}).status_code == 202
    )
    assert post_json(client, {"description": "2"}).status_code == 202
    r = post_json(client, {"description": "3"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert js(r)["message"].startswith("too many reports from this app: at most 2 a minute")
    # Another app has its own budget; a retry of an accepted report is not counted.
    assert post_json(client, {"description": "4"}, ANDROID).status_code == 202
    replay = post_json(client, {"description": "1"}, {**IOS, "Idempotency-Key": "r1"})
    assert replay.status_code == 202
    assert len(queued_reports(redis)) == 3


def test_redis_failing_at_enqueue_is_503_and_files_only_wait_for_their_ttl(
    app: Flask, client: FlaskClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = app.extensions["feedback_hub"]

    def down(report: Report) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(hub, "file_report", down)
    r = post_multipart(client, {"description": "x"}, [(png(), "s.png", "image/png")])
    assert r.status_code == 503
    assert js(r)["message"] == ("the hub cannot store requests right now; retry this request")
    # A job might hold the file (Redis may have taken it before failing): it stays, expiring.
    (key,) = stored_attachments(redis)
    assert 0 < redis.ttl(key) <= 7 * 24 * 3600


def test_redis_down_is_503(settings: Settings, redis: Redis) -> None:
    dead = Settings(**{**settings.__dict__, "redis_url": "redis://127.0.0.1:9/0"})
    client = create_app(dead).test_client()
    r = post_json(client, {"description": "x"})
    assert r.status_code == 503
    assert js(r)["error"] == "unavailable"


def test_openapi_document_is_served(client: FlaskClient) -> None:
    r = client.get("/api/v1/openapi.yaml")
    assert r.status_code == 200
    assert r.mimetype == "application/yaml"
    assert b"/api/v1/bug-reports/{id}:" in r.data


def test_a_custom_value_too_long_is_refused_not_turned_into_a_number(
    client: FlaskClient, redis: Redis
) -> None:
    # 1,001 digits: too long for a string value, and not a JSON number either.
    r = post_json(client, {"description": "x", "custom": {"serial": "7" * 1001}})
    assert r.status_code == 422
    assert js(r)["problems"] == [
        {"path": "custom.serial", "message": "A text value has at most 1000 characters"}
    ]
    assert queued_reports(redis) == []
    # Values of every kind the document allows are kept as sent.
    custom = {"plan": "premium", "items": 2, "ratio": 0.5, "beta": True, "digits": "0012"}
    assert post_json(client, {"description": "x", "custom": custom}).status_code == 202
    [report] = queued_reports(redis)
    assert report.custom == {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in custom.items()
    }
    nested = post_json(client, {"description": "x", "custom": {"cart": {"items": 2}}})
    assert nested.status_code == 422
    assert js(nested)["problems"][0]["path"] == "custom.cart"


def test_the_status_names_what_happened_never_an_internal_address(
    client: FlaskClient, redis: Redis, worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any holder of the (extractable) app key reads the status: it once showed the
    # Zendesk API's URL while Zendesk was down.
    monkeypatch.setenv("ZENDESK_URL", "http://127.0.0.1:9")
    body = js(post_json(client, {"description": "The app crashes on checkout"}))
    run_jobs(redis, (TICKETS,))
    status = js(client.get(body["status_url"], headers=IOS))
    assert status["status"] == "delayed"
    assert status["reason"] == "Zendesk: ConnectionError talking to Zendesk; retrying"
    assert "127.0.0.1" not in json.dumps(status)
