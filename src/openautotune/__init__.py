"""openautotune: self-hosted Bayesian bandits that speak Statsig's Autotune APIs.

One package per capability, layered so that data moves one way (docs/architecture.md): `domain`,
`stats` and `clock` import nothing of ours; `store` imports `domain`; `service` and `serving` sit on
them; `contextual` and `engine` turn stored outcomes into allocations and policies; `simulation`
drives the engine with synthetic users; the faces `api` and `web` call service, serving, engine and
contextual; `cli`, `api.app` and `simulation.wiring` are the only composition roots. The rules are
import-linter contracts in pyproject.toml, with no import cycle anywhere.
"""

__version__ = "0.1.0"
