"""The simulator on the real path: a real SQLite file, the store, hourly engine updates on a FixedClock.

- The direct path (bulk inserts, bucketing by thresholds) produces exactly what the SDK path
  (the serving evaluator and SDK batches through ingestion) produces, hour by hour; so the
  20-seed study below may use the fast direct path without testing something else.
- 5%, 5.5%, 6.5% with hourly updates and Statsig's winner rule: the best arm is declared the winner
  in at least 19 of 20 seeds at 95%, with cumulative regret well below an equal split (the default
  rule's operating characteristics are measured by bench/decisions.py, docs/engine.md).
- A/A (two equal arms): the false-winner rate is printed (a property of the method to watch,
  not a pass/fail line); regret is exactly 0 whatever is served.
"""

from __future__ import annotations

import time

import pytest

from openautotune.simulation.bandit import SimulationConfig, SimulationResult
from openautotune.simulation.wiring import run_simulation, run_study

ARMS = (0.05, 0.055, 0.065)


def test_direct_path_equals_the_sdk_path() -> None:
    config = SimulationConfig(arms=ARMS, users_per_hour=400, hours=28, seed=11)
    through_sdk = run_simulation(config, through_sdk=True, winner_rule="statsig")
    direct = run_simulation(config, through_sdk=False, winner_rule="statsig")
    assert [h.served for h in direct.hours] == [h.served for h in through_sdk.hours]
    assert [h.conversions for h in direct.hours] == [h.conversions for h in through_sdk.hours]
    assert [h.pob for h in direct.hours] == [h.pob for h in through_sdk.hours]
    assert [h.stage for h in direct.hours] == [h.stage for h in through_sdk.hours]
    assert (direct.winner, direct.hours_to_winner) == (through_sdk.winner, through_sdk.hours_to_winner)
    assert through_sdk.hours_to_winner is not None and through_sdk.hours[0].pob, "updates ran through the SDK path"


def test_a_seed_reproduces_its_run() -> None:
    config = SimulationConfig(arms=ARMS, users_per_hour=300, hours=26, seed=5)
    first = run_simulation(config, through_sdk=False)
    again = run_simulation(config, through_sdk=False)
    assert first.hours == again.hours


def _study(arms: tuple[float, ...], seeds: int, hours: int) -> list[SimulationResult]:
    configs = [SimulationConfig(arms=arms, users_per_hour=1000, hours=hours, seed=seed) for seed in range(seeds)]
    return run_study(configs, workers=2, winner_rule="statsig")


def test_best_arm_wins_in_19_of_20_seeds_with_low_regret() -> None:
    began = time.perf_counter()
    results = _study(ARMS, seeds=20, hours=72)
    elapsed = time.perf_counter() - began
    winners = [r.winner for r in results]
    right = sum(1 for r in results if r.winner == r.best == 2)
    regret = sum(r.regret for r in results)
    equal_split = sum(r.equal_split_regret for r in results)
    hours = sorted(r.hours_to_winner for r in results if r.hours_to_winner is not None)
    print(
        f"\n5%/5.5%/6.5%, 1000 users/h, 72 h, 20 seeds in {elapsed:.1f} s: best declared in {right}/20 "
        f"(winners {winners}); hours to winner {hours}; regret {regret:.0f} vs equal split {equal_split:.0f} "
        f"(ratio {regret / equal_split:.2f})"
    )
    assert right >= 19
    assert regret < 0.6 * equal_split
    # Every run that found a winner updated hourly: one record per hour until then.
    for result in results:
        updated = [h for h in result.hours if h.pob]
        assert len(updated) == (result.hours_to_winner or result.config.hours)


def test_aa_false_winner_rate_is_reported() -> None:
    results = _study((0.05, 0.05), seeds=4, hours=48)
    false_winners = sum(1 for r in results if r.winner is not None)
    print(f"\nA/A 5%/5%, 1000 users/h, 48 h, 4 seeds: false winners {false_winners}/4 at 95% (docs/engine.md: 7/20)")
    assert all(r.regret == 0.0 and r.equal_split_regret == 0.0 for r in results)
    for result in results:  # updated every hour until a (false) winner, if any
        assert len(result.hours) == 48
        assert sum(1 for h in result.hours if h.pob) == (result.hours_to_winner or 48)


@pytest.mark.parametrize("distribution", ["exponential", "lognormal", "uniform", "fixed"])
def test_delay_distributions_have_the_configured_mean(distribution: str) -> None:
    import numpy as np

    from openautotune.simulation.bandit import _delays

    config = SimulationConfig(arms=ARMS, delay_mean_minutes=20.0, delay_distribution=distribution)
    delays = _delays(np.random.default_rng(1), config, 200_000)
    assert delays.min() >= 0
    assert delays.mean() == pytest.approx(20 * 60_000, rel=0.02)
    assert bool(delays.std() == 0) == (distribution == "fixed")


def test_an_unknown_delay_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="delay_distribution"):
        SimulationConfig(arms=ARMS, delay_distribution="gamma")
