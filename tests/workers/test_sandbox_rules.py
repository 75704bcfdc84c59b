"""The development sandboxes get what the rules name, and follow the file as it changes."""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis

from integrations.sandbox import SlackSandbox, ZendeskSandbox
from integrations.slack.api import MISSING_CHANNEL_KEY
from integrations.zendesk.gateway import GROUPS_FRESH_KEY, GROUPS_KEY
from rules.loader import load_rules
from workers.procs import ROOT
from workers.sandbox_rules import SandboxFollower, seed_sandbox, seed_slack

RULES = """\
groups: [Support, Billing]
custom_fields: {platform: 360001000002}
intake:
  - name: Invoices to Billing
    when: {text: {contains: [invoice]}}
    then:
      - set_group: Billing
      - set_assignee: lee@example.com
      - set_custom_field: {360009999999: yes}
"""


def group_names(sandbox: ZendeskSandbox) -> set[str]:
    return {str(g["name"]) for g in sandbox.groups.values()}


def test_the_default_rules_groups_and_fields_are_added_once(
    zendesk_sandbox: ZendeskSandbox,
) -> None:
    rules = load_rules(ROOT / "rules" / "default.yml")
    added = seed_sandbox(zendesk_sandbox, rules)

    assert group_names(zendesk_sandbox) == {
        "Support",
        "Engineering",
        "Billing",
        "Mobile",
        "Product",
        "Security",
        "Accounts",
    }
    assert "group Support" not in added  # the sandbox had it
    titles = {f["id"]: f["title"] for f in zendesk_sandbox.ticket_fields.values()}
    assert titles == {360001000001: "app_version", 360001000002: "platform"}
    assert seed_sandbox(zendesk_sandbox, rules) == []


def test_assignees_become_agents_and_numbered_fields_exist(
    zendesk_sandbox: ZendeskSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    added = seed_sandbox(zendesk_sandbox, load_rules(path))

    assert added == [
        "group Billing",
        "custom field platform (360001000002)",
        "agent lee@example.com",
        "custom field Field 360009999999 (360009999999)",
    ]
    lee = zendesk_sandbox.user_by_email("lee@example.com")
    assert lee is not None and lee["role"] == "agent"


def test_a_changed_file_adds_its_new_group_and_clears_the_workers_group_cache(
    zendesk_sandbox: ZendeskSandbox, redis: Redis, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    said: list[str] = []
    follower = SandboxFollower(
        zendesk_sandbox, str(path), redis=redis, say=said.append, interval=0.05
    )
    follower.start()
    try:
        assert "Billing" in group_names(zendesk_sandbox)
        redis.set(GROUPS_KEY, "{}")
        redis.set(GROUPS_FRESH_KEY, 1)

        path.write_text(RULES.replace("Billing", "Payments"))
        deadline = time.monotonic() + 10
        while "Payments" not in group_names(zendesk_sandbox) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop()

    assert "Payments" in group_names(zendesk_sandbox)
    assert "Billing" in group_names(zendesk_sandbox)  # nothing is removed
    assert redis.exists(GROUPS_KEY, GROUPS_FRESH_KEY) == 0
    assert said[-1] == f"Zendesk sandbox: added what {path} names: group Payments"


# ---------------------------------------------------------------- Slack channels

NOTIFY_RULES = """\
intake:
  - name: Invoices tell billing
    when: {text: {contains: [invoice]}}
    then:
      - notify: {channel: "#billing-desk", text: "{subject}"}
      - escalate: {channel: C0ENGBILLING}
response_time:
  - name: Everything within a day
    first_reply: 24h
    nudge: {at: 50%, channel: "#support-triage"}
    breach: {channel: "support-escalations"}
"""


def channels(sandbox: SlackSandbox) -> set[str]:
    with sandbox.lock:
        return set(sandbox.channels)


def test_the_default_rules_channels_are_created_once() -> None:
    slack = SlackSandbox()  # not served: its channels are all this needs
    rules = load_rules(ROOT / "rules" / "default.yml")

    assert seed_slack(slack, rules) == ["#mobile-eng", "#eng-oncall", "#support-oncall"]
    assert channels(slack) == {"mobile-eng", "eng-oncall", "support-oncall"}
    assert seed_slack(slack, rules) == []


def test_settings_and_rules_channels_at_start_and_a_changed_file_s_new_channel(
    redis: Redis, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(NOTIFY_RULES)
    slack = SlackSandbox()
    said: list[str] = []
    follower = SandboxFollower(
        None,
        str(path),
        slack=slack,
        channels={"SLACK_OPS_CHANNEL": "#hub-ops", "DIGEST_CHANNEL": "C0DIGEST"},
        redis=redis,
        say=said.append,
        interval=0.05,
    )
    follower.start()
    try:
        # Names, with or without "#", are made; a channel named by id is left alone.
        assert channels(slack) == {
            "hub-ops",
            "billing-desk",
            "support-triage",
            "support-escalations",
        }
        assert said == [
            "Slack sandbox: created the channels the settings post to: "
            "#hub-ops (SLACK_OPS_CHANNEL)",
            f"Slack sandbox: created the channels {path} posts to: "
            "#billing-desk, #support-triage, #support-escalations",
        ]
        # A worker posted to the new channel before it was made: it remembers it missing.
        redis.set(MISSING_CHANNEL_KEY.format(name="billing-team"), 1)

        path.write_text(NOTIFY_RULES.replace("#billing-desk", "#billing-team"))
        deadline = time.monotonic() + 10
        while "billing-team" not in channels(slack) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop()

    assert "billing-team" in channels(slack)
    assert "billing-desk" in channels(slack)  # nothing is removed
    assert said[-1] == f"Slack sandbox: created the channels {path} posts to: #billing-team"
    assert not redis.exists(MISSING_CHANNEL_KEY.format(name="billing-team"))
