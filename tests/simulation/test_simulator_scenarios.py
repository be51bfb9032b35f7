"""What the decision benchmarks need from the simulator: base rates that move over time, identical
variants, a choice of winner rule and estimator, and one JSON record per seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openautotune.cli import app as cli_app
from openautotune.simulation.bandit import SimulationConfig, rates_at
from openautotune.simulation.wiring import result_record, run_simulation


def test_base_rates_follow_the_schedule_and_the_day_one_spike() -> None:
    config = SimulationConfig(arms=(0.05, 0.06), hourly_factors=(1.0, 0.5), spike=2.0)
    assert list(rates_at(config, 0)) == pytest.approx([0.10, 0.12])
    assert list(rates_at(config, 1)) == pytest.approx([0.05, 0.06])  # spike x half-rate hour
    assert list(rates_at(config, 24)) == pytest.approx([0.05, 0.06])
    assert list(rates_at(config, 25)) == pytest.approx([0.025, 0.03])
    plain = SimulationConfig(arms=(0.05, 0.06))
    assert list(rates_at(plain, 100)) == [0.05, 0.06]


@pytest.mark.parametrize(
    "changes", [{"spike": -1.0}, {"hourly_factors": (1.0, float("nan"))}, {"arms": (0.5, 0.6), "spike": 2.0}]
)
def test_factors_that_break_the_rates_are_refused(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {"arms": (0.05, 0.06), **changes}
    with pytest.raises(ValueError):
        SimulationConfig(**fields)  # type: ignore[arg-type]


def test_a_spike_run_records_the_estimator_and_a_json_record() -> None:
    config = SimulationConfig(arms=(0.05, 0.05, 0.05), users_per_hour=300, hours=28, seed=3, spike=2.0)
    result = run_simulation(config, through_sdk=False, winner_rule="statsig", estimator="pooled")
    record = result_record(result)
    assert record["seed"] == 3 and record["best"] is None and record["regret"] == 0.0
    assert record["winner"] in (None, "arm_0", "arm_1", "arm_2")
    assert (record["decisionHour"] is None) == (record["winner"] is None)
    assert len(result.final) == 3 and result.analysed_hours == (record["decisionHour"] or 28) - 1
    assert sum(f.units for f in result.final) > 0
    # Day one at twice the base rate shows in the conversions.
    day_one = np.mean([h.conversions for h in result.hours[:24]])
    assert day_one > 1.5 * 300 * 0.05


def test_cli_json_prints_one_record_per_seed() -> None:
    result = CliRunner().invoke(
        cli_app,
        [
            "simulate", "--arms", "0.05", "--identical", "3", "--users-per-hour", "100", "--hours", "2",
            "--seeds", "2", "--direct", "--json", "--winner-rule", "statsig", "--estimator", "pooled",
            "--schedule", "1,0.5", "--spike", "1.5",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["seed"] for r in records] == [0, 1]
    assert all(r["winner"] is None and r["decisionHour"] is None and r["regret"] == 0.0 for r in records)


def test_cli_refuses_an_unknown_winner_rule() -> None:
    result = CliRunner().invoke(cli_app, ["simulate", "--hours", "1", "--json", "--winner-rule", "fastest"])
    assert result.exit_code == 2
    assert "winnerRule" in result.output
