"""A local Zendesk: the slice of the Support API the hub uses, in memory, served over real HTTP.

Responses follow the shapes of the real API (Zendesk's API reference and the
cassettes zenpy records against real accounts), so the real zenpy client
deserializes them. It can also act as an agent (reply, note, solve, tag) and
send the resulting event webhooks, signed as Zendesk signs them.

- records.py: errors, value rules, new records and their API renderings (pure)
- state.py: the account in memory (users, groups, tickets, comments, audits, uploads)
- webhooks.py: webhooks, triggers, ticket events, and the agent whose actions send them
- api.py: the emulated REST endpoints, one method each
- control.py: the /__sandbox endpoints tests and `feedback-hub simulate` drive it with
- page.py: the HTML page of tickets and sent webhooks
- sandbox.py: ZendeskSandbox, all of it served, behind faults, rate limit and auth
"""

from integrations.sandbox.zendesk.sandbox import ZendeskSandbox

__all__ = ["ZendeskSandbox"]
