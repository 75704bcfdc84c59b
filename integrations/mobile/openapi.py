"""The OpenAPI document of the mobile API, generated from the pydantic models in `schema`.

Regenerate the committed file after changing the schema or the limits:

    .venv/bin/python -m integrations.mobile.openapi
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from integrations.mobile.idempotency import KEY_PATTERN
from integrations.mobile.limits import Limits, size_text
from integrations.mobile.payloads import BugReport, BugReportStatus, Error
from integrations.mobile.uploads import ACCEPTED

PATH = Path(__file__).with_name("openapi.yaml")
_REF = "#/components/schemas/{model}"


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def document(limits: Limits | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict."""
    lim = limits or Limits()
    _, top = models_json_schema(
        [
            (BugReport, "validation"),
            (BugReportStatus, "serialization"),
            (Error, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas = top["$defs"]
    status = {
        "description": "Where the report stands",
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="BugReportStatus")}}},
    }
    unauthorized = _error(
        "No API key, or not one of this hub's",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedback-hub mobile bug-report API",
            "version": "1",
            "description": (
                'Bug reports from the app\'s "Report a problem" screen become Zendesk tickets, '
                "with screenshots and logs attached. See docs/mobile.md."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "appKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The app's key from MOBILE_API_KEYS.",
                }
            },
        },
        "paths": {
            "/api/v1/bug-reports": {
                "post": {
                    "operationId": "fileBugReport",
                    "summary": "File a bug report",
                    "security": [{"appKey": []}],
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": (
                                "Names this report: a retry with the same key and content "
                                "returns the same report; other content with it is a 409."
                            ),
                            "schema": {"type": "string", "pattern": KEY_PATTERN.pattern},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"JSON (at most {size_text(lim.report_bytes)}), or multipart with a "
                            f"`report` JSON part and up to {lim.files} files of at most "
                            f"{size_text(lim.file_bytes)} each ({size_text(lim.body_bytes)} in "
                            f"all). Files are checked by content: {ACCEPTED}."
                        ),
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="BugReport")}
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["report"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "report": {"$ref": _REF.format(model="BugReport")},
                                        "files": {
                                            "type": "array",
                                            "maxItems": lim.files,
                                            "items": {"type": "string", "format": "binary"},
                                        },
                                    },
                                },
                                "encoding": {"report": {"contentType": "application/json"}},
                            },
                        },
                    },
                    "responses": {
                        "202": {
                            **status,
                            "description": "Accepted: queued to become a ticket",
                            "headers": {
                                "Location": {"schema": {"type": "string"}},
                                "Idempotent-Replayed": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _error("Malformed JSON or Idempotency-Key"),
                        "401": unauthorized,
                        "409": _error("The Idempotency-Key was used for a different report"),
                        "413": _error("Too large: the body, the report, a file, or too many files"),
                        "415": _error("Not JSON or multipart, or a file of a type not accepted"),
                        "422": _error("The report does not match the schema: each problem listed"),
                        "429": _error(
                            f"More than {lim.rate_per_minute} reports a minute from this app "
                            "(MOBILE_RATE_LIMIT)",
                            {"Retry-After": {"schema": {"type": "integer"}}},
                        ),
                        "503": _error("The hub cannot store reports right now: retry later"),
                    },
                }
            },
            "/api/v1/bug-reports/{id}": {
                "get": {
                    "operationId": "getBugReport",
                    "summary": "Where a report stands: queued, filed, delayed or failed",
                    "security": [{"appKey": []}],
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": status,
                        "401": unauthorized,
                        "404": _error("No such report for this app"),
                        "503": _error("The hub cannot read report states right now"),
                    },
                }
            },
            "/api/v1/openapi.yaml": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document",
                            "content": {"application/yaml": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }


def render(limits: Limits | None = None) -> str:
    """The document as the YAML text committed in openapi.yaml."""
    header = (
        "# Generated from integrations/mobile/payloads.py: python -m integrations.mobile.openapi\n"
    )
    return header + yaml.safe_dump(document(limits), sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    """Write openapi.yaml next to this module."""
    PATH.write_text(render())
    print(f"wrote {PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
