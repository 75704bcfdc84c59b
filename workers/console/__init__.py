"""The triage console under /admin/: Slack sign-in, reports and why they went where they did,
dead letters to replay, the rules in force, tag trends and the hub's health (docs/console.md)."""
