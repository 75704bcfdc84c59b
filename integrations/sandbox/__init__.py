"""Local Zendesk and Slack Web API emulators for development, demos and tests.

Both serve real HTTP, so the real zenpy and slack_sdk clients talk to them
unmodified (ZENDESK_URL=http://127.0.0.1:PORT, SLACK_API_URL=http://127.0.0.1:PORT/api/).
"""

from integrations.sandbox.server import Faults, Sandbox
from integrations.sandbox.slack import SlackSandbox
from integrations.sandbox.zendesk import ZendeskSandbox

__all__ = ["Faults", "Sandbox", "SlackSandbox", "ZendeskSandbox"]
