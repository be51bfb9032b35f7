"""Simulated worlds and the simulator that drives the real engine through them.

Owns the hour loops and their worlds: `bandit` (synthetic users with true conversion rates and
conversion delays, regret against the best arm) and `contextual` with `contextual_world` (users drawn
from attribute distributions, per-variant logistic models, regret against the per-user oracle). These
sit just above the engine and may import what it may (domain, stats, clock, store) plus `engine` and
`contextual`, never service, serving or a face. `wiring` is a composition root, like `cli` and
`api.app`: it plugs in the rest of the real path for `openautotune simulate`, the demo and the tests
(autotunes created and started through the service, users evaluated by the serving evaluator, events
through ingestion), and only `cli` imports it.
"""
