"""Routing: the rule model, YAML loader, engine, taxonomy and related-issue index."""
