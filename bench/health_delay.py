"""Delayed conversions and the holdout, measured on the real engine through the simulator.

    .venv/bin/python bench/health_delay.py [--seeds 10] [--holdout-seeds 20] [--first-seed 0] [--workers 1]
                                           [--only delay,holdout] [--exploration 24hr,1hr]

- delay: 5% / 5.5% / 6.5%, 1,000 users an hour, a 24-hour (and a 1-hour) exploration window, a 24-hour attribution
  window, conversions after an exponential delay of mean 6 hours, 72 hours (direct traffic). The same
  seeds run with `delayedConversions: "expected"` (the default: immature units count for the
  allocation) and `"ignored"` (the mature-only engine). Reported: regret over the 3 days of each, their
  ratio, and whether each variant's final estimate (mature units only) is unbiased: the mean against the
  truth (rate x the share of conversions inside the window) and how often its 95% interval holds it.
  Also the best any allocation could do beside the mature-only engine: the regret of an oracle that
  serves the same exploration split, then knows the best arm from the first exploiting hour but still
  gives the open challengers the testing floor the mature-only run's sequential test kept
  (`floor_k = w_k - (1 - TRAFFIC_FLOOR) x P(best)_k` of each published allocation), and, looser, of
  one that serves nothing but the best arm once exploration ends. Their ratio to the mature-only
  regret is the lowest ratio the delay model, which only changes the P(best) part, could reach with
  the floor the mature-only test keeps.
- holdout: the same arms with `holdoutPercent: 10`, a 1-hour window and 15-minute mean delays (the
  simulator's defaults), through the real serving evaluator and ingestion (the holdout is decided by the
  served rule), until the winner or 72 hours. The true lift is what the served variants imply: the
  bandit's units' mean true rate minus the holdout's, each by its own variant counts (x the counted
  share); reported: how often the results' 95% lift interval holds it.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from openautotune.engine.results import read_results
from openautotune.service import autotunes as autotune_service
from openautotune.simulation.bandit import HourReport, SimulationConfig
from openautotune.simulation.wiring import run_simulation
from openautotune.stats.winner_rule import TRAFFIC_FLOOR
from openautotune.store.database import Database

ARMS = (0.05, 0.055, 0.065)
DELAY_MINUTES = 360.0
# Shares of converters whose conversion falls inside the window (exponential delays).
DELAY_COUNTED = 1.0 - math.exp(-24 * 60 / DELAY_MINUTES)
HOLDOUT_COUNTED = 1.0 - math.exp(-60.0 / 15.0)


def oracle_regrets(hours: list[HourReport]) -> tuple[float, float]:
    """(oracle keeping the testing floor, oracle serving only the best arm) over `hours` of a run whose
    allocations are the mature-only ones: an hour served by exploiting weights is re-priced, every
    other hour (exploration, the winner) keeps its regret."""
    best = max(range(len(ARMS)), key=lambda k: ARMS[k])
    gaps = [ARMS[best] - p for p in ARMS]
    with_floor = only_best = 0.0
    for previous, hour in zip([None, *hours[:-1]], hours, strict=True):
        if previous is None or previous.stage != "exploiting" or not previous.weights:
            with_floor += hour.regret
            only_best += hour.regret
            continue
        floor = [max(0.0, w - (1.0 - TRAFFIC_FLOOR) * p) for w, p in zip(previous.weights, previous.pob, strict=True)]
        with_floor += hour.users * sum(f * g for f, g in zip(floor, gaps, strict=True))
    return with_floor, only_best


def delay_job(job: tuple[int, str, str]) -> dict[str, Any]:
    seed, mode, exploration = job
    config = SimulationConfig(arms=ARMS, hours=72, seed=seed, delay_mean_minutes=DELAY_MINUTES)
    began = time.perf_counter()
    result = run_simulation(
        config,
        through_sdk=False,
        exploration_window=exploration,
        attribution_window="24hr",
        delayed_conversions=mode,
    )
    with_floor, only_best = oracle_regrets(result.hours)
    return {
        "seed": seed,
        "mode": mode,
        "exploration": exploration,
        "regret": result.regret,
        "oracleWithFloor": with_floor,
        "oracleOnlyBest": only_best,
        "winner": result.winner,
        "hour": result.hours_to_winner,
        "final": [(f.mean, f.ci_low, f.ci_high) for f in result.final],
        "seconds": time.perf_counter() - began,
    }


def holdout_job(seed: int) -> dict[str, Any]:
    config = SimulationConfig(arms=ARMS, hours=72, seed=seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="openautotune-holdout-", dir="/dev/shm") as folder:
        url = f"sqlite:///{Path(folder) / 'sim.db'}"
        result = run_simulation(config, database_url=url, through_sdk=True, holdout_percent=10.0)
        db = Database.from_url(url)
        try:
            results = read_results(db, autotune_service.get(db, result.autotune_id))
        finally:
            db.dispose()
    block = results.holdout or {}
    bandit_units = [v.units for v in results.variants]
    held_units = [int(item["units"]) for item in block.get("variants", [])]
    truth = HOLDOUT_COUNTED * (
        sum(n * p for n, p in zip(bandit_units, ARMS, strict=True)) / max(1, sum(bandit_units))
        - sum(n * p for n, p in zip(held_units, ARMS, strict=True)) / max(1, sum(held_units))
    )
    lift = block.get("lift") or {}
    return {
        "seed": seed,
        "truth": truth,
        "lift": lift.get("value"),
        "low": lift.get("low"),
        "high": lift.get("high"),
        "regretAvoided": (block.get("regretAvoided") or {}).get("value"),
        "holdoutUnits": block.get("units"),
        "banditUnits": block.get("banditUnits"),
        "hour": result.hours_to_winner,
        "seconds": time.perf_counter() - began,
    }


def _pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def delay_report(records: list[dict[str, Any]]) -> str:
    by = {(r["seed"], r["mode"]): r for r in records}
    seeds = sorted({r["seed"] for r in records})
    expected = [by[s, "expected"]["regret"] for s in seeds]
    ignored = [by[s, "ignored"]["regret"] for s in seeds]
    with_floor = statistics.fmean(by[s, "ignored"]["oracleWithFloor"] for s in seeds)
    only_best = statistics.fmean(by[s, "ignored"]["oracleOnlyBest"] for s in seeds)
    lines = [
        f"delay, exploration window {records[0]['exploration']}: {len(seeds)} seeds, regret over 72 h: "
        f"with immature units {statistics.fmean(expected):.1f}, "
        f"mature-only {statistics.fmean(ignored):.1f}, ratio of means "
        f"{statistics.fmean(expected) / statistics.fmean(ignored):.2f}x "
        f"(per-seed ratios median {statistics.median(e / i for e, i in zip(expected, ignored, strict=True)):.2f})",
        f"  lowest reachable beside the mature-only engine: oracle keeping its testing floor {with_floor:.1f} "
        f"({with_floor / statistics.fmean(ignored):.2f}x), oracle serving only the best arm after exploration "
        f"{only_best:.1f} ({only_best / statistics.fmean(ignored):.2f}x)",
    ]
    for mode in ("expected", "ignored"):
        runs = [by[s, mode] for s in seeds]
        hours = [r["hour"] for r in runs if r["hour"] is not None]
        right = sum(r["winner"] == 2 for r in runs)
        lines.append(
            f"  {mode}: winner found in {len(hours)}/{len(runs)} (best in {right}), median hour "
            f"{statistics.median(hours) if hours else float('nan'):.0f}"
        )
        for k, p in enumerate(ARMS):
            truth = p * DELAY_COUNTED
            means = [r["final"][k][0] for r in runs if r["final"]]
            covered = sum(r["final"][k][1] <= truth <= r["final"][k][2] for r in runs if r["final"])
            lines.append(
                f"    arm_{k} truth {truth:.5f}: mean of final estimates {statistics.fmean(means):.5f} "
                f"(bias {statistics.fmean(means) - truth:+.5f}), interval holds the truth {covered}/{len(means)}"
            )
    return "\n".join(lines)


def holdout_report(records: list[dict[str, Any]]) -> str:
    done = [r for r in records if r["lift"] is not None]
    covered = sum(r["low"] <= r["truth"] <= r["high"] for r in done)
    return (
        f"holdout: {len(records)} seeds, lift interval holds the true lift in {covered}/{len(done)}; "
        f"mean reported lift {statistics.fmean(r['lift'] for r in done):+.5f} vs true "
        f"{statistics.fmean(r['truth'] for r in done):+.5f}; mean regret avoided "
        f"{statistics.fmean(r['regretAvoided'] for r in done):.1f} conversions; mean holdout units "
        f"{statistics.fmean(r['holdoutUnits'] for r in done):.0f} of "
        f"{statistics.fmean(r['holdoutUnits'] + r['banditUnits'] for r in done):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--holdout-seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="Seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--exploration", default="24hr,1hr")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", default="delay,holdout")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    began = time.perf_counter()
    with _pool(args.workers) as pool:
        if "delay" in parts:
            for exploration in args.exploration.split(","):
                seeds = range(args.first_seed, args.first_seed + args.seeds)
                jobs = [(seed, mode, exploration) for seed in seeds for mode in ("expected", "ignored")]
                print(delay_report(list(pool.map(delay_job, jobs))), flush=True)
        if "holdout" in parts:
            seeds = range(args.first_seed, args.first_seed + args.holdout_seeds)
            print(holdout_report(list(pool.map(holdout_job, seeds))), flush=True)
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
