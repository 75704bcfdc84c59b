"""The weekly tag digest's wording: one mrkdwn message, readable in Slack and in e-mail copies.

Subjects come from reports and are escaped (escape_mrkdwn); no reporter's name or e-mail
is ever part of the digest, only ticket links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from integrations.slack.mrkdwn import escape_mrkdwn


@dataclass(frozen=True)
class ExampleLine:
    """A report under a tag: its ticket link and subject."""

    ticket: int
    url: str
    subject: str


@dataclass(frozen=True)
class TagLine:
    """One tag in the digest: this week's count, its sparkline, and for a mover why."""

    tag: str
    count: int
    spark: str = ""
    baseline: float | None = None
    p_value: float | None = None
    examples: tuple[ExampleLine, ...] = ()


@dataclass(frozen=True)
class Digest:
    """What the weekly digest says about one ISO week."""

    week: str
    start: datetime
    reports: int
    untagged: int
    weeks: int
    top: tuple[TagLine, ...] = ()
    movers: tuple[TagLine, ...] = ()
    new: tuple[TagLine, ...] = ()
    suggestions: tuple[tuple[str, int], ...] = ()
    retire: tuple[str, ...] = ()
    retire_note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _pct(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "0%"


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return f"p={p:.0e}" if p < 0.001 else f"p={p:.3f}"


def _examples(line: TagLine) -> list[str]:
    return [f"      <{e.url}|#{e.ticket}> {escape_mrkdwn(e.subject)}" for e in line.examples]


def render(d: Digest) -> str:
    """The digest as one mrkdwn text (chat.postMessage `text`)."""
    end = d.start + timedelta(days=6)
    out = [
        f"*Tag digest, week {d.week}* ({d.start:%a %d %b} - {end:%a %d %b %Y}, UTC)",
        f"{d.reports} report(s); the taxonomy left {d.untagged} untagged "
        f"({_pct(d.untagged, d.reports)}).",
    ]
    out += ["", f"*Top tags* (reports this week; the line: the last {d.weeks} weeks)"]
    out += [f"• `{t.tag}` {t.count}  {t.spark}" for t in d.top] or ["• none this week"]
    out += [
        "",
        "*Movers* (this week against the mean of the weeks before; "
        "Poisson tail probability below 0.01)",
    ]
    if not d.movers:
        out.append("• none this week")
    for m in d.movers:
        usual = f"usually {m.baseline:.1f}" if m.baseline is not None else ""
        out.append(f"• `{m.tag}` {m.count} ({usual}, {_p(m.p_value)})  {m.spark}")
        out += _examples(m)
    out += ["", "*New tags* (counted for the first time)"]
    if not d.new:
        out.append("• none this week")
    for n in d.new:
        out.append(f"• `{n.tag}` {n.count}")
        out += _examples(n)
    out += ["", "*Tending the taxonomy*"]
    if d.suggestions:
        words = ", ".join(f'"{escape_mrkdwn(p)}" ({n})' for p, n in d.suggestions)
        out.append(f"Common in untagged reports (candidates for new tags): {words}")
    else:
        out.append("Common in untagged reports: nothing stands out.")
    if d.retire:
        out.append(
            "Matched no report in 90 days (candidates to retire): "
            + ", ".join(f"`{t}`" for t in d.retire)
        )
    elif d.retire_note:
        out.append(d.retire_note)
    else:
        out.append("Every taxonomy tag matched a report in the last 90 days.")
    return "\n".join(out)
