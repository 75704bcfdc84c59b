"""Screenshots of every console page for docs/console.md, taken against a running `make run`.

    make run                                          # in one terminal
    .venv/bin/python docs/console_screenshots.py      # in another

Reads the hub's address from var/dev.json (what `feedback-hub dev` writes; or
FEEDBACK_HUB_DEV_STATE), files a
few reports with `feedback-hub simulate` (and makes one a dead letter by having the
Zendesk sandbox refuse it), signs in through the Slack sandbox's sign-in page as
Sam Support, and saves docs/console/<page>.png. Uses Debian's chromium
(/usr/bin/chromium) headless; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "console"
REPORTS = (
    "I was charged twice this month, please refund",
    "The app crashes on launch since the update",
    "Dark mode for the dashboard would be lovely",
    "Export button does nothing <b>on the reports page</b>",
)


def simulate(*args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "feedback-hub"), "simulate", *args],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def seed(state: dict[str, str]) -> None:
    """Reports to show, and one dead letter (Zendesk refuses it, then is fixed)."""
    for text in REPORTS[:-1]:
        simulate("feedback", text)
    zendesk = state.get("zendesk_sandbox_url")
    if zendesk:
        requests.post(
            f"{zendesk}/__sandbox/faults", json={"error_rate": 1.0, "error_status": 422}, timeout=10
        )
        simulate("feedback", REPORTS[-1])
        time.sleep(5)  # a script, not a test: give the worker time to refuse it
        requests.post(f"{zendesk}/__sandbox/reset", json={}, timeout=10)
    time.sleep(3)


def shoot(page: Page, url: str, name: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"docs/console/{name}.png")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from integrations.sandbox.devstate import state_path
    from tests.browser import chromium

    state = json.loads(state_path().read_text())
    hub = state["hub_url"]
    seed(state)
    OUT.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{hub}/admin/")
        page.screenshot(path=str(OUT / "signin.png"))
        print("docs/console/signin.png")
        page.get_by_role("button", name=re.compile("Sam Support")).click()
        page.wait_for_url(re.compile("/admin/reports"))
        shoot(page, f"{hub}/admin/reports", "reports")
        page.get_by_role("link", name=re.compile("charged twice")).first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / "report.png"), full_page=True)
        print("docs/console/report.png")
        shoot(page, f"{hub}/admin/dead-letters", "dead-letters")
        page.goto(f"{hub}/admin/rules")
        page.fill("textarea[name=text]", "My invoice is wrong and I want a refund")
        page.get_by_role("button", name="Where would it go?").click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / "rules.png"), full_page=True)
        print("docs/console/rules.png")
        shoot(page, f"{hub}/admin/issues", "issues")
        shoot(page, f"{hub}/admin/tags", "tags")
        shoot(page, f"{hub}/admin/health", "health")


if __name__ == "__main__":
    main()
