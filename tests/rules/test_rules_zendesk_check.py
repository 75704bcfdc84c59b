"""`rules check --zendesk` and `zendesk setup --create-groups`, against the Zendesk sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app import cli
from integrations.sandbox import ZendeskSandbox
from rules.loader import load_rules
from workers.procs import ROOT, process_env, procfile_args
from workers.sandbox_rules import seed_sandbox

MISSPELT = """\
groups: [Support, Biling]
custom_fields:
  platform: 360001000002
  app_verison: 360001000009
defaults: {group: Support}
taxonomy:
  billing: {keywords: [invoice]}
intake:
  - name: Invoices to Billing
    when: {tags: {includes: [billing]}}
    then:
      - set_group: Biling
      - set_assignee: lee@example.com
"""


@pytest.fixture
def account(zendesk_sandbox: ZendeskSandbox) -> ZendeskSandbox:
    """An account with what an admin set up: Support (the sandbox's), Billing, two fields, Lee."""
    zendesk_sandbox.add_group("Billing")
    zendesk_sandbox.add_ticket_field("Platform", 360001000002)
    zendesk_sandbox.add_ticket_field("App version", 360001000001)
    zendesk_sandbox.add_user("Lee", "lee.agent@example.com", role="agent")
    return zendesk_sandbox


@pytest.fixture
def check_env(sandbox_env: dict[str, str], account: ZendeskSandbox) -> dict[str, str]:
    return {**sandbox_env, "FEEDBACK_HUB_DOTENV": "/nonexistent/.env"}


def invoke(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_a_misspelt_group_fails_naming_its_lines_and_the_nearest_group(
    check_env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(MISSPELT)

    result = invoke(check_env, "rules", "check", "--zendesk", str(rules))

    assert result.exit_code == 1, result.output
    errors = result.stderr.splitlines()
    assert (
        f"{rules}:1:19: groups: Zendesk has no group 'Biling' (did you mean 'Billing'?)" in errors
    )
    assert (
        f"{rules}:12:9: intake rule 1 \"Invoices to Billing\": Zendesk has no group 'Biling'"
        " (did you mean 'Billing'?)"
    ) in errors
    assert (
        f"{rules}:4:16: custom_fields: Zendesk has no custom ticket field 360001000009"
        " (custom field 'app_verison') (did you mean 'App version (360001000001)'?)"
    ) in errors
    assert any(
        line.startswith(f"{rules}:13:9: ")
        and "no agent 'lee@example.com'" in line
        and "did you mean 'lee.agent@example.com'" in line
        for line in errors
    ), errors
    assert "4 problems" in errors
    # What exists is not reported.
    assert "'Support'" not in result.stderr
    assert "platform" not in result.stderr


def test_rules_the_account_has_pass(check_env: dict[str, str], account: ZendeskSandbox) -> None:
    default = ROOT / "rules" / "default.yml"
    seed_sandbox(account, load_rules(default))

    result = invoke(check_env, "rules", "check", "--zendesk", str(default))

    assert result.exit_code == 0, result.output
    assert f"zendesk: ok: {account.url} has the 7 groups, 2 custom fields" in result.output


def test_the_release_phase_checks_the_account_only_with_credentials(
    check_env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(MISSPELT)
    with_account = process_env({**check_env, "RULES_PATH": str(rules)})
    done = subprocess.run(
        procfile_args("release", with_account),
        cwd=ROOT,
        env=with_account,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Zendesk has no group 'Biling'" in done.stderr

    without = {
        k: v
        for k, v in with_account.items()
        if not k.startswith("ZENDESK_") or k.endswith("DOTENV")
    }
    done = subprocess.run(
        procfile_args("release", without),
        cwd=ROOT,
        env=without,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "zendesk: not checked (no Zendesk credentials in the environment)" in done.stdout


def test_setup_creates_the_missing_groups_once(
    check_env: dict[str, str], account: ZendeskSandbox
) -> None:
    env = {**check_env, "RULES_PATH": str(ROOT / "rules" / "default.yml")}

    dry = invoke(env, "zendesk", "setup", "--create-groups", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would create group 'Engineering'" in dry.output
    assert {g["name"] for g in account.groups.values()} == {"Support", "Billing"}

    first = invoke(env, "zendesk", "setup", "--create-groups")
    assert first.exit_code == 0, first.output
    created = {line for line in first.output.splitlines() if line.startswith("created group")}
    assert created == {
        f"created group {name!r}"
        for name in ("Engineering", "Mobile", "Product", "Security", "Accounts")
    }
    assert {g["name"] for g in account.groups.values()} == {
        "Support",
        "Billing",
        "Engineering",
        "Mobile",
        "Product",
        "Security",
        "Accounts",
    }

    again = invoke(env, "zendesk", "setup", "--create-groups")
    assert again.exit_code == 0, again.output
    assert "groups: all 7 the rules route to exist" in again.output
    assert len(account.groups) == 7


def test_setup_needs_a_public_url_or_create_groups(check_env: dict[str, str]) -> None:
    result = invoke(check_env, "zendesk", "setup")
    assert result.exit_code == 2
    assert "give --public-url URL (the webhook), --create-groups, or both" in result.output
