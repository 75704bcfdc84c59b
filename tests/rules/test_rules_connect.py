"""Rule conditions for Slack Connect customers: `external`, `organization`, `channel`."""

from __future__ import annotations

import textwrap

import pytest

from integrations.report import Report
from rules.engine import evaluate
from rules.loader import RulesError, parse_rules
from rules.model import RuleSet

RULES = """\
groups: [Support, Enterprise]
intake:
  - name: Acme's threads to their account team
    when: {all: [{external: true}, {organization: Acme Corp}]}
    then: [{set_group: Enterprise}, {add_tags: [acme]}]
  - name: Any other customer organization
    when: {all: [{external: true}, {not: {organization: Acme Corp}}]}
    then: [{add_tags: [other_customer]}]
  - name: Our own people in the support channel
    when: {all: [{external: false}, {channel: C0SUPPORT}]}
    then: [{add_tags: [internal_thread]}]
"""


def thread_report(
    channel: str, *, external: bool = False, organization: str | None = None
) -> Report:
    return Report.model_validate(
        {
            "source": "slack_reaction",
            "idempotency_key": f"slack:reaction:T0:{channel}:1.2",
            "subject": "Invoices show the wrong VAT",
            "description": "Invoices show the wrong VAT",
            "fields": {"external": external, "organization": organization},
            "reply": {"channel_id": channel},
        }
    )


def test_a_mapped_customer_organization_routes_to_its_team() -> None:
    decision = evaluate(thread_report("C0ACME", external=True, organization="Acme Corp"), _rules())
    assert decision.group == "Enterprise"
    assert "acme" in decision.tags and "other_customer" not in decision.tags


def test_another_organization_and_our_own_people_are_told_apart() -> None:
    other = evaluate(thread_report("C0GLOBEX", external=True, organization="Globex"), _rules())
    assert "other_customer" in other.tags and other.group != "Enterprise"
    ours = evaluate(thread_report("C0SUPPORT"), _rules())
    assert "internal_thread" in ours.tags and "other_customer" not in ours.tags


def test_external_takes_true_or_false_only() -> None:
    broken = RULES.replace(
        "{external: true}, {organization", "{external: sometimes}, {organization"
    )
    with pytest.raises(RulesError) as raised:
        parse_rules(broken, "rules.yml")
    assert "rules.yml:4" in str(raised.value)
    assert "external" in str(raised.value)


def _rules() -> RuleSet:
    return parse_rules(textwrap.dedent(RULES), "rules.yml")
