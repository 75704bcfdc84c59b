"""The one settings object, read from the environment at start (12-factor)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Role = Literal["web", "worker", "cli"]

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_RULES_PATH = "rules/default.yml"


class ConfigError(Exception):
    """A missing or malformed environment variable; the message is one line naming it."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable} {problem}")


# What each variable is, for error messages, the README table and `feedback-hub config`.
VARIABLES: dict[str, str] = {
    "ZENDESK_URL": "https://<subdomain>.zendesk.com (any http(s) base URL works)",
    "ZENDESK_REQUEST_URL": (
        "the page where a reporter sees their ticket, an http(s) URL with {id} for the ticket"
        " number (default ZENDESK_URL/hc/requests/{id}, the Help Center's request page)"
    ),
    "ZENDESK_EMAIL": "the email of the Zendesk agent the API token belongs to",
    "ZENDESK_API_TOKEN": "a Zendesk API token (Admin Center > Apps and integrations > Zendesk API)",
    "ZENDESK_OAUTH_TOKEN": "a Zendesk OAuth access token, instead of ZENDESK_API_TOKEN",
    "ZENDESK_WEBHOOK_SECRET": "the signing secret of the Zendesk webhook that targets the hub",
    "ZENDESK_WEBHOOK_WINDOW_SECONDS": (
        "how far a Zendesk webhook's signed timestamp may be from now, in seconds (default 300)"
    ),
    "SLACK_SIGNING_SECRET": "the Slack app's signing secret (Basic Information > App Credentials)",
    "SLACK_BOT_TOKEN": "the Slack bot token, xoxb-... (OAuth & Permissions)",
    "SLACK_API_URL": f"the Slack Web API base URL, default {DEFAULT_SLACK_API_URL}",
    "SLACK_OPS_CHANNEL": "the Slack channel id or name for operator alerts",
    "SLACK_TICKET_EMOJI": (
        "the reaction that files a message and its thread as a ticket, an emoji name without"
        " colons (default ticket)"
    ),
    "SLACK_TICKET_CHANNELS": (
        "comma-separated Slack channel ids where the ticket emoji files (default: every channel"
        " the bot is in)"
    ),
    "SLACK_CONNECT_ORGANIZATIONS": (
        "comma-separated channel-or-team:Zendesk organization pairs for Slack Connect"
        " requesters, e.g. C0ACME:Acme Corp,T0ACME:Acme Corp"
    ),
    "MOBILE_API_KEYS": "comma-separated app_id:key pairs the mobile app authenticates with",
    "MOBILE_RATE_LIMIT": (
        "bug reports per minute per mobile app key, a whole number >= 1 (default 60)"
    ),
    "GROUP_PROBLEM_THRESHOLD": (
        "related reports in a group before the hub opens a Zendesk problem ticket for them,"
        " a whole number >= 1 (default 3)"
    ),
    "RELATED_JOIN_SCORE": (
        "the same-issue score a report needs to join a related issue on its words alone, a"
        " number above 0 and at most 1; 1: words never join, only equal crash signatures"
        " (default: the threshold measured in docs/related.md)"
    ),
    "REDIS_URL": "redis://[:password@]host:port/db (or rediss://, unix://)",
    "RULES_PATH": f"the rules file, default {DEFAULT_RULES_PATH}",
    "PORT": "the web port, 1-65535",
    "SECRET_KEY": (
        "signs the console's session cookies: at least 32 random characters (`feedback-hub dev`"
        " makes one; required when SLACK_CLIENT_ID is set)"
    ),
    "SLACK_CLIENT_ID": "the Slack app's client id, for the console's Sign in with Slack",
    "SLACK_CLIENT_SECRET": "the Slack app's client secret, for the console's Sign in with Slack",
    "ADMIN_SLACK_USERS": "Slack user ids who may use the console, comma separated (U0123,U0456)",
    "ADMIN_SLACK_USERGROUP": "a Slack user group id (S0123) whose members may use the console",
    "CONSOLE_REPORTS_MAX": (
        "how many recent reports the console keeps, a whole number >= 1 (default 200000)"
    ),
    "CONSOLE_REPORTS_DAYS": (
        "how many days the console keeps a report, a whole number >= 1 (default 90)"
    ),
    "GUNICORN_THREADS": (
        "threads per web process for the routes Flask answers (all but /slack/commands),"
        " a whole number >= 1 (default 8)"
    ),
    "LOG_FORMAT": "json (default: one JSON object a line) or text (readable; `make run` sets it)",
    "DIGEST_CHANNEL": "the Slack channel id or name for the weekly tag digest (unset: no digest)",
    "DIGEST_TZ": (
        "the IANA time zone of DIGEST_DAY and DIGEST_HOUR, e.g. Europe/Berlin (default UTC)"
    ),
    "DIGEST_DAY": "the weekday the tag digest is sent, monday..sunday (default monday)",
    "DIGEST_HOUR": "the hour the tag digest is sent, 0-23 in DIGEST_TZ (default 9)",
}

# Variables each process cannot start without. The web process only verifies,
# parses and enqueues; workers talk to Zendesk and Slack.
REQUIRED: dict[Role, tuple[str, ...]] = {
    "web": ("REDIS_URL", "SLACK_SIGNING_SECRET"),
    "worker": ("REDIS_URL", "ZENDESK_URL", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "SLACK_BOT_TOKEN"),
    "cli": (),
}


@dataclass(frozen=True)
class Settings:
    """Everything the hub reads from its environment, validated."""

    redis_url: str | None = None
    zendesk_url: str | None = None
    zendesk_request_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: str | None = field(default=None, repr=False)
    zendesk_oauth_token: str | None = field(default=None, repr=False)
    zendesk_webhook_secret: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_ops_channel: str | None = None
    slack_ticket_emoji: str = "ticket"
    slack_ticket_channels: frozenset[str] = frozenset()
    slack_connect_organizations: Mapping[str, str] = field(default_factory=dict)
    mobile_api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    mobile_rate_limit: int = 60
    group_problem_threshold: int = 3
    # None: the measured default (rules.related.joins.JOIN_SCORE; settings cannot import rules).
    related_join_score: float | None = None
    rules_path: str = DEFAULT_RULES_PATH
    port: int = 5000
    zendesk_webhook_window: int = 300
    web_threads: int = 8
    log_format: str = "json"
    secret_key: str | None = field(default=None, repr=False)
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    admin_slack_users: tuple[str, ...] = ()
    admin_slack_usergroup: str | None = None
    console_reports_max: int = 200_000
    console_reports_days: int = 90
    digest_channel: str | None = None
    digest_tz: str = "UTC"
    digest_day: int = 0  # Monday, as datetime.weekday()
    digest_hour: int = 9

    @classmethod
    def from_env(
        cls,
        role: Role = "cli",
        environ: Mapping[str, str] | None = None,
        *,
        read_dotenv: bool = True,
    ) -> Settings:
        """Read and validate the environment; raise ConfigError naming the first bad variable."""
        if environ is None:
            if read_dotenv:
                _load_dotenv()
            environ = os.environ
        env = {k: v.strip() for k, v in environ.items() if k in VARIABLES and v.strip()}

        settings = cls(
            redis_url=_redis_url(env.get("REDIS_URL")),
            zendesk_url=_http_url("ZENDESK_URL", env.get("ZENDESK_URL")),
            zendesk_request_url=_url_template(
                "ZENDESK_REQUEST_URL", env.get("ZENDESK_REQUEST_URL")
            ),
            zendesk_email=_email("ZENDESK_EMAIL", env.get("ZENDESK_EMAIL")),
            zendesk_api_token=env.get("ZENDESK_API_TOKEN"),
            zendesk_oauth_token=env.get("ZENDESK_OAUTH_TOKEN"),
            zendesk_webhook_secret=env.get("ZENDESK_WEBHOOK_SECRET"),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET"),
            slack_bot_token=env.get("SLACK_BOT_TOKEN"),
            slack_api_url=_slack_api_url(env.get("SLACK_API_URL")),
            slack_ops_channel=env.get("SLACK_OPS_CHANNEL"),
            slack_ticket_emoji=_emoji(env.get("SLACK_TICKET_EMOJI")),
            slack_ticket_channels=frozenset(
                c.strip() for c in env.get("SLACK_TICKET_CHANNELS", "").split(",") if c.strip()
            ),
            slack_connect_organizations=_pairs(
                "SLACK_CONNECT_ORGANIZATIONS", env.get("SLACK_CONNECT_ORGANIZATIONS")
            ),
            mobile_api_keys=_mobile_api_keys(env.get("MOBILE_API_KEYS")),
            mobile_rate_limit=_positive_int("MOBILE_RATE_LIMIT", env.get("MOBILE_RATE_LIMIT"), 60),
            group_problem_threshold=_positive_int(
                "GROUP_PROBLEM_THRESHOLD", env.get("GROUP_PROBLEM_THRESHOLD"), 3
            ),
            related_join_score=_score("RELATED_JOIN_SCORE", env.get("RELATED_JOIN_SCORE")),
            rules_path=env.get("RULES_PATH", DEFAULT_RULES_PATH),
            port=_port(env.get("PORT")),
            zendesk_webhook_window=_seconds(
                "ZENDESK_WEBHOOK_WINDOW_SECONDS", env.get("ZENDESK_WEBHOOK_WINDOW_SECONDS"), 300
            ),
            web_threads=_positive_int("GUNICORN_THREADS", env.get("GUNICORN_THREADS"), 8),
            log_format=_choice("LOG_FORMAT", env.get("LOG_FORMAT"), ("json", "text")),
            secret_key=_secret_key(env.get("SECRET_KEY"), env.get("SLACK_CLIENT_ID")),
            slack_client_id=env.get("SLACK_CLIENT_ID"),
            slack_client_secret=env.get("SLACK_CLIENT_SECRET"),
            admin_slack_users=tuple(
                u.strip() for u in env.get("ADMIN_SLACK_USERS", "").split(",") if u.strip()
            ),
            admin_slack_usergroup=env.get("ADMIN_SLACK_USERGROUP"),
            console_reports_max=_positive_int(
                "CONSOLE_REPORTS_MAX", env.get("CONSOLE_REPORTS_MAX"), 200_000
            ),
            console_reports_days=_positive_int(
                "CONSOLE_REPORTS_DAYS", env.get("CONSOLE_REPORTS_DAYS"), 90
            ),
            digest_channel=env.get("DIGEST_CHANNEL"),
            digest_tz=_timezone("DIGEST_TZ", env.get("DIGEST_TZ")),
            digest_day=_weekday("DIGEST_DAY", env.get("DIGEST_DAY")),
            digest_hour=_hour("DIGEST_HOUR", env.get("DIGEST_HOUR")),
        )
        missing = settings.missing(role)
        if missing:
            name = missing[0]
            raise ConfigError(name, f"is not set: expected {VARIABLES[name]}")
        return settings

    def missing(self, role: Role) -> list[str]:
        """The variables `role` needs that are not set."""
        out = []
        for name in REQUIRED[role]:
            if name == "ZENDESK_API_TOKEN":
                if not (self.zendesk_api_token or self.zendesk_oauth_token):
                    out.append(name)
            elif not getattr(self, name.lower()):
                out.append(name)
        return out

    @property
    def secrets(self) -> list[str]:
        """Every secret value configured, so logs and errors can be scrubbed of them."""
        values = [
            self.zendesk_api_token,
            self.zendesk_oauth_token,
            self.zendesk_webhook_secret,
            self.slack_signing_secret,
            self.slack_bot_token,
            self.secret_key,
            self.slack_client_secret,
            *self.mobile_api_keys.values(),
        ]
        if self.redis_url and (password := urlsplit(self.redis_url).password):
            values.append(password)
        return [v for v in values if v and len(v) >= 4]

    def request_url(self, ticket_id: int) -> str:
        """The page where the reporter sees ticket `ticket_id` (agents' links are for agents)."""
        if self.zendesk_request_url:
            return self.zendesk_request_url.replace("{id}", str(ticket_id))
        assert self.zendesk_url, "workers always have ZENDESK_URL"
        return f"{self.zendesk_url}/hc/requests/{ticket_id}"

    @property
    def slack_channels(self) -> dict[str, str]:
        """The channels the settings post to, by variable ({"SLACK_OPS_CHANNEL": "#hub-ops"})."""
        named = {"SLACK_OPS_CHANNEL": self.slack_ops_channel, "DIGEST_CHANNEL": self.digest_channel}
        return {variable: channel for variable, channel in named.items() if channel}

    @property
    def slack_api_host(self) -> str:
        """The host of SLACK_API_URL (a response_url may point here: the sandbox)."""
        return urlsplit(self.slack_api_url).netloc


def _load_dotenv() -> None:
    # Development convenience: values already in the environment win.
    path = Path(os.environ.get("FEEDBACK_HUB_DOTENV", ".env"))
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL", f"is malformed: expected {VARIABLES['REDIS_URL']}")
    if parts.scheme != "unix":
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1:
            raise ConfigError("REDIS_URL", f"is malformed: expected {VARIABLES['REDIS_URL']}")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError("REDIS_URL", "is malformed: the database after '/' must be a number")
    return value


def _http_url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(name, "is malformed: the port is not a number") from None
    return value.rstrip("/")


def _url_template(name: str, value: str | None) -> str | None:
    """An http(s) URL with {id} in it, where the ticket number goes."""
    if value is None:
        return None
    if "{id}" not in value:
        raise ConfigError(name, f"has no {{id}}: expected {VARIABLES[name]}")
    _http_url(name, value.replace("{id}", "1"))
    return value


def _email(name: str, value: str | None) -> str | None:
    if value is not None and ("@" not in value or value.startswith("@") or value.endswith("@")):
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return value


def _slack_api_url(value: str | None) -> str:
    url = _http_url("SLACK_API_URL", value)
    return (url + "/") if url else DEFAULT_SLACK_API_URL


def _mobile_api_keys(value: str | None) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        app_id, sep, key = pair.strip().partition(":")
        if not sep or not app_id.strip() or not key.strip():
            raise ConfigError(
                "MOBILE_API_KEYS",
                f"is malformed at item {len(keys) + 1}: expected app_id:key pairs, comma separated",
            )
        if app_id.strip() in keys:
            raise ConfigError("MOBILE_API_KEYS", f"names app {app_id.strip()!r} twice")
        keys[app_id.strip()] = key.strip()
    return keys


def _emoji(value: str | None) -> str:
    name = (value or "ticket").strip(":")
    if not name or any(c.isspace() or c == ":" for c in name):
        raise ConfigError(
            "SLACK_TICKET_EMOJI", f"is malformed: expected {VARIABLES['SLACK_TICKET_EMOJI']}"
        )
    return name


def _pairs(name: str, value: str | None) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for index, pair in enumerate((value or "").split(","), 1):
        if not pair.strip():
            continue
        key, sep, mapped = pair.strip().partition(":")
        if not sep or not key.strip() or not mapped.strip():
            raise ConfigError(name, f"is malformed at item {index}: expected {VARIABLES[name]}")
        pairs[key.strip()] = mapped.strip()
    return pairs


def _positive_int(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return int(value)


def _score(name: str, value: str | None) -> float | None:
    """A number in (0, 1], or None when unset."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 < number <= 1.0:  # also refuses nan
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return number


def _secret_key(value: str | None, client_id: str | None) -> str | None:
    """The console's cookie key: long enough to be a key; required once sign-in is configured."""
    if value is None:
        if client_id:
            raise ConfigError("SECRET_KEY", f"is not set: expected {VARIABLES['SECRET_KEY']}")
        return None
    if len(value) < 32:
        raise ConfigError("SECRET_KEY", f"is too short: expected {VARIABLES['SECRET_KEY']}")
    return value


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case); the first when unset."""
    if value is None:
        return choices[0]
    if value.lower() not in choices:
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return value.lower()


def _port(value: str | None) -> int:
    if value is None:
        return 5000
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError("PORT", f"is malformed: expected {VARIABLES['PORT']}")
    return int(value)


def _seconds(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) == 0:
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return int(value)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _timezone(name: str, value: str | None) -> str:
    if value is None:
        return "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(name, f"is not a known time zone: expected {VARIABLES[name]}") from None
    return value


def _weekday(name: str, value: str | None) -> int:
    if value is None:
        return 0
    folded = value.casefold()
    for i, day in enumerate(WEEKDAYS):
        if folded in (day, day[:3]):
            return i
    raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")


def _hour(name: str, value: str | None) -> int:
    if value is None:
        return 9
    if not value.isdigit() or int(value) > 23:
        raise ConfigError(name, f"is malformed: expected {VARIABLES[name]}")
    return int(value)
