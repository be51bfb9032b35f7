"""The simulator reports each update's health, and a traffic wrapper can break the client (bench/health.py)."""

from __future__ import annotations

from collections.abc import Sequence

from openautotune.domain.autotune import Allocation, Autotune
from openautotune.domain.guardrails import Guardrail
from openautotune.simulation.bandit import Conversions, Exposures, HourReport, SimulationConfig, Traffic
from openautotune.simulation.wiring import run_simulation
from openautotune.store.database import Database


class LosesHalfOfArmOne:
    """A broken client: every other exposure of the second variant never reaches the server."""

    def __init__(self, inner: Traffic) -> None:
        self._inner = inner

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        return self._inner.assign(autotune, allocation, unit_ids)

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        second = autotune.definition.variants[1].id
        keep = [i for i, v in enumerate(exposures.variant_ids) if v != second or i % 2 == 0]
        kept = Exposures(
            [exposures.unit_ids[i] for i in keep],
            [exposures.variant_ids[i] for i in keep],
            [exposures.versions[i] for i in keep],
            [exposures.times_ms[i] for i in keep],
        )
        self._inner.record(autotune, kept, conversions, now_ms)


def test_hour_reports_carry_health_and_a_broken_client_is_flagged() -> None:
    reports: list[HourReport] = []

    def wrap(_db: Database, inner: Traffic) -> Traffic:
        return LosesHalfOfArmOne(inner)

    config = SimulationConfig(arms=(0.05, 0.05), users_per_hour=400, hours=4, seed=3)
    run_simulation(
        config, through_sdk=False, on_hour=reports.append, wrap_traffic=wrap, guardrails=(Guardrail("error", 0.1),)
    )
    assert all(report.health is not None for report in reports)
    last = reports[-1].health
    assert last is not None
    assert last["srm"]["warning"] is not None and "'arm_1' has" in last["srm"]["warning"]
    assert last["guardrails"][0]["event"] == "error" and last["excluded"] == []
