"""The dashboard: sessions and CSRF, server-rendered pages, plotly figures, the results-history
API, the contextual section and the demo seed.

A face like `api`: it calls service, serving and engine functions and may import domain, clock,
settings and the `Database` handle (never store functions, `stats` or the contextual statistics);
its demo seed may use the simulators of `simulation` (not its wiring). It never imports `api` or
`cli`; `api.app` mounts its router.
"""
