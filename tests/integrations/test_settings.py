"""Settings.from_env: every contract variable, and one-line errors naming the bad one."""

from __future__ import annotations

import pytest

from integrations.settings import ConfigError, Settings

WEB = {"REDIS_URL": "redis://localhost:6379/0", "SLACK_SIGNING_SECRET": "s3cret-signing"}


def test_web_needs_the_slack_signing_secret() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env("web", {"REDIS_URL": "redis://localhost:6379/0"})
    assert err.value.variable == "SLACK_SIGNING_SECRET"
    assert str(err.value).startswith("SLACK_SIGNING_SECRET is not set: expected")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "url",
    ["localhost:6379", "http://localhost:6379", "redis://", "redis://host:port", "redis://h:1/x"],
)
def test_malformed_redis_url_is_named(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env("web", {**WEB, "REDIS_URL": url})
    assert err.value.variable == "REDIS_URL"
    assert "malformed" in str(err.value)


def test_worker_needs_zendesk_and_slack_credentials() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env("worker", WEB)
    assert err.value.variable == "ZENDESK_URL"


def test_oauth_token_stands_in_for_the_api_token() -> None:
    settings = Settings.from_env(
        "worker",
        {
            **WEB,
            "ZENDESK_URL": "https://acme.zendesk.com/",
            "ZENDESK_EMAIL": "a@acme.com",
            "ZENDESK_OAUTH_TOKEN": "oauth-token",
            "SLACK_BOT_TOKEN": "xoxb-1",
        },
    )
    assert settings.missing("worker") == []
    assert settings.zendesk_url == "https://acme.zendesk.com"


def test_defaults_and_parsing() -> None:
    settings = Settings.from_env(
        "web",
        {
            **WEB,
            "MOBILE_API_KEYS": "ios:k1, android:k2",
            "PORT": "8080",
            "SLACK_API_URL": "http://127.0.0.1:5001/api",
        },
    )
    assert settings.mobile_api_keys == {"ios": "k1", "android": "k2"}
    assert settings.port == 8080
    assert settings.slack_api_url == "http://127.0.0.1:5001/api/"
    assert settings.slack_api_host == "127.0.0.1:5001"
    assert settings.rules_path == "rules/default.yml"
    # Unset: the workers use the measured threshold; set: that one.
    assert settings.related_join_score is None
    assert Settings.from_env("web", {**WEB, "RELATED_JOIN_SCORE": "0.2"}).related_join_score == 0.2
    assert Settings.from_env("web", WEB).slack_api_url == "https://slack.com/api/"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MOBILE_API_KEYS", "ios-no-colon", "item 1"),
        ("MOBILE_API_KEYS", "ios:a,ios:b", "twice"),
        ("PORT", "eighty", "1-65535"),
        ("MOBILE_RATE_LIMIT", "0", "whole number >= 1"),
        ("MOBILE_RATE_LIMIT", "lots", "whole number >= 1"),
        ("PORT", "70000", "1-65535"),
        ("ZENDESK_URL", "acme.zendesk.com", "https://<subdomain>.zendesk.com"),
        ("ZENDESK_EMAIL", "nobody", "email"),
        ("SLACK_API_URL", "slack.com/api", "malformed"),
        ("ZENDESK_REQUEST_URL", "https://support.example.com/tickets", "has no {id}"),
        ("ZENDESK_REQUEST_URL", "support.example.com/{id}", "malformed"),
        ("RELATED_JOIN_SCORE", "0", "above 0 and at most 1"),
        ("RELATED_JOIN_SCORE", "1.5", "above 0 and at most 1"),
        ("RELATED_JOIN_SCORE", "high", "above 0 and at most 1"),
        ("RELATED_JOIN_SCORE", "nan", "above 0 and at most 1"),
    ],
)
def test_malformed_values_are_named(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env("web", {**WEB, name: value})
    assert err.value.variable == name
    assert fragment in str(err.value)


def test_the_reporters_ticket_page() -> None:
    zendesk = {**WEB, "ZENDESK_URL": "https://acme.zendesk.com/"}
    assert Settings.from_env("web", zendesk).request_url(7) == (
        "https://acme.zendesk.com/hc/requests/7"
    )
    custom = {**zendesk, "ZENDESK_REQUEST_URL": "https://help.acme.com/my/{id}?from=slack"}
    assert (
        Settings.from_env("web", custom).request_url(7) == "https://help.acme.com/my/7?from=slack"
    )


def test_secrets_are_listed_for_scrubbing_and_hidden_from_repr() -> None:
    settings = Settings.from_env(
        "web",
        {
            **WEB,
            "REDIS_URL": "redis://:redis-pass@localhost:6379/0",
            "MOBILE_API_KEYS": "ios:mobile-key-1",
        },
    )
    assert {"s3cret-signing", "redis-pass", "mobile-key-1"} <= set(settings.secrets)
    assert "s3cret-signing" not in repr(settings)
    assert "mobile-key-1" not in repr(settings)
