"""Zendesk: the zenpy gateway (tickets, uploads, users, problems) and the webhook blueprint."""
