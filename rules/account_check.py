"""Rules checked against a Zendesk account: every group, custom field and assignee they name.

A name the account lacks would file tickets unrouted at run time (`rules.unknown_target`);
here it is a problem at the rule's file:line:col with the account's nearest name.
"""

from __future__ import annotations

from integrations.zendesk.account import AccountNames, nearest
from rules.model import RuleSet
from rules.yaml_reader import Problem
from rules.zendesk_names import Named, named_in


def account_problems(ruleset: RuleSet, account: AccountNames) -> list[Problem]:
    """Each place the rules name something the account does not have, in file order."""
    problems = []
    for named in named_in(ruleset):
        problem = _problem(named, account)
        if problem is not None:
            problems.append(problem)
    return sorted(problems, key=lambda p: (p.line, p.column))


def _problem(named: Named, account: AccountNames) -> Problem | None:
    w = named.where
    if named.kind == "group":
        if account.has_group(named.name):
            return None
        return Problem(
            w.file,
            w.line,
            w.column,
            f"{named.named_by}: Zendesk has no group {named.name!r}",
            nearest(named.name, account.groups),
        )
    if named.kind == "custom field":
        if named.field_id is None or named.field_id in account.fields:
            return None
        titles = {title: fid for fid, title in account.fields.items()}
        close = nearest(named.name, titles)
        hint = f"{close} ({titles[close]})" if close else None
        return Problem(
            w.file,
            w.line,
            w.column,
            f"{named.named_by}: Zendesk has no custom ticket field {named.field_id} "
            f"(custom field {named.name!r})",
            hint,
        )
    if account.has_agent(named.name):
        return None
    return Problem(
        w.file,
        w.line,
        w.column,
        f"{named.named_by}: Zendesk has no agent {named.name!r} to assign tickets to",
        None if named.name.isdigit() else nearest(named.name, account.agents),
    )


def summary(ruleset: RuleSet) -> str:
    """What was checked: how many groups, custom fields and assignees."""
    names = named_in(ruleset)
    counts = {
        kind: len({n.name for n in names if n.kind == kind})
        for kind in ("group", "custom field", "assignee")
    }
    return (
        f"{counts['group']} groups, {counts['custom field']} custom fields, "
        f"{counts['assignee']} assignees"
    )
