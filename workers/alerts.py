"""Operator alerts: dead letters and broken rules, posted to SLACK_OPS_CHANNEL."""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from integrations import logs
from integrations.queue.marks import once
from integrations.slack import messages
from workers.context import context
from workers.retry import run_guarded

log = logging.getLogger(__name__)

# An alert is posted once; the mark outlives any retry schedule.
ALERTED_SECONDS = 30 * 24 * 3600


def ops_alert(text: str) -> Any:
    """Post an operator alert to SLACK_OPS_CHANNEL (only logged when it is not set)."""
    return run_guarded(_ops_alert, text)


def _ops_alert(text: str) -> str | None:
    ctx = context()
    channel = ctx.settings.slack_ops_channel
    if not channel:
        why = messages.ops_alert_skipped()
        logs.event(log, "slack.ops_alert.skipped", logging.WARNING, why=why)
        return None
    job = get_current_job()
    if job is None:  # called directly (a command): nothing to repeat
        ctx.slack.post_message(channel, {"text": text})
    else:
        with once(ctx.redis, f"hub:slack:alerted:{job.id}", ttl=ALERTED_SECONDS) as claim:
            if claim is None:
                return None
            ctx.slack.post_message(channel, {"text": text})
            claim.done()
    logs.event(log, "slack.ops_alert.posted", channel=channel)
    return channel
