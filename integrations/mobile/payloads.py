"""What a mobile bug report may contain, written once: it validates requests and is the OpenAPI.

`openapi.yaml` is generated from these models (`python -m integrations.mobile.openapi`);
a test fails when the committed file is out of date.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# Whitespace spelled out, because `\s` differs between regex engines (ECMA-262, which
# JSON Schema names, has U+FEFF but not U+0085; pydantic's Rust regex the other way round).
_SPACE = r"\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# A JSON Schema `pattern` matches anywhere: this one means "not only whitespace".
_NOT_BLANK = f"[^{_SPACE}]"
_EMAIL = f"^[^@{_SPACE}]+@[^@{_SPACE}]+\\.[^@{_SPACE}]+$"

Short = Annotated[str, Field(max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=80, pattern=_NOT_BLANK)]
CustomKey = Annotated[str, Field(min_length=1, max_length=64)]
CUSTOM_STRING_MAX = 1000


def _custom_value(value: object) -> str | int | float | bool:
    """A `custom` value as sent: a string (up to CUSTOM_STRING_MAX), a number or a boolean.

    Checked by hand rather than as a union of types: pydantic's lax union took a string too
    long for its first branch as a number ("000...0", 1,001 characters, was kept as 0), and
    a refusal listed one problem per branch.
    """
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > CUSTOM_STRING_MAX:
            raise PydanticCustomError(
                "custom_value", f"A text value has at most {CUSTOM_STRING_MAX} characters"
            )
        return value
    raise PydanticCustomError(
        "custom_value",
        f"Input should be a text of at most {CUSTOM_STRING_MAX} characters, a number or a boolean",
    )


CustomValue = Annotated[
    str | int | float | bool,
    PlainValidator(_custom_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": CUSTOM_STRING_MAX},
                {"type": "integer"},
                {"type": "number"},
                {"type": "boolean"},
            ]
        }
    ),
]

Severity = Literal["low", "normal", "high", "critical"]
State = Literal["queued", "filed", "delayed", "failed"]


# A field the hub does not know (a newer app's) is kept on the ticket under "Other
# fields", each value cut to this many characters, at most OTHER_FIELDS of them.
OTHER_VALUE_CHARS = 500
OTHER_FIELDS = 50


class _Strict(BaseModel):
    # Known fields are validated strictly (a wrong type is a 422 naming its path). An
    # unknown field is accepted, not refused: a newer app version adds fields, and a
    # refusal would lose every report it sends. It is kept (`other_fields`) and named
    # in the answer's `warnings`, so a typo is still seen.
    model_config = ConfigDict(extra="allow")


class Reporter(_Strict):
    """Who reports: an email makes them the ticket's requester; an id alone is kept too."""

    email: str | None = Field(None, max_length=254, pattern=_EMAIL, examples=["ana@example.com"])
    name: Short | None = Field(None, examples=["Ana Lima"])
    id: Short | None = Field(
        None, description="The app's stable user id; used when there is no email."
    )


class App(_Strict):
    """The app that sends the report (the hub's app is the one the API key belongs to)."""

    id: Short | None = Field(None, description="Bundle or package id.", examples=["com.acme.shop"])
    version: str | None = Field(None, max_length=50, examples=["5.2.1"])
    build: str | None = Field(None, max_length=50, examples=["742"])


class Device(_Strict):
    """The device and system the report comes from."""

    model: Short | None = Field(None, examples=["iPhone15,2"])
    manufacturer: Short | None = Field(None, examples=["Apple"])
    os: str | None = Field(None, max_length=50, examples=["iOS"])
    os_version: str | None = Field(None, max_length=50, examples=["17.4.1"])
    locale: str | None = Field(None, max_length=35, examples=["pt-BR"])
    timezone: str | None = Field(None, max_length=64, examples=["America/Sao_Paulo"])


class Crash(_Strict):
    """A crash or exception, with the stack as the crash reporter wrote it."""

    type: Short | None = Field(None, examples=["NSInvalidArgumentException"])
    message: str | None = Field(None, max_length=2000)
    stack: str | None = Field(None, max_length=200_000)


class BugReport(_Strict):
    """A bug report from the app's "Report a problem" screen."""

    description: str = Field(
        min_length=1,
        max_length=20_000,
        pattern=_NOT_BLANK,
        description="What happened, in the reporter's words.",
        examples=["The pay button does nothing after I change the address."],
    )
    title: Short | None = Field(None, description="Defaults to the description's first line.")
    reporter: Reporter | None = None
    app: App | None = None
    device: Device | None = None
    category: str | None = Field(None, max_length=50, examples=["checkout"])
    severity: Severity | None = None
    steps_to_reproduce: str | None = Field(None, max_length=10_000)
    logs: str | None = Field(
        None,
        max_length=500_000,
        description="Recent log lines; the ticket shows the end, and long logs are attached whole.",
    )
    crash: Crash | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom: dict[CustomKey, CustomValue] = Field(
        default_factory=dict,
        max_length=50,
        description="Anything else, as key/values; routing rules can map them to ticket fields.",
    )


def other_fields(report: BugReport) -> dict[str, str]:
    """The fields of `report` the hub does not know, by dotted path, each value as text
    (JSON for anything but a string) cut to OTHER_VALUE_CHARS; at most OTHER_FIELDS."""
    found: dict[str, str] = {}
    parts: list[tuple[str, BaseModel | None]] = [
        ("", report),
        ("reporter.", report.reporter),
        ("app.", report.app),
        ("device.", report.device),
        ("crash.", report.crash),
    ]
    for prefix, model in parts:
        for name, value in ((model.model_extra or {}) if model is not None else {}).items():
            found[f"{prefix}{name}"] = _other_value(value)
    return dict(list(found.items())[:OTHER_FIELDS])


def unknown_field_count(report: BugReport) -> int:
    """How many unknown fields `report` has (some may be beyond OTHER_FIELDS)."""
    models = (report, report.reporter, report.app, report.device, report.crash)
    return sum(len(m.model_extra or {}) for m in models if m is not None)


def _other_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > OTHER_VALUE_CHARS:
        return text[: OTHER_VALUE_CHARS - 1] + "\u2026"
    return text


def warnings(report: BugReport) -> list[str]:
    """What the answer tells the app about fields it sent that the hub does not know."""
    kept = other_fields(report)
    out = [f"unknown field {path!r} was kept on the ticket under 'Other fields'" for path in kept]
    dropped = unknown_field_count(report) - len(kept)
    if dropped > 0:
        out.append(f"{dropped} more unknown fields were not kept (at most {OTHER_FIELDS})")
    return out


class BugReportStatus(BaseModel):
    """Where a report stands: queued, filed (with the ticket), delayed (retrying) or failed."""

    id: str
    status: State
    status_url: str
    ticket_id: int | None = None
    ticket_url: str | None = None
    reason: str | None = None
    warnings: list[str] | None = Field(
        None,
        description=(
            "Present when the report had fields this hub does not know: they were kept "
            "on the ticket under 'Other fields', not refused."
        ),
    )


class Problem(BaseModel):
    """One thing wrong with a request: where (a dotted path) and what."""

    path: str
    message: str


class Error(BaseModel):
    """Every error answer: a code, a sentence, and for invalid reports each problem."""

    error: str
    message: str
    problems: list[Problem] | None = None


def problems(exc: ValidationError) -> list[Problem]:
    """Pydantic's errors as path + message, without echoing the input back."""
    out = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "(report)"
        out.append(Problem(path=path, message=error["msg"]))
    return out
