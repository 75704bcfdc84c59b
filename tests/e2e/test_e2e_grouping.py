"""End to end, related-issue grouping: three in-app reports of one iOS crash, posted to the
Procfile's gunicorn and worker over HTTP, become one Zendesk problem with three incidents and
one #mobile-eng message (and `feedback-hub related explain` says the crash signature joined
them); solving the problem in the sandbox (signed webhooks back to the hub) is heard in that
message's thread."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from redis import Redis

from app import cli
from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.slack import Message
from tests import REPO_ROOT
from tests.running_hub import RunningHub, running_hub
from workers.grouping import problem_opened_note, problem_solved_note

pytestmark = pytest.mark.e2e

APP_KEY = {"Authorization": "Bearer mobile-key-ios-0000"}
CHANNEL = "#mobile-eng"
FIXTURES = REPO_ROOT / "integrations" / "mobile" / "fixtures"
# The same Swift crash symbolicated from two builds: other addresses, offsets, line
# numbers and closure numbers, the same frames.
STACK_740 = (FIXTURES / "crash__ios_swift_build_740.txt").read_text()
STACK_742 = (FIXTURES / "crash__ios_swift_build_742.txt").read_text()


def rebased(stack: str, slide: int, lines: int) -> str:
    """The stack as another run writes it: addresses slid (ASLR), source lines moved."""
    stack = re.sub(r"0x[0-9a-f]{16}", lambda m: f"0x{int(m[0], 16) + slide:016x}", stack)
    return re.sub(r"\.swift:(\d+)\)", lambda m: f".swift:{int(m[1]) + lines})", stack)


def crash_report(name: str, email: str, title: str, description: str, stack: str) -> Any:
    """An iOS app's report of the Pay crash (rules/default.yml tells #mobile-eng of iOS crashes)."""
    return {
        "title": title,
        "description": description,
        "reporter": {"email": email, "name": name},
        "app": {"id": "com.acme.shop", "version": "5.2.1", "build": "742"},
        "device": {"model": "iPhone15,2", "manufacturer": "Apple", "os": "iOS"},
        "crash": {
            "type": "EXC_BREAKPOINT (SIGTRAP)",
            "message": "Fatal error: Unexpectedly found nil while unwrapping an Optional value",
            "stack": stack,
        },
    }


CRASHES = [
    crash_report(
        "Ana Lima",
        "ana@example.com",
        "App crashes when I tap Pay",
        "I changed the delivery address, went back to the cart and tapped Pay. The app crashed.",
        STACK_740,
    ),
    crash_report(
        "Bo Chen",
        "bo@example.com",
        "Checkout closes the app",
        "Trying to buy two shirts, the whole thing quit on me at the last step.",
        STACK_742,
    ),
    crash_report(
        "Cleo Diaz",
        "cleo@example.com",
        "Can't complete my order",
        "Every time I try to finish the purchase it shuts down and I'm back on my home screen.",
        rebased(STACK_742, slide=0x2C000, lines=3),
    ),
]
BILLING_QUESTION = {
    "title": "Invoice shows the wrong currency",
    "description": "My March invoice is in dollars but my account is in euros. Can you fix it?",
    "reporter": {"email": "dev@example.com", "name": "Dev Patel"},
    "app": {"id": "com.acme.shop", "version": "5.2.1", "build": "742"},
    "device": {"model": "iPhone15,2", "manufacturer": "Apple", "os": "iOS"},
    "category": "billing",
}


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: dict[str, int],
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
) -> Iterator[RunningHub]:
    """The Procfile's web and worker; the Zendesk sandbox's webhook targets the running web."""
    with running_hub(sandbox_env, redis, repo_root, tmp_path) as hub:
        zendesk_sandbox.set_webhook_target(
            f"{hub.url}/zendesk/webhook", sandbox_env["ZENDESK_WEBHOOK_SECRET"]
        )
        yield hub


def post_report(hub: RunningHub, report: dict[str, Any], key: str) -> str:
    """POST a report as the app does; the status URL it is answered with."""
    response = requests.post(
        f"{hub.url}/api/v1/bug-reports",
        headers={**APP_KEY, "Idempotency-Key": key},
        json=report,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return hub.url + response.json()["status_url"]


def filed_ticket(hub: RunningHub, status_url: str) -> int:
    """The ticket id, once the status endpoint says the report is filed."""

    def filed() -> int | None:
        status = requests.get(status_url, headers=APP_KEY, timeout=10).json()
        return int(status["ticket_id"]) if status["status"] == "filed" else None

    return hub.eventually(filed, f"{status_url} said filed", timeout=90)


def explain(hub: RunningHub, ticket: int) -> dict[str, str]:
    """`feedback-hub related explain TICKET` on the hub's Redis: its group line, and the
    signals line of each related ticket (by id)."""
    result = CliRunner().invoke(
        cli, ["related", "explain", str(ticket)], env={"REDIS_URL": hub.env["REDIS_URL"]}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    found = {"group": lines[1]}
    related = None
    for line in lines[2:]:
        if match := re.match(r"  (\d+)  score ", line):
            related = match[1]
            found[related] = ""
        elif related and line.strip().startswith("signals: "):
            found[related] = line.strip()
    return found


def problems(zendesk: ZendeskSandbox) -> list[dict[str, Any]]:
    return [t for t in list(zendesk.tickets.values()) if t["type"] == "problem"]


def top_level(slack: SlackSandbox) -> list[Message]:
    return [m for m in slack.channel_messages(CHANNEL) if not m.thread_ts]


def thread(slack: SlackSandbox, ts: str) -> list[str]:
    return [m.text for m in slack.channel_messages(CHANNEL) if m.thread_ts == ts]


def test_three_reports_of_one_crash_are_one_problem_and_one_message_until_solved(
    hub: RunningHub,
    zendesk_sandbox: ZendeskSandbox,
    slack_sandbox: SlackSandbox,
    groups: dict[str, int],
) -> None:
    # A burst, as when a bad release reaches many phones: the worker takes them as they come.
    urls = [post_report(hub, report, f"e2e-crash-{n}") for n, report in enumerate(CRASHES, 1)]
    billing_url = post_report(hub, BILLING_QUESTION, "e2e-billing-1")
    reports = [filed_ticket(hub, url) for url in urls]
    billing = filed_ticket(hub, billing_url)

    # Zendesk: one problem ticket, the three reports its incidents.
    def linked() -> dict[str, Any] | None:
        found = problems(zendesk_sandbox)
        if len(found) != 1:
            return None
        pid = found[0]["id"]
        return (
            found[0]
            if all(zendesk_sandbox.tickets[t]["problem_id"] == pid for t in reports)
            else None
        )

    problem = hub.eventually(linked, "one problem ticket with the three reports linked", 90)
    pid = problem["id"]
    assert problem["subject"] == "App crashes when I tap Pay"
    for tid in reports:
        assert zendesk_sandbox.tickets[tid]["type"] == "incident"
        assert "crash" in zendesk_sandbox.tickets[tid]["tags"]

    # Slack: one message, now the problem's, showing three reporters; a reply per joiner.
    def card_of_three() -> Message | None:
        cards = top_level(slack_sandbox)
        if len(cards) == 1 and f"#{pid} " in cards[0].text and "3 reporters" in cards[0].text:
            return cards[0]
        return None

    card = hub.eventually(card_of_three, f"{CHANNEL} showed problem #{pid} with 3 reporters", 90)
    opened = problem_opened_note(pid, f"{zendesk_sandbox.url}/agent/tickets/{pid}", 3)
    hub.eventually(lambda: opened in thread(slack_sandbox, card.ts), "the problem was said", 90)
    hub.settled()

    # The billing question stayed on its own (routed to Billing), no incident, no message.
    question = zendesk_sandbox.tickets[billing]
    assert question["type"] != "incident" and question["problem_id"] is None
    assert question["group_id"] == groups["Billing"]
    assert len(problems(zendesk_sandbox)) == 1

    channel_id = slack_sandbox.channel_id(CHANNEL)
    posts = [
        c
        for c in slack_sandbox.calls("chat.postMessage")
        if slack_sandbox.channel_id(c.args["channel"]) == channel_id and not c.args.get("thread_ts")
    ]
    assert len(posts) == 1
    [card] = top_level(slack_sandbox)
    assert card.text.startswith(f"[new] #{pid} App crashes when I tap Pay")
    assert "3 reporters" in card.text
    replies = thread(slack_sandbox, card.ts)
    joined = [r for r in replies if r.startswith(":heavy_plus_sign: Another report")]
    assert sorted(re.findall(r"\|#(\d+)>", "".join(joined))) == sorted(map(str, reports[1:]))
    assert replies.count(opened) == 1

    # What an operator asking why sees: the same crash, whatever the build, joined them.
    why = explain(hub, reports[2])
    assert why["group"] == f"group {explain(hub, reports[0])['group'].split()[1]} (3 reports)"
    for tid in reports[:2]:
        assert "same crash signature" in why[str(tid)], why
    assert explain(hub, billing)["group"] == f"group g{billing} (1 report)"

    # An agent solves the problem: Zendesk solves its incidents, and its webhooks reach the hub.
    deliveries = zendesk_sandbox.agent_solve(pid, "Fixed in 5.2.2, please update.")
    assert deliveries and {d.status for d in deliveries} == {200}, hub.log_tail()
    assert {zendesk_sandbox.tickets[t]["status"] for t in reports} == {"solved"}

    solved = problem_solved_note(pid)
    hub.eventually(lambda: solved in thread(slack_sandbox, card.ts), "the thread heard solved", 90)
    hub.eventually(
        lambda: top_level(slack_sandbox)[0].text.startswith(f"[solved] #{pid} "),
        "the message shows the problem solved",
        90,
    )
    hub.settled()
    assert thread(slack_sandbox, card.ts).count(solved) == 1
    assert len(top_level(slack_sandbox)) == 1
    assert zendesk_sandbox.tickets[billing]["status"] not in ("solved", "closed")
