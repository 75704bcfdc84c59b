"""The published OpenAPI document: up to date with the schema, and the API keeps to it.

Property-based: schemathesis generates requests from the document (valid and
invalid ones) and sends them to the Flask app in process (WSGI); no input may
cause a 5xx, and every answer must match what the document declares.
"""

from __future__ import annotations

import gc
import uuid
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
import yaml
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection
from schemathesis.config import SchemathesisConfig

from integrations.mobile.limits import Limits
from integrations.mobile.openapi import PATH, render
from tests.integrations.mobile.test_mobile_api import png

# The generated requests carry a valid app key; schemathesis also tries them without it.
# A report can be valid by the schema and still over a byte limit (a 500,000-character
# log of escaped characters is more than 1 MiB of JSON): 413 is a right answer to both.
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"appKey": {"bearer": "mobile-key-ios-0000"}}},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "429"]
            },
            "negative_data_rejection": {"expected-statuses": ["4xx"]},
        },
    }
)


def test_committed_openapi_yaml_is_up_to_date() -> None:
    assert PATH.read_text() == render(), (
        "integrations/mobile/openapi.yaml is stale: run `python -m integrations.mobile.openapi`"
    )


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Files are checked by content, which a JSON Schema cannot say: valid requests
# carry real files (refused ones are tested in test_mobile_api.py).
REAL_FILES = [png(), b"2024-05-02 INFO started\n", png(width=2, height=2)]


DOCUMENT = yaml.safe_load(PATH.read_text())


def body_is_valid(case: schemathesis.Case) -> bool:
    """Whether the document itself says the request body is valid.

    schemathesis's negative mode sometimes mutates data into other valid data: a value of
    `custom`, a string, turned into a boolean, which the same anyOf allows. A request
    whose body the document accepts may be accepted.
    """
    if not isinstance(case.body, dict) or case.media_type is None:
        return False
    operation = DOCUMENT["paths"][case.operation.path][case.method.lower()]
    schema = operation["requestBody"]["content"][case.media_type]["schema"]
    # A file is a string of any bytes to the document (format: binary): only their count
    # matters to it.
    body = {
        name: [""] * len(value) if name == "files" and isinstance(value, list) else value
        for name, value in case.body.items()
    }
    validator = jsonschema_rs.validator_for({**schema, "components": DOCUMENT["components"]})
    return bool(validator.is_valid(body))


def with_real_files(case: schemathesis.Case) -> schemathesis.Case:
    """The generated case, its random file bytes replaced by files the API accepts."""
    body: Any = case.body
    if isinstance(body, dict) and isinstance(body.get("files"), list):
        body["files"] = [REAL_FILES[i % len(REAL_FILES)] for i in range(len(body["files"]))]
    return case


# Fields a newer app might add: names the document does not have, any JSON values.
_KNOWN = set(DOCUMENT["components"]["schemas"]["BugReport"]["properties"])
UNKNOWN_FIELDS = st.dictionaries(
    st.from_regex(r"\A[a-z][a-z_]{0,20}\Z").filter(lambda name: name not in _KNOWN),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    ),
    min_size=1,
    max_size=3,
)


def with_unknown_fields(pair: tuple[schemathesis.Case, dict[str, Any]]) -> schemathesis.Case:
    """A valid report with fields the hub does not know added at its top level."""
    case, extra = pair
    body: Any = case.body
    report = body.get("report") if case.media_type == "multipart/form-data" else body
    if isinstance(report, dict):
        report.update(extra)
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())  # a new report, not a replay
    return case


# Werkzeug's test client (schemathesis's WSGI transport) spools bodies over 500 kB to a
# temporary file it never closes; that is the client's leak, not the app's.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
# The document's own route takes no input, so there is nothing invalid to send it.
@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [
        ("/api/v1/bug-reports", "POST", POSITIVE),
        ("/api/v1/bug-reports", "POST", NEGATIVE),
        ("/api/v1/bug-reports", "POST", "unknown fields"),
        ("/api/v1/bug-reports/{id}", "GET", POSITIVE),
        ("/api/v1/bug-reports/{id}", "GET", NEGATIVE),
        ("/api/v1/openapi.yaml", "GET", POSITIVE),
    ],
    ids=str,
)
def test_api_keeps_to_its_openapi_document(
    app: Flask, path: str, method: str, mode: GenerationMode | str
) -> None:
    # Generated requests come fast; the rate limit is tested on its own.
    app.extensions["mobile_limits"] = Limits(rate_per_minute=1_000_000)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.yaml", app, config=CONFIG)
    operation = schema[path][method]

    # The schemathesis pytest plugin's fixture loader does not work with pytest 9,
    # so the Hypothesis test is built here, around the app of this test.
    unknown = mode == "unknown fields"  # positive cases, plus fields the hub does not know
    generation = mode if isinstance(mode, GenerationMode) else POSITIVE
    strategy = operation.as_strategy(generation_mode=generation)
    if mode is POSITIVE or unknown:
        strategy = strategy.map(with_real_files)
    if unknown:
        # A newer app's report: accepted, its unknown fields named in `warnings`.
        strategy = st.tuples(strategy, UNKNOWN_FIELDS).map(with_unknown_fields)

    @given(case=strategy)
    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call()
        assert response.status_code < 500, response.text
        if unknown:
            assert response.status_code == 202, response.text
            assert response.json()["warnings"], response.text
        if mode is NEGATIVE and response.status_code < 300 and body_is_valid(case):
            case.validate_response(response, excluded_checks=[negative_data_rejection])
        else:
            case.validate_response(response)

    check()
    gc.collect()  # let the client's leaked files go while this test's filters apply
