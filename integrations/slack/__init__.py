"""Slack: the `/feedback` command, the feedback modal and the "Send to support" shortcut.

- `commands`: POST /slack/commands, a small WSGI app in front of Flask (the busy route with
  Slack's 3 s deadline): verify, parse, enqueue, answer.
- `views`: the blueprint (/slack/interactions) and the objects both share (verifier, views.open).
- `verify`: Slack's v0 request signatures, checked on the raw body with slack_sdk's verifier.
- `payloads`: what Slack sends, parsed into frozen models; `reports` turns them into Reports.
- `messages`: every word and Block Kit view the hub shows in Slack.
- `api`: slack_sdk's WebClient wrapped for workers (errors become Retryable / Permanent).
- `jobs`: the Slack-side jobs (receipts, "Ticket #N filed", delays, operator alerts, identities).
"""
