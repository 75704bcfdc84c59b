"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser import chromium


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless (tests/browser.py)."""
    with chromium() as running:
        yield running
