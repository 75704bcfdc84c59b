"""`feedback-hub dev`: the hub on one machine, with no accounts needed (the README's `make run`).

What is not configured is stood in for, and said so: Redis by a private
redis-server (or, without one installed, an in-memory store in this process),
Zendesk and Slack by the sandboxes in integrations/sandbox/, running as threads
of this process. The web and worker processes are the Procfile's own.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integrations.sandbox.devstate import clear_state, state_path, write_state
from workers.procs import (
    ROOT,
    free_port,
    process_env,
    procfile_args,
    start_redis,
    stop_together,
    wait_for_port,
)

if TYPE_CHECKING:
    from integrations.sandbox import SlackSandbox, ZendeskSandbox

Env = dict[str, str]
# Where `feedback-hub dev` sends operator alerts when it runs the Slack sandbox.
DEV_OPS_CHANNEL = "#hub-ops"
# The sample report the summary suggests: the default rules route it to the Billing group.
SAMPLE_BILLING = "I was charged twice for my subscription #billing"


def say(line: str = "") -> None:
    print(f"feedback-hub dev | {line}" if line else "", flush=True)


def run_dev() -> int:
    """Start what is missing, then the web and worker processes; stop them all on Ctrl-C."""
    from integrations.settings import Settings, _load_dotenv

    _load_dotenv()
    env = process_env({})
    env.setdefault("PORT", "5000")
    # A person reads these logs: one line each, coloured on a terminal (production: JSON).
    env.setdefault("LOG_FORMAT", "text")
    hub_url = f"http://127.0.0.1:{env['PORT']}"
    # The servers dev starts (redis-server) and the hub's own processes (web, worker).
    servers: list[subprocess.Popen[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []
    state: dict[str, object] = {"hub_url": hub_url}
    workdir = Path(tempfile.mkdtemp(prefix="feedback-hub-dev-"))
    # SIGTERM (a process manager, a test) stops everything the way Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops everything, also when started where SIGINT is ignored (a shell's
    # background job): otherwise the processes it reaches stop and this one calls it a crash.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, True)
        cleanup.callback(clear_state)
        # Stopped after the processes that use them (an ExitStack unwinds last-in first-out).
        services = cleanup.enter_context(contextlib.ExitStack())
        # The web and worker together (each may finish what it is doing), then the
        # redis-server they write to as they stop.
        cleanup.callback(stop_together, servers)
        cleanup.callback(stop_together, procs)
        try:
            if _in_use(int(env["PORT"])):
                say(f"port {env['PORT']} is taken: stop what uses it, or set PORT")
                return 1
            redis_line = _redis(env, servers, services, workdir)
            zendesk, slack = _sandboxes(env, state, services, hub_url)
            _dev_rules(env, workdir, services)
            if not env.get("SLACK_SIGNING_SECRET"):
                env["SLACK_SIGNING_SECRET"] = secrets.token_hex(16)
                say("SLACK_SIGNING_SECRET is not set: using a throwaway one for local requests")
            if not env.get("MOBILE_API_KEYS"):
                key = "dev-" + secrets.token_urlsafe(18)
                env["MOBILE_API_KEYS"] = f"dev-app:{key}"
                state["mobile_app_id"], state["mobile_api_key"] = "dev-app", key
                say(f"MOBILE_API_KEYS is not set: the app 'dev-app' may send with Bearer {key}")
            if not env.get("SECRET_KEY"):
                env["SECRET_KEY"] = secrets.token_urlsafe(32)
                say("SECRET_KEY is not set: console sessions use a throwaway key")
            if slack is not None and not env.get("SLACK_OPS_CHANNEL"):
                # Alerts (dead letters, broken rules) are then seen on the sandbox page.
                env["SLACK_OPS_CHANNEL"] = DEV_OPS_CHANNEL
                say(f"SLACK_OPS_CHANNEL is not set: operator alerts go to {DEV_OPS_CHANNEL}")
            # With the environment complete (the settings it names are valid now).
            _follow_rules(zendesk, slack, env, services)
            state["slack_signing_secret"] = env["SLACK_SIGNING_SECRET"]
            state["zendesk_webhook_secret"] = env.get("ZENDESK_WEBHOOK_SECRET")
            state["redis_url"] = env["REDIS_URL"]

            web = subprocess.Popen(procfile_args("web", env), env=env, cwd=ROOT)
            procs.append(web)
            wait_for_port(int(env["PORT"]), timeout=30, proc=web)
            missing = Settings.from_env("cli", env, read_dotenv=False).missing("worker")
            if missing:
                say(f"worker not started: it needs {', '.join(missing)} (see /readyz)")
            else:
                procs.append(subprocess.Popen(procfile_args("worker", env), env=env, cwd=ROOT))
            path = write_state(state)
            _summary(hub_url, state, redis_line, path)
            return _wait([*servers, *procs])
        except KeyboardInterrupt:
            return 0


def _in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _redis(
    env: Env,
    procs: list[subprocess.Popen[bytes]],
    cleanup: contextlib.ExitStack,
    workdir: Path,
) -> str:
    """Make sure REDIS_URL points at a Redis; returns how to describe it."""
    if env.get("REDIS_URL"):
        return f"{env['REDIS_URL']} (REDIS_URL)"
    port = free_port()
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if shutil.which("redis-server", path=env.get("PATH")):
        procs.append(start_redis(port, workdir / "redis", appendonly=True, own_session=True))
        say(f"REDIS_URL is not set: started a private redis-server at {env['REDIS_URL']}")
        return f"{env['REDIS_URL']} (private redis-server, stopped with this command)"
    _memory_redis(port, cleanup)
    bar = "!" * 76
    for line in (
        bar,
        "WARNING: REDIS_URL is not set and redis-server is not installed.",
        f"Using an IN-MEMORY store inside this process at {env['REDIS_URL']}.",
        "NOTHING IS DURABLE: every queued report is lost when this command stops.",
        "Install redis-server (apt-get install redis-server, brew install redis)",
        "or set REDIS_URL to keep what the hub accepts.",
        bar,
    ):
        say(line)
    return f"{env['REDIS_URL']} (IN-MEMORY, NOT DURABLE)"


def _memory_redis(port: int, cleanup: contextlib.ExitStack) -> None:
    """fakeredis over TCP in a thread, so the web and worker processes share it."""
    try:
        from fakeredis import TcpFakeServer
    except ImportError:
        say("no redis-server and no fakeredis: install redis-server or 'fakeredis[lua]'")
        raise SystemExit(1) from None
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.RequestHandlerClass = _handler_with_plain_addresses()
    # A connection of a stopped worker may sit in a blocking BLPOP: never wait for it.
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="memory-redis", daemon=True)
    thread.start()
    cleanup.callback(server.server_close)
    cleanup.callback(server.shutdown)
    wait_for_port(port)


def _handler_with_plain_addresses() -> type:
    """fakeredis's TCP handler, made to behave like Redis where rq notices.

    fakeredis 2.40 answers CLIENT INFO with Python tuples ("addr=('127.0.0.1', 5000)"),
    whose space breaks redis-py's parser (rq's worker calls CLIENT INFO at start); and
    it hangs up after any error reply, where Redis answers the error and carries on
    (rq's scripts rely on NOSCRIPT, then SCRIPT LOAD on the same connection).
    """
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler
    from redis.exceptions import ResponseError

    class PlainAddresses:
        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock

        def __getattr__(self, name: str) -> Any:
            return getattr(self._sock, name)

        def getsockname(self) -> str:
            host, port = self._sock.getsockname()[:2]
            return f"{host}:{port}"

        def getpeername(self) -> str:
            host, port = self._sock.getpeername()[:2]
            return f"{host}:{port}"

    class Handler(TCPFakeRequestHandler):
        def setup(self) -> None:
            # StreamRequestHandler.setup() takes its socket from self.request.
            real = self.request
            self.request = PlainAddresses(real)
            try:
                super().setup()
            finally:
                self.request = self.connection = real
            client = self.current_client
            read = client.read_response

            def read_response(*args: Any, **kwargs: Any) -> Any:
                # Returned, not raised: the handler writes it as an error reply and goes on.
                try:
                    return read(*args, **kwargs)
                except ResponseError as exc:
                    return exc

            client.read_response = read_response  # type: ignore[method-assign]

    return Handler


# `make run` shows the one-hour promise at work within minutes (docs/rules.md, response_time).
DEV_TARGETS = """
response_time:
  - name: Dev demo, first reply within 3 minutes
    first_reply: 3m
    nudge: {at: 50%, channel: "#support-triage"}
    breach: {channel: "#support-escalations", add_tags: [response_overdue]}
"""


# How often the dev copy of the rules looks at rules/default.yml for a change.
RULES_MIRROR_SECONDS = 1.0


def _dev_rules(env: Env, workdir: Path, cleanup: contextlib.ExitStack) -> None:
    """Without RULES_PATH: rules/default.yml plus a first-reply target of a few minutes,
    kept in step with rules/default.yml (an edit there reaches the hub, as the README says
    a rules change does)."""
    if env.get("RULES_PATH"):
        return
    source, rules = ROOT / "rules" / "default.yml", workdir / "rules.yml"
    mirrored = [_mirror_rules(source, rules)]
    env["RULES_PATH"] = str(rules)
    say(
        "RULES_PATH is not set: rules/default.yml with a 3-minute first-reply target "
        f"({rules}): a report is nudged in #support-triage after 90 s and breached after "
        "3 minutes unless `simulate reply` answers it; edits to rules/default.yml are "
        "followed"
    )
    stop = threading.Event()

    def follow() -> None:
        # The text, not the file's time: an edit within the same clock tick (or made
        # before this thread first looked) is still seen. The file is a few kB.
        while not stop.wait(RULES_MIRROR_SECONDS):
            with contextlib.suppress(OSError):
                if source.read_text() != mirrored[0]:
                    mirrored[0] = _mirror_rules(source, rules)
                    say("rules/default.yml changed: the hub loads it (with the dev target)")

    thread = threading.Thread(target=follow, name="dev-rules-mirror", daemon=True)
    thread.start()
    cleanup.callback(thread.join, 5)
    cleanup.callback(stop.set)


def _mirror_rules(source: Path, rules: Path) -> str:
    """Write the dev rules file whole (the hub never reads half of it); the text copied."""
    text = source.read_text()
    partial = rules.with_suffix(".tmp")
    partial.write_text(text + DEV_TARGETS)
    partial.replace(rules)
    return text


def _sandboxes(
    env: Env, state: dict[str, object], cleanup: contextlib.ExitStack, hub: str
) -> tuple[ZendeskSandbox | None, SlackSandbox | None]:
    """Start the Zendesk and Slack sandboxes for whichever has no credentials; those started."""
    from integrations.sandbox import SlackSandbox, ZendeskSandbox

    zendesk: ZendeskSandbox | None = None
    slack: SlackSandbox | None = None

    zendesk_vars = ("ZENDESK_URL", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN")
    missing = [name for name in zendesk_vars if not env.get(name)]
    if missing == ["ZENDESK_API_TOKEN"] and env.get("ZENDESK_OAUTH_TOKEN"):
        missing = []
    if missing:
        token = "sandbox-" + secrets.token_hex(12)
        zendesk = ZendeskSandbox(email="agent@example.com", token=token)
        zendesk.start()
        cleanup.callback(zendesk.stop)
        env.pop("ZENDESK_OAUTH_TOKEN", None)
        env.update(ZENDESK_URL=zendesk.url, ZENDESK_EMAIL=zendesk.email, ZENDESK_API_TOKEN=token)
        env.setdefault("ZENDESK_WEBHOOK_SECRET", secrets.token_urlsafe(24))
        # Agent actions on the sandbox page come back to the hub as signed webhooks.
        zendesk.set_webhook_target(f"{hub}/zendesk/webhook", env["ZENDESK_WEBHOOK_SECRET"])
        state["zendesk_sandbox_url"] = zendesk.url
        state["zendesk_account_id"] = zendesk.account_id
        say(f"Zendesk credentials are not set ({', '.join(missing)}): using the Zendesk sandbox")
    if not env.get("SLACK_BOT_TOKEN"):
        token = "xoxb-sandbox-" + secrets.token_hex(12)
        slack = SlackSandbox(token=token)
        slack.start()
        cleanup.callback(slack.stop)
        env.update(SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=token)
        state["slack_sandbox_url"] = slack.url
        say("SLACK_BOT_TOKEN is not set: using the Slack Web API sandbox")
        if not env.get("SLACK_CLIENT_ID"):
            # The console's Sign in with Slack, through the sandbox's pick-a-user page.
            env.update(
                SLACK_CLIENT_ID=slack.oidc.client_id, SLACK_CLIENT_SECRET=slack.oidc.client_secret
            )
            if not env.get("ADMIN_SLACK_USERS") and not env.get("ADMIN_SLACK_USERGROUP"):
                env["ADMIN_SLACK_USERS"] = ",".join(sorted(slack.users))
            say("SLACK_CLIENT_ID is not set: the console signs in through the Slack sandbox")
    return zendesk, slack


def _follow_rules(
    zendesk: ZendeskSandbox | None,
    slack: SlackSandbox | None,
    env: Env,
    cleanup: contextlib.ExitStack,
) -> None:
    """Give the sandboxes what the settings and rules name (Zendesk groups, fields, agents;
    Slack channels), now and on each change of the rules file."""
    from redis import Redis

    from integrations.settings import Settings
    from workers.sandbox_rules import SandboxFollower

    if zendesk is None and slack is None:
        return
    settings = Settings.from_env("cli", env, read_dotenv=False)
    redis = cleanup.enter_context(Redis.from_url(env["REDIS_URL"]))
    follower = SandboxFollower(
        zendesk,
        settings.rules_path,
        slack=slack,
        channels=settings.slack_channels,
        redis=redis,
        say=say,
    )
    follower.start()
    cleanup.callback(follower.stop)


def _summary(hub: str, state: dict[str, object], redis_line: str, path: Path) -> None:
    say()
    say(f"hub      {hub}  (try /healthz and /readyz)")
    say(f"console  {hub}/admin/  the triage console (Sign in with Slack)")
    if state.get("zendesk_sandbox_url"):
        say(f"zendesk  {state['zendesk_sandbox_url']}/  sandbox: tickets appear here")
    if state.get("slack_sandbox_url"):
        say(f"slack    {state['slack_sandbox_url']}/  sandbox: messages and replies appear here")
    say(f"redis    {redis_line}")
    say(f"state    {_shown(path)} (simulate and the operator commands find this hub in it)")
    say()
    hub = ".venv/bin/feedback-hub"
    crash = "integrations/mobile/fixtures/crash__ios_swift_build_740.txt"
    say(f'next     {hub} simulate feedback "hello"')
    say(f'         {hub} simulate feedback "{SAMPLE_BILLING}"   (routed to Billing)')
    say(f"         {hub} simulate bug-report   (a sample mobile report)")
    say(f"         {hub} simulate bug-report --crash {crash}   (twice: one issue, 2 reporters)")
    say(f"         {hub} watch   (the first-reply clocks)")
    say("Ctrl-C stops everything.")


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def _wait(procs: list[subprocess.Popen[bytes]]) -> int:
    while True:
        for proc in procs:
            code = proc.poll()
            if code is not None:
                say(f"a process exited with {code}: {proc.args!r}")
                return code or 1
        with contextlib.suppress(subprocess.TimeoutExpired):
            procs[0].wait(1.0)


__all__ = ["run_dev", "state_path"]
