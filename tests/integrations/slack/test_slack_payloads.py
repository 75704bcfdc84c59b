"""Form bodies read exactly as the standard library reads them."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import parse_qs, quote_plus

import pytest

from integrations.errors import Rejected
from integrations.slack.payloads import parse_command, parse_form
from tests import REPO_ROOT

FIXTURES = REPO_ROOT / "integrations" / "slack" / "fixtures"


def stdlib(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("slash_command__*.txt")), ids=str)
def test_slack_command_bodies_read_as_parse_qs_reads_them(fixture: Path) -> None:
    body = fixture.read_bytes().strip()
    assert parse_form(body) == stdlib(body)
    assert parse_command(body).command.startswith("/")


def test_random_bodies_read_as_parse_qs_reads_them() -> None:
    rng = random.Random(4)
    alphabet = ["a", "Z", "0", " ", "+", "%", "%2", "%41", "%e2%9c%93", "%ff", "=", "&", "é", "&&"]
    for _ in range(3000):
        body = "".join(rng.choices(alphabet, k=rng.randint(0, 24))).encode()
        assert parse_form(body) == stdlib(body), body


def test_encoded_text_comes_back_whole() -> None:
    text = "Export ✓ fails: 100% of the time & more = worse\n#export"
    body = f"command=%2Ffeedback&text={quote_plus(text)}&text=second".encode()
    assert parse_form(body) == {"command": "/feedback", "text": text}


def test_a_body_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        parse_form(b"text=\xff\xfe")
    assert caught.value.status == 400
    assert "UTF-8" in caught.value.reason
