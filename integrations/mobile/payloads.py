"""What a mobile bug report may contain, written once: it validates requests and is the OpenAPI.

`openapi.yaml` is generated from these models (`python -m integrations.mobile.openapi`);
a test fails when the committed file is out of date.
"""

from __future__ import annotations

from typing import Annotated, Literal

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


class _Strict(BaseModel):
    # Unknown fields are refused (a typo would silently lose data); `custom` holds the rest.
    model_config = ConfigDict(extra="forbid")


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


class BugReportStatus(BaseModel):
    """Where a report stands: queued, filed (with the ticket), delayed (retrying) or failed."""

    id: str
    status: State
    status_url: str
    ticket_id: int | None = None
    ticket_url: str | None = None
    reason: str | None = None


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
