"""The sandbox's own page: every ticket with its comments, and the webhooks it sent.

It is where the hub's links to the agent interface and the Help Center lead, so a person
following one during development lands on the ticket.
"""

from __future__ import annotations

from flask import render_template_string

from integrations.sandbox.zendesk.api import Route
from integrations.sandbox.zendesk.records import Json, attachment_json
from integrations.sandbox.zendesk.webhooks import WebhookAccount


class TicketsPage:
    """The HTML view of the account, served at / and at the ticket links the hub posts."""

    def __init__(self, account: WebhookAccount) -> None:
        self.account = account

    def routes(self) -> list[Route]:
        """The page and the one-ticket links, in the order they are registered."""
        return [
            ("GET", "/", self.page),
            # Where the hub's links point (the agent interface, the Help Center
            # request a reporter opens): the one ticket.
            ("GET", "/hc/requests/<int:ticket_id>", self.agent_ticket),
            ("GET", "/agent/tickets/<int:ticket_id>", self.agent_ticket),
        ]

    def page(self) -> str:
        """Every ticket, newest first."""
        return self.render(None)

    def agent_ticket(self, ticket_id: int) -> str:
        """One ticket, or Zendesk's 404."""
        self.account.ticket_or_404(ticket_id)
        return self.render(ticket_id)

    def render(self, only: int | None) -> str:
        """The page with every ticket, or with ticket `only`."""
        zd = self.account
        with zd.lock:
            tickets = sorted(
                (t for t in zd.tickets.values() if only is None or t["id"] == only),
                key=lambda t: -t["id"],
            )
            rows = [self._row(t) for t in tickets]
            deliveries = list(reversed(zd.deliveries[-50:]))
        return render_template_string(PAGE, rows=rows, deliveries=deliveries)

    def _row(self, ticket: Json) -> Json:
        zd = self.account
        return {
            "ticket": ticket,
            "requester": zd.users.get(ticket["requester_id"]),
            "group": zd.groups.get(ticket["group_id"] or -1),
            "comments": [
                {
                    "comment": c,
                    "author": zd.users.get(c["author_id"]),
                    "attachments": [attachment_json(zd.base(), a) for a in c["attachments"]],
                }
                for c in zd.comments[ticket["id"]]
            ],
        }


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Zendesk sandbox</title>
<meta http-equiv="refresh" content="5">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
.ticket{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:1em 0}
.meta{color:#555}.tag{background:#eef;border-radius:3px;padding:0 .3em;margin-right:.3em}
.comment{border-left:3px solid #8b8;padding:.2em .8em;margin:.5em 0;white-space:pre-wrap}
.internal{border-color:#db6;background:#fff8e6}
</style></head><body>
<h1>Zendesk sandbox</h1>
<p class="meta">{{ rows|length }} ticket(s), newest first. This page refreshes every 5 seconds.</p>
{% for row in rows %}{% set t = row.ticket %}
<div class="ticket" id="ticket-{{ t.id }}">
<h2>#{{ t.id }} {{ t.subject or "(no subject)" }}</h2>
<div class="meta">
status <b>{{ t.status }}</b> · priority {{ t.priority or "-" }} · type {{ t.type or "-" }}
· group {{ row.group.name if row.group else "-" }}
{% if t.problem_id %}· incident of
<a href="#ticket-{{ t.problem_id }}">#{{ t.problem_id }}</a>{% endif %}
{% if t.external_id %}· external id <code>{{ t.external_id }}</code>{% endif %}
</div>
<div class="meta">requester {% if row.requester %}{{ row.requester.name }}
&lt;{{ row.requester.email or "no email" }}&gt;{% else %}-{% endif %}</div>
<div>{% for tag in t.tags %}<span class="tag">{{ tag }}</span>{% endfor %}</div>
{% for c in row.comments %}
<div class="comment{% if not c.comment.public %} internal{% endif %}">
<div class="meta">{{ c.author.name if c.author else c.comment.author_id }} ·
{{ "public" if c.comment.public else "internal note" }} · {{ c.comment.created_at }}</div>
{{ c.comment.body }}
{% for a in c.attachments %}<div>📎 <a href="{{ a.content_url }}">{{ a.file_name }}</a>
({{ a.content_type }}, {{ a.size }} bytes)</div>{% endfor %}
</div>
{% endfor %}
</div>
{% else %}<p>No tickets yet.</p>{% endfor %}
<h2>Webhooks sent</h2>
{% for d in deliveries %}<div class="meta">{{ d.at }} {{ d.type }} ticket #{{ d.ticket_id }} →
{{ d.status or d.error }}</div>{% else %}<p class="meta">None yet.</p>{% endfor %}
</body></html>
"""
