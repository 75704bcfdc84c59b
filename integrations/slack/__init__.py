"""Slack: the `/feedback` command, the feedback modal and the "Send to support" shortcut.

- `views`: the blueprint (/slack/commands, /slack/interactions): verify, parse, enqueue, answer.
- `verify`: Slack's v0 request signatures, checked on the raw body with slack_sdk's verifier.
- `payloads`: what Slack sends, parsed into frozen models; `reports` turns them into Reports.
- `messages`: every word and Block Kit view the hub shows in Slack.
- `api`: slack_sdk's WebClient wrapped for workers (errors become Retryable / Permanent).
- `jobs`: the Slack-side jobs (receipts, "Ticket #N filed", delays, operator alerts, identities).
"""
