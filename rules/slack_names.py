"""What a rules file names in Slack: the channels it posts to, and where it names them.

Notify actions, escalate channels and response_time nudge/breach channels are internal
posts, so the wall (integrations/slack/api.py) refuses a channel name the hub cannot
resolve: each one must exist in the workspace with the bot in it. The development Slack
sandbox is given them from this list (workers/sandbox_rules.py), as the Zendesk sandbox
is given what rules/zendesk_names.py lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.model import Escalate, Notify, RuleSet, Where


@dataclass(frozen=True)
class NamedChannel:
    """One Slack channel the rules post to, at one place in the file."""

    # As the file writes it: "#eng-oncall", "eng-oncall" or an id ("C0123ABC").
    channel: str
    where: Where
    # What names it: 'intake rule 2 "Crashes go to mobile"', 'response_time 1 "Paid plans"'.
    named_by: str
    # "notify", "escalate", "nudge" or "breach".
    use: str


def channels_in(ruleset: RuleSet) -> list[NamedChannel]:
    """Every channel the rules post to, in file order (a channel named twice is listed twice)."""
    out: list[NamedChannel] = []
    for rule in (*ruleset.intake, *ruleset.ticket_event):
        for action in rule.then:
            at = action.where or rule.where or Where(ruleset.path, 1, 1)
            value = action.value
            if isinstance(value, Notify):
                out.append(NamedChannel(value.channel, at, str(rule), "notify"))
            elif isinstance(value, Escalate) and value.channel:
                out.append(NamedChannel(value.channel, at, str(rule), "escalate"))
    for target in ruleset.response_time:
        at = target.where or Where(ruleset.path, 1, 1)
        if target.nudge_channel:
            out.append(NamedChannel(target.nudge_channel, at, str(target), "nudge"))
        if target.breach_channel:
            out.append(NamedChannel(target.breach_channel, at, str(target), "breach"))
    return out


def channel_names(ruleset: RuleSet) -> list[str]:
    """The channels the rules post to, each once, as written, in file order."""
    return list(dict.fromkeys(named.channel for named in channels_in(ruleset)))
