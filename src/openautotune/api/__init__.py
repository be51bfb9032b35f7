"""The HTTP faces: the Console API, the SDK endpoints (spec downloads, `log_event`, `get_config`,
ranked CMAB groups), the results API, auth, the one error mapper, body limits and the spec cache.

Each router only checks the request and calls service, serving, engine or `contextual.serving`;
it may also import domain, clock, settings and the `Database` handle from store (never store
functions, `stats` or the contextual statistics). `api.app` is a composition root that wires these
routers and the dashboard into one FastAPI app; nothing else imports `api` but `cli`.
"""
