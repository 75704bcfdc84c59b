"""End to end, the join decision through the Procfile's gunicorn and worker: two in-app
reports of one crash (the same signature from two builds) join one issue; two reports that
only sound alike ("button does nothing") stay two issues, the second suggesting the first
on its #mobile-eng card with the Same issue / Not related buttons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.sandbox.slack import Message
from integrations.slack.cards import NOT_RELATED_ACTION, SAME_ISSUE_ACTION
from tests.e2e.test_e2e_grouping import CRASHES, filed_ticket, post_report
from tests.running_hub import RunningHub, running_hub
from workers.grouping import group_of

pytestmark = pytest.mark.e2e

CHANNEL = "#mobile-eng"


def sounds_alike(title: str, description: str, email: str) -> dict[str, object]:
    """An iOS report without a crash payload ("freezes" makes it a crash for the rules)."""
    return {
        "title": title,
        "description": description,
        "reporter": {"email": email, "name": email.split("@")[0]},
        "app": {"id": "com.acme.shop", "version": "5.2.1", "build": "742"},
        "device": {"model": "iPhone15,2", "manufacturer": "Apple", "os": "iOS"},
    }


EXPORT = sounds_alike(
    "The CSV export button does nothing when I have more than 10k rows",
    "The app freezes for a moment and no file is exported.",
    "eve@example.com",
)
CHECKOUT = sounds_alike(
    "The checkout button does nothing after I add a coupon",
    "The app freezes for a second and the order is not placed.",
    "finn@example.com",
)


@pytest.fixture
def hub(
    sandbox_env: dict[str, str],
    zendesk_sandbox: ZendeskSandbox,
    groups: dict[str, int],
    redis: Redis,
    repo_root: Path,
    tmp_path: Path,
) -> Iterator[RunningHub]:
    with running_hub(sandbox_env, redis, repo_root, tmp_path) as hub:
        yield hub


def card_of(slack: SlackSandbox, ticket: int) -> Message | None:
    found = [
        m for m in slack.channel_messages(CHANNEL) if not m.thread_ts and f"#{ticket} " in m.text
    ]
    return found[0] if found else None


def test_the_same_crash_joins_and_alike_words_are_only_suggested(
    hub: RunningHub, redis: Redis, slack_sandbox: SlackSandbox
) -> None:
    crashes = [filed_ticket(hub, post_report(hub, r, f"e2e-join-{n}")) for n, r in
               enumerate(CRASHES[:2])]  # fmt: skip
    export = filed_ticket(hub, post_report(hub, EXPORT, "e2e-export"))
    checkout = filed_ticket(hub, post_report(hub, CHECKOUT, "e2e-checkout"))

    def checkout_card() -> Message | None:
        card = card_of(slack_sandbox, checkout)
        return card if card is not None and "Possibly the same as" in str(card.blocks) else None

    card = hub.eventually(checkout_card, "the checkout card with its suggestion", 90)
    hub.settled()

    # The same crash from two builds: one issue, one card counting two reporters.
    assert group_of(redis, crashes[1]) == group_of(redis, crashes[0])
    crash_card = card_of(slack_sandbox, crashes[0])
    assert crash_card is not None and "2 reporters" in crash_card.text
    assert card_of(slack_sandbox, crashes[1]) is None

    # Alike words only: two issues, two cards; the second suggests the first.
    assert group_of(redis, checkout) != group_of(redis, export)
    assert card_of(slack_sandbox, export) is not None
    first = card.blocks[
        next(i for i, b in enumerate(card.blocks) if "Possibly the same as" in str(b))
    ]["text"]["text"]
    assert f"|#{export}>: The CSV export button does nothing when I have more than 10k rows" in (
        first
    )
    actions = [
        (e["action_id"], e["value"])
        for b in card.blocks
        if b["type"] == "actions" and b["block_id"] == f"suggest:{checkout}:{export}"
        for e in b["elements"]
    ]
    assert actions == [
        (SAME_ISSUE_ACTION, f"{checkout}:{export}"),
        (NOT_RELATED_ACTION, f"{checkout}:{export}"),
    ]
