"""The `openautotune` command line: a composition root, like `api.app` and `simulation.wiring`.

Owns the Typer app and one module per command group (`serve`, `update`, `simulate`, `keys`, `db`,
`demo`, `results`, `process`), each a thin face that parses options, calls the service layer (or the engine,
the simulators and the result views) and prints. It may import anything of ours; nothing imports
it. Heavy pieces (the engine with numpy and scipy, uvicorn, the app factory) are imported inside the
commands that need them, so `--help` and the light commands start fast.
"""

from __future__ import annotations

import typer

from openautotune.cli import db, demo, events, keys, process, results, serve, simulate, update

app = typer.Typer(
    help="openautotune: self-hosted Bayesian bandits compatible with Statsig Autotune.", no_args_is_help=True
)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(events.app, name="events")
app.command()(serve.serve)
app.command()(update.update)
app.command()(process.process)
app.command()(simulate.simulate)
app.command()(demo.demo)
app.command()(results.results)


def main() -> None:
    app()
