"""Contextual autotunes (spec: contextual.md): from each unit's attributes and outcome to a
personalized policy, published to SDKs and served by the server.

Owns the statistics (`features`: encoding user attributes; `models`: per-variant Bayesian logistic
and normal-inverse-gamma fits; `policy`: Thompson banks, linear policies and propensities;
`offpolicy`: doubly robust value estimates; `publish`: the SDK weights of `cmab_configs`), the
training step the engine's update calls (`training`: read units, fit, publish, record) and
server-side serving of a trained policy (`serving`: the deciders behind `/v1/get_config` and ranked
groups). The statistics modules are numbers only and import nothing of ours but each other;
`training` and `serving` may import domain, stats, clock and store. Contextual storage stays in
`store.contextual` (tables and queries that service also reads), the rendering of the
`cmab_configs` spec entry in `serving.cmab` (serving depends on domain only) and the dashboard's
contextual section in `web.contextual_view` (a view). The engine imports `contextual`, never the
reverse.
"""
