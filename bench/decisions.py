"""Operating characteristics of the winner rules, measured on the real engine through the simulator.

    .venv/bin/python bench/decisions.py [--seeds 20] [--workers 2] [--days 14] [--grid main,thresholds,simpson]
                                        [--cache bench/.decisions.jsonl] [--write-docs docs/engine.md]

Every run is one simulated autotune (`openautotune.simulation.run_simulation`, direct traffic, a fresh
SQLite file): 1,000 users an hour, a 24-hour exploration window, a 1-hour attribution window, hourly
updates by the engine, the default estimator. Grids:

- main: 2, 3 and 5 identical variants at 5% (every winner is a false winner), 5% / 5.5% / 6.5%, and
  5% vs 5.75%, at a 95% threshold, for the default rule (`sequential`) and Statsig's (`statsig`);
- thresholds: the same for 2 identical variants and 5% / 5.5% / 6.5% at 80%, 90% and 99%;
- simpson: the base rate doubles on day one and falls back (true lift constant: 5% vs 5.5%), default
  rule: is the truth inside each variant's 95% interval, and how far off would the pooled rate be?

`--scenarios` keeps only the named scenarios of a grid (comma-separated names as in the tables), and
`--mixture 0.1,0.3,1.0` / `--floor 0.3` run the default rule with another mixture grid or traffic
floor than `stats/winner_rule.py`'s (how the defaults were chosen; give such runs their own `--cache`).

Each finished run is appended to `--cache` (JSON lines), so an interrupted bench resumes, and the
tables are always made from everything measured so far. `--write-docs` replaces the part of the file
between `<!-- decisions:begin -->` and `<!-- decisions:end -->` with the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openautotune.simulation.bandit import SimulationConfig
from openautotune.simulation.wiring import result_record, run_simulation

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- decisions:begin -->", "<!-- decisions:end -->"
RULES = ("sequential", "statsig")
IDENTICAL = {"2 identical": (0.05, 0.05), "3 identical": (0.05,) * 3, "5 identical": (0.05,) * 5}
DIFFERENT = {"5% / 5.5% / 6.5%": (0.05, 0.055, 0.065), "5% vs 5.75%": (0.05, 0.0575)}
# A conversion counts only inside the 1-hour attribution window: with the simulator's exponential delays
# of mean 15 minutes, a share 1 - exp(-60/15) of converters; that is the rate the engine estimates.
COUNTED_SHARE = 1.0 - math.exp(-60.0 / 15.0)
SIMPSON = ("simpson: day-one spike x2, 5% vs 5.5%", (0.05, 0.055), 2.0)


@dataclass(frozen=True)
class Job:
    scenario: str
    arms: tuple[float, ...]
    rule: str
    threshold: int
    seed: int
    days: int
    spike: float = 1.0
    mixture: tuple[float, ...] | None = None  # None: the rule's own MIXTURE_RELATIVE_EFFECTS
    floor: float | None = None  # None: the rule's own TRAFFIC_FLOOR

    @property
    def key(self) -> str:
        parts: list[object] = [self.scenario, self.rule, self.threshold, self.seed, self.days, self.spike]
        if self.mixture is not None or self.floor is not None:
            parts += [self.mixture, self.floor]
        return json.dumps(parts)


def jobs_for(grids: Iterable[str], seeds: int, days: int) -> list[Job]:
    jobs: list[Job] = []
    for grid in grids:
        if grid == "simpson":
            name, arms, spike = SIMPSON
            jobs += [Job(name, arms, "sequential", 95, seed, days, spike) for seed in range(seeds)]
            continue
        scenarios = {**IDENTICAL, **DIFFERENT}
        if grid == "thresholds":
            scenarios = {name: scenarios[name] for name in ("2 identical", "5% / 5.5% / 6.5%")}
        thresholds = (95,) if grid == "main" else (80, 90, 99)
        for name, arms in scenarios.items():
            jobs += [
                Job(name, arms, rule, threshold, seed, days)
                for threshold in thresholds
                for rule in RULES
                for seed in range(seeds)
            ]
    return jobs


def run_job(job: Job) -> dict[str, Any]:
    from openautotune.stats import winner_rule

    # Each worker process runs jobs of one bench invocation, so setting the rule's constants is safe.
    if job.mixture is not None:
        winner_rule.MIXTURE_RELATIVE_EFFECTS = job.mixture  # type: ignore[misc]
    if job.floor is not None:
        winner_rule.TRAFFIC_FLOOR = job.floor  # type: ignore[misc]
    config = SimulationConfig(arms=job.arms, hours=24 * job.days, seed=job.seed, spike=job.spike)
    began = time.perf_counter()
    result = run_simulation(config, through_sdk=False, winner_threshold=f"{job.threshold}%", winner_rule=job.rule)
    record = result_record(result)
    record.update(
        key=job.key,
        scenario=job.scenario,
        rule=job.rule,
        threshold=job.threshold,
        days=job.days,
        spike=job.spike,
        arms=list(job.arms),
        seconds=round(time.perf_counter() - began, 2),
        analysedHours=result.analysed_hours,
        final=[
            {"mean": f.mean, "ciLow": f.ci_low, "ciHigh": f.ci_high, "units": f.units, "successes": f.successes}
            for f in result.final
        ],
    )
    return record


def load(cache: Path) -> list[dict[str, Any]]:
    if not cache.exists():
        return []
    return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]


def run(jobs: list[Job], cache: Path, workers: int) -> None:
    done = {record["key"] for record in load(cache)}
    todo = [job for job in jobs if job.key not in done]
    # Seed by seed, so that a bench cut short has measured every scenario on as many seeds.
    todo.sort(key=lambda job: job.seed)
    print(f"{len(todo)} runs to do ({len(jobs) - len(todo)} cached)", file=sys.stderr)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, cache.open("a") as out:
        futures = [pool.submit(run_job, job) for job in todo]
        for count, future in enumerate(as_completed(futures), 1):
            record = future.result()
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(
                f"{count}/{len(todo)} {record['key']} winner={record['winner']} h={record['decisionHour']}",
                file=sys.stderr,
            )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, pattern: str = "{:.0f}") -> str:
    return "–" if value is None else pattern.format(value)


def decision_table(records: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["spike"] == 1.0:
            groups[(record["scenario"], record["threshold"], record["rule"])].append(record)
    order = [*IDENTICAL, *DIFFERENT]
    lines = [
        "| scenario | threshold | rule | seeds | winner declared | best variant picked | median decision hour "
        "| mean regret | time vs statsig | regret vs statsig |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1], RULES.index(k[2])))
    for scenario, threshold, rule in keys:
        runs = sorted(groups[(scenario, threshold, rule)], key=lambda r: r["seed"])
        identical = scenario in IDENTICAL
        declared = sum(1 for r in runs if r["winner"] is not None)
        best = sum(1 for r in runs if r["winner"] is not None and r["winner"] == r["best"])
        hours = [r["decisionHour"] for r in runs if r["decisionHour"] is not None]
        regret = statistics.fmean(r["regret"] for r in runs)
        baseline = groups.get((scenario, threshold, "statsig"), [])
        base_hours = [r["decisionHour"] for r in baseline if r["decisionHour"] is not None]
        base_regret = statistics.fmean(r["regret"] for r in baseline) if baseline else None
        median, base_median = _median(hours), _median(base_hours)
        time_ratio = median / base_median if median is not None and base_median else None
        regret_ratio = regret / base_regret if base_regret else None
        lines.append(
            f"| {scenario} | {threshold}% | {rule} | {len(runs)} "
            f"| {declared}/{len(runs)} ({100 * declared / len(runs):.0f}%){' false' if identical else ''} "
            f"| {'–' if identical else f'{best}/{len(runs)} ({100 * best / len(runs):.0f}%)'} "
            f"| {_fmt(median)} | {'–' if identical else f'{regret:.0f}'} "
            f"| {'–' if identical else _fmt(time_ratio, '{:.2f}x')} "
            f"| {'–' if identical else _fmt(regret_ratio, '{:.2f}x')} |"
        )
    return "\n".join(lines)


def simpson_table(records: list[dict[str, Any]]) -> str:
    runs = [r for r in records if r["spike"] != 1.0 and r["final"]]
    if not runs:
        return "(not measured)"
    lines = [
        "| variant | true rate (analysed hours, counted in the window) | period-weighted mean "
        "| truth inside its 95% interval | pooled rate | pooled bias |",
        "|---|---|---|---|---|---|",
    ]
    for k in range(len(runs[0]["arms"])):
        truths, means, covered, pooled = [], [], 0, []
        for r in runs:
            hours = r["analysedHours"]
            factor = sum(r["spike"] if h < 24 else 1.0 for h in range(hours)) / hours
            truth = r["arms"][k] * factor * COUNTED_SHARE
            final = r["final"][k]
            truths.append(truth)
            means.append(final["mean"])
            covered += final["ciLow"] <= truth <= final["ciHigh"]
            pooled.append(final["successes"] / final["units"] - truth)
        lines.append(
            f"| arm_{k} ({100 * runs[0]['arms'][k]:g}%) | {statistics.fmean(truths):.4f} "
            f"| {statistics.fmean(means):.4f} | {covered}/{len(runs)} ({100 * covered / len(runs):.0f}%) "
            f"| {statistics.fmean(truths) + statistics.fmean(pooled):.4f} | {statistics.fmean(pooled):+.4f} |"
        )
    return "\n".join(lines)


def write_docs(path: Path, command: str, records: list[dict[str, Any]]) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section")
    body = "\n\n".join(
        [
            BEGIN,
            f"Measured with `{command}` ({len(records)} runs).",
            decision_table(records),
            "Simpson case (default rule, 95%):",
            simpson_table(records),
            END,
        ]
    )
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + body + rest.split(END, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--grid", default="main,simpson,thresholds")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".decisions.jsonl")
    parser.add_argument("--write-docs", type=Path, default=None)
    parser.add_argument("--tables-only", action="store_true", help="Make the tables from the cache, run nothing")
    parser.add_argument("--scenarios", default="", help="Only these scenarios (comma-separated names)")
    parser.add_argument("--mixture", default="", help="Mixture grid of the default rule, e.g. 0.1,0.3,1.0")
    parser.add_argument("--floor", type=float, default=None, help="Traffic floor of the default rule, e.g. 0.3")
    args = parser.parse_args()
    grids = [g for g in args.grid.split(",") if g]
    if not args.tables_only:
        jobs = jobs_for(grids, args.seeds, args.days)
        if args.scenarios:
            wanted = {name.strip() for name in args.scenarios.split(",")}
            jobs = [job for job in jobs if job.scenario in wanted]
        mixture = tuple(float(x) for x in args.mixture.split(",")) if args.mixture else None
        if mixture is not None or args.floor is not None:
            jobs = [dataclasses.replace(job, mixture=mixture, floor=args.floor) for job in jobs]
        run(jobs, args.cache, args.workers)
    records = load(args.cache)
    print(decision_table(records))
    print()
    print(simpson_table(records))
    if args.write_docs is not None:
        command = "python bench/decisions.py " + " ".join(sys.argv[1:])
        write_docs(args.write_docs, command, records)


if __name__ == "__main__":
    main()
