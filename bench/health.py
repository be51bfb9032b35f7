"""Health checks measured on the real engine through the simulator (docs/engine.md, "Health").

    .venv/bin/python bench/health.py [--seeds 100] [--healthy-seeds 100] [--guardrail-seeds 100]
                                     [--workers 2] [--write-docs docs/engine.md]

Every run is one simulated autotune (`openautotune.simulation.run_simulation`, direct traffic, a fresh
SQLite file): 1,000 users an hour, a 24-hour exploration window, a 1-hour attribution window, hourly
updates by the engine, default estimator and winner rule, the default SRM threshold (0.001).

- broken client: arms 5% / 5.5%; a client loses 10% of arm_1's exposures (the units never reach the
  server). Is the sample-ratio warning set at an update within the first 24 simulated hours?
- healthy: two identical arms at 5% for 14 days (an A/A test runs longest: it rarely finds a winner),
  with an `error` guardrail at 5% on both (lower is better, 5% allowed harm). A false alarm is a
  sample-ratio warning at ANY update; a false exclusion is a guardrail exclusion at any update.
- statistics only (`--null-seeds`, fast): the same sample-ratio check (stats/srm.py) on multinomial
  counts of 1,000 units an hour for 14 days with weights redrawn every hour after the first 24
  (Dirichlet(2, 2)), as a bandit would publish them: how often does a healthy run alarm at any look,
  with the fixed-sample p-value and with the look-corrected one the engine uses?
- guardrail: arm_1 wins on the success event (5% vs 6%) but raises the `error` event by 20% (10% vs
  12% of units; 5% harm allowed). Is arm_1 excluded at an update within 2 days? `guardrail-rare`: the
  same with a rarer error event (5% vs 6%), which needs more units for the same evidence.
"""

from __future__ import annotations

import argparse
import ast
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openautotune.clock import MINUTE_MS
from openautotune.domain.autotune import Allocation, Autotune
from openautotune.domain.guardrails import Guardrail
from openautotune.simulation.bandit import Conversions, Exposures, HourReport, SimulationConfig, Traffic
from openautotune.simulation.wiring import run_simulation
from openautotune.store import attribution
from openautotune.store.database import Database

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- health:begin -->", "<!-- health:end -->"
ERRORS = Guardrail("error", max_relative_harm=0.05, higher_is_better=False)


class HealthTraffic:
    """Wraps the simulator's traffic: loses a share of one variant's exposures (a broken client) and
    logs a guardrail `error` event for each unit with its variant's error rate."""

    def __init__(
        self,
        db: Database,
        inner: Traffic,
        seed: int,
        *,
        drop_arm: int | None = None,
        drop_share: float = 0.0,
        error_rates: Sequence[float] = (),
    ) -> None:
        self._db = db
        self._inner = inner
        self._rng = np.random.default_rng([seed, 15])
        self._drop_arm = drop_arm
        self._drop_share = drop_share
        self._error_rates = tuple(error_rates)

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        return self._inner.assign(autotune, allocation, unit_ids)

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        index = {variant.id: k for k, variant in enumerate(autotune.definition.variants)}
        arms = np.array([index[v] for v in exposures.variant_ids])
        if self._error_rates:
            rates = np.asarray(self._error_rates)[arms]
            hit = np.flatnonzero(self._rng.random(len(arms)) < rates)
            delays = self._rng.integers(0, 30 * MINUTE_MS, size=len(hit))
            events: list[tuple[object, ...]] = [
                (
                    "userID",
                    exposures.unit_ids[i],
                    "error",
                    None,
                    None,
                    exposures.times_ms[i] + int(d),
                    now_ms,
                    f"e{i}:{exposures.unit_ids[i]}",
                )
                for i, d in zip(hit, delays, strict=True)
            ]
            with self._db.write() as conn:
                attribution.insert_events(conn, events)
        if self._drop_arm is not None:
            lost = (arms == self._drop_arm) & (self._rng.random(len(arms)) < self._drop_share)
            keep = np.flatnonzero(~lost)
            exposures = Exposures(
                [exposures.unit_ids[i] for i in keep],
                [exposures.variant_ids[i] for i in keep],
                [exposures.versions[i] for i in keep],
                [exposures.times_ms[i] for i in keep],
            )
        self._inner.record(autotune, exposures, conversions, now_ms)


@dataclass(frozen=True)
class Job:
    scenario: str
    seed: int


def _first_hour(reports: list[HourReport], flagged: Any) -> int | None:
    for report in reports:
        if report.health is not None and flagged(report.health):
            return report.hour + 1
    return None


def run_job(job: Job) -> dict[str, Any]:
    reports: list[HourReport] = []
    started = time.perf_counter()
    if job.scenario == "broken":
        config = SimulationConfig(arms=(0.05, 0.055), hours=24, seed=job.seed)
        options: dict[str, Any] = {}

        def wrap(db: Database, inner: Traffic) -> Traffic:
            return HealthTraffic(db, inner, job.seed, drop_arm=1, drop_share=0.10)
    elif job.scenario == "healthy":
        config = SimulationConfig(arms=(0.05, 0.05), hours=14 * 24, seed=job.seed)
        options = {"guardrails": (ERRORS,)}

        def wrap(db: Database, inner: Traffic) -> Traffic:
            return HealthTraffic(db, inner, job.seed, error_rates=(0.05, 0.05))
    else:
        config = SimulationConfig(arms=(0.05, 0.06), hours=48, seed=job.seed)
        options = {"guardrails": (ERRORS,)}
        rates = (0.10, 0.12) if job.scenario == "guardrail" else (0.05, 0.06)

        def wrap(db: Database, inner: Traffic) -> Traffic:
            return HealthTraffic(db, inner, job.seed, error_rates=rates)

    result = run_simulation(config, through_sdk=False, on_hour=reports.append, wrap_traffic=wrap, **options)
    return {
        "scenario": job.scenario,
        "seed": job.seed,
        "srmHour": _first_hour(reports, lambda h: h["srm"].get("warning") is not None),
        "excludedHour": _first_hour(reports, lambda h: bool(h.get("excluded"))),
        "winner": result.winner,
        "decisionHour": result.hours_to_winner,
        "updates": sum(1 for r in reports if r.health is not None),
        "seconds": time.perf_counter() - started,
    }


def null_srm(seeds: int, hours: int = 14 * 24, threshold: float = 0.001) -> dict[str, Any]:
    """Healthy runs at the statistics level: any-look alarm rates of both p-values."""
    from openautotune.stats.srm import shares_from_thresholds, srm_test

    rng = np.random.default_rng(2026)
    fixed_alarms = sequential_alarms = 0
    for _ in range(seeds):
        counts: list[np.ndarray] = []
        shares: list[tuple[float, ...]] = []
        lowest, fixed = 1.0, False
        for hour in range(hours):
            weights = np.array([0.5, 0.5]) if hour < 24 else rng.dirichlet([2.0, 2.0])
            share = shares_from_thresholds([round(1000 * weights[0]), 1000])
            counts.append(rng.multinomial(1000, share))
            shares.append(share)
            test = srm_test(counts, shares)
            fixed = fixed or (test.fixed_p_value or 1.0) < threshold
            lowest = min(lowest, test.sequential_p_value or 1.0)
        fixed_alarms += fixed
        sequential_alarms += lowest < threshold
    return {"scenario": "null", "seeds": seeds, "fixed": fixed_alarms, "sequential": sequential_alarms}


def null_equal(runs: int, hours: int = 14 * 24, threshold: float = 0.001) -> dict[str, Any]:
    """Healthy runs with constant equal weights (then the check is Pearson's chi-square), vectorised
    over many runs: the any-look alarm rate of the fixed-sample p-value alone, for 2, 3 and 5 variants."""
    from scipy.stats import chi2

    rng = np.random.default_rng(2027)
    rates = {}
    for k in (2, 3, 5):
        counts = rng.multinomial(1000, [1.0 / k] * k, size=(runs, hours)).cumsum(axis=1)
        expected = counts.sum(axis=2, keepdims=True) / k
        statistic = ((counts - expected) ** 2 / expected).sum(axis=2)
        rates[k] = float((chi2.sf(statistic, k - 1) < threshold).any(axis=1).mean())
    return {"scenario": "null-equal", "runs": runs, "rates": rates}


def _share(values: list[bool]) -> str:
    return f"{sum(values)}/{len(values)} ({sum(values) / len(values):.0%})" if values else "—"


def _hours(values: list[int]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(ordered):g}, 95th pct {p95}, max {ordered[-1]}"


def tables(records: list[dict[str, Any]]) -> str:
    by: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by.setdefault(record["scenario"], []).append(record)
    broken, healthy, guarded = by.get("broken", []), by.get("healthy", []), by.get("guardrail", [])
    rare = by.get("guardrail-rare", [])
    null = by.get("null", [])
    equal = by.get("null-equal", [])
    rows = [
        "| Scenario | Seeds | Target | Measured | Hour flagged |",
        "|---|---|---|---|---|",
        f"| Broken client: 10% of arm_1's exposures lost (5% / 5.5%) | {len(broken)} | SRM warning within 24 h "
        f"in >= 95% | {_share([r['srmHour'] is not None for r in broken])} | "
        f"{_hours([r['srmHour'] for r in broken if r['srmHour'] is not None])} |",
        f"| Healthy A/A (5% / 5%), 14 days, full engine | {len(healthy)} | SRM false alarm at any update in <= 1% | "
        f"{_share([r['srmHour'] is not None for r in healthy])} | "
        f"{_hours([r['srmHour'] for r in healthy if r['srmHour'] is not None])} |",
        *(
            f"| Statistics only: healthy 2-variant counts, 1,000 units/h, weights redrawn hourly, 14 days | "
            f"{n['seeds']} | false alarm at any update in <= 1% | look-corrected p (the engine's): "
            f"{n['sequential']}/{n['seeds']} ({n['sequential'] / n['seeds']:.1%}); fixed-sample chi-square p: "
            f"{n['fixed']}/{n['seeds']} ({n['fixed'] / n['seeds']:.1%}) | — |"
            for n in null
        ),
        *(
            f"| Statistics only: equal weights (Pearson), 14 days, fixed-sample p-value alone | {e['runs']:,} | — | "
            + ", ".join(f"{k} variants {rate:.1%}" for k, rate in e["rates"].items())
            + " of runs alarm at some update | — |"
            for e in equal
        ),
        f"| Same engine runs, equal `error` guardrail (5% / 5%, 5% harm allowed) | {len(healthy)} | (false exclusions, "
        f"reported) | {_share([r['excludedHour'] is not None for r in healthy])} | "
        f"{_hours([r['excludedHour'] for r in healthy if r['excludedHour'] is not None])} |",
        f"| Guardrail: arm_1 wins on success (5% / 6%) but +20% `error` (10% / 12%, 5% allowed) | {len(guarded)} "
        f"| excluded within 48 h in >= 95% | {_share([r['excludedHour'] is not None for r in guarded])} | "
        f"{_hours([r['excludedHour'] for r in guarded if r['excludedHour'] is not None])} |",
        f"| Same with a rarer `error` event (5% / 6%) | {len(rare)} "
        f"| (reported) | {_share([r['excludedHour'] is not None for r in rare])} | "
        f"{_hours([r['excludedHour'] for r in rare if r['excludedHour'] is not None])} |",
    ]
    wrong = sum(1 for r in guarded if r["winner"] == 1)
    wrong_rare = sum(1 for r in rare if r["winner"] == 1)
    timed = [r["seconds"] for r in records if "seconds" in r]
    seconds = statistics.mean(timed) if timed else 0.0
    rows.append("")
    rows.append(
        f"The harmful arm_1 was declared winner (before any exclusion) in {wrong} of {len(guarded)} guardrail runs "
        f"and {wrong_rare} of {len(rare)} with the rarer event. "
        f"Mean wall time per run {seconds:.1f} s (2-core machine shared with other jobs)."
    )
    return "\n".join(rows)


def write_docs(path: Path, text: str) -> None:
    content = path.read_text()
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    path.write_text(content[:start] + "\n" + text + "\n" + content[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="broken-client seeds")
    parser.add_argument("--healthy-seeds", type=int, default=100)
    parser.add_argument("--guardrail-seeds", type=int, default=100)
    parser.add_argument("--rare-seeds", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--null-seeds", type=int, default=0, help="statistics-only healthy runs (fast)")
    parser.add_argument("--write-docs", type=Path, default=None)
    parser.add_argument(
        "--from-log", type=Path, action="append", default=[], help="also tabulate records printed by earlier runs"
    )
    args = parser.parse_args(argv)
    jobs = (
        [Job("broken", s) for s in range(args.seeds)]
        + [Job("guardrail", s) for s in range(args.guardrail_seeds)]
        + [Job("guardrail-rare", s) for s in range(args.rare_seeds)]
        + [Job("healthy", s) for s in range(args.healthy_seeds)]
    )
    records: list[dict[str, Any]] = [
        ast.literal_eval(line)
        for path in args.from_log
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]
    if args.null_seeds:
        records.append(null_srm(args.null_seeds))
        records.append(null_equal(20 * args.null_seeds))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
        for record in pool.map(run_job, jobs):
            records.append(record)
            print(record, file=sys.stderr, flush=True)
    text = tables(records)
    print(text)
    if args.write_docs is not None:
        write_docs(args.write_docs, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
