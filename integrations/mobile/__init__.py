"""The mobile bug-report API: apps post reports (with screenshots and logs) that become tickets.

Read in this order: `views` (the routes), `auth` (app keys), `schema` (what a
report may contain), `uploads` (files checked by content and stored), `limits`
(sizes, counts, rate), `idempotency`, `mapping` (a request to a `Report`),
`crash` (crash signatures), `messages` (the wording). `openapi.yaml` is
generated from `schema`: `python -m integrations.mobile.openapi`.
"""
