"""The Slack channels a rules file posts to, and where it names them (rules/slack_names.py)."""

from __future__ import annotations

from pathlib import Path

from rules.loader import load_rules
from rules.slack_names import channel_names, channels_in
from workers.procs import ROOT

RULES = """\
intake:
  - name: Crashes tell mobile
    when: {tags: {includes: [crash]}}
    then:
      - notify: {channel: "#mobile-eng", text: "{subject}"}
      - escalate: {channel: "#mobile-eng"}
      - escalate: true
ticket_event:
  - name: Urgent tells on-call
    when: {priority: urgent}
    then:
      - notify: {channel: C0ONCALL, text: "{subject}"}
response_time:
  - name: Within an hour
    first_reply: 1h
    nudge: {at: 50%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [late]}
"""


def test_notify_escalate_nudge_and_breach_channels_with_their_places(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    named = channels_in(load_rules(path))

    assert [(n.channel, n.use, n.where.line) for n in named] == [
        ("#mobile-eng", "notify", 5),
        ("#mobile-eng", "escalate", 6),
        ("C0ONCALL", "notify", 12),
        ("#support-triage", "nudge", 14),
        ("#support-escalations", "breach", 14),
    ]
    assert named[0].named_by == 'intake rule 1 "Crashes tell mobile"'
    assert named[3].named_by == 'response_time 1 "Within an hour"'


def test_the_default_rules_post_to_three_channels() -> None:
    rules = load_rules(ROOT / "rules" / "default.yml")
    assert channel_names(rules) == ["#mobile-eng", "#eng-oncall", "#support-oncall"]
