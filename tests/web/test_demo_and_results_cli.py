"""`openautotune demo` (through the engine's simulator and SDK ingestion) and `openautotune results`."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from openautotune.cli import app
from openautotune.clock import FixedClock
from openautotune.domain.autotune import Status
from openautotune.service import autotunes as autotune_service
from openautotune.service import exposures_log
from openautotune.simulation.wiring import SdkTraffic
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.testing import START_MS
from openautotune.web import demo, views
from openautotune.web.results import points
from tests.web.helpers import ADMIN, create, insert_records

runner = CliRunner()

SMALL = (
    demo.DemoAutotune("Clear winner", "", ("A", "B"), "buy", arms=(0.02, 0.30), days=2, users_per_hour=40),
    demo.DemoAutotune(
        "Exploring",
        "",
        ("A", "B", "C"),
        "buy",
        arms=(0.1, 0.1, 0.1),
        days=1,
        users_per_hour=20,
        exploration_window="168hr",
    ),
    demo.DemoAutotune(
        "By hand",
        "",
        ("A", "B"),
        "buy",
        arms=(0.1, 0.1),
        days=1,
        users_per_hour=20,
        exploration_window="168hr",  # the engine cannot declare a winner before the decision by hand
        decide=("B", "simpler"),
    ),
    demo.DemoAutotune("Draft", "", ("A", "B"), "buy"),
)


def test_demo_seeds_every_stage_through_the_simulator(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    migrate.upgrade(db.engine)
    now = FixedClock(START_MS + 3 * 24 * 3_600_000 + 1_234)
    outcomes = demo.seed(db, now, lambda clock: SdkTraffic(db, clock), specs=SMALL)
    assert [o.status for o in outcomes] == ["finished", "running", "finished", "draft"]
    winner, exploring, by_hand, draft = (autotune_service.get(db, o.autotune_id) for o in outcomes)
    assert winner.winner is not None and winner.winner.name == "B"
    assert by_hand.winner is not None and by_hand.winner.name == "B"
    exploring_series = views.load_series(db, exploring)
    assert len(exploring_series.updates) == 24  # one engine update per simulated hour
    assert exploring_series.updates[-1].as_of_ms == START_MS + 3 * 24 * 3_600_000  # ends at the present hour
    assert exploring_series.status_sentence.startswith("Exploring until")
    assert exposures_log.recent(db, exploring.id, limit=5)  # exposures came in as SDK batches
    assert sum(exposures_log.daily_counts(db, exploring.id, exploring.run).values()) == 24 * 20
    assert views.load_series(db, by_hand).status_sentence.startswith("B was chosen by decision on")
    assert views.load_series(db, winner).status_sentence.startswith("B won on")
    assert points(db, draft) == [] and draft.status is Status.DRAFT
    again = demo.seed(db, now, lambda clock: SdkTraffic(db, clock), specs=SMALL[:1])
    assert again[0].skipped
    db.dispose()


def test_results_command(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    migrate.upgrade(db.engine)
    clock = FixedClock(START_MS)
    made = create(db, clock)
    autotune_service.start(db, clock, ADMIN, made.id)
    insert_records(db, autotune_service.get(db, made.id), 30, START_MS)
    shown = runner.invoke(app, ["results", made.id, "--database-url", sqlite_url], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    assert "blue leads with 70% probability of being best; needs 95%." in shown.output
    assert "1,500" in shown.output and "12.0%" in shown.output
    as_json = runner.invoke(app, ["results", made.id, "--json", "--database-url", sqlite_url])
    assert as_json.exit_code == 0, as_json.output
    body = orjson.loads(as_json.output)
    assert body["message"] == "Autotune results read successfully."
    assert [v["name"] for v in body["data"]["variants"]] == ["red", "blue"]
    assert body["data"]["variants"][1]["probabilityOfBest"] == 0.7
    missing = runner.invoke(app, ["results", "nope", "--database-url", sqlite_url])
    assert missing.exit_code == 1
    db.dispose()
