"""Probability of best: exact quadrature vs a 100,000-draw Monte Carlo, 10 arms, in one run.

    .venv/bin/python bench/pob.py [--reps 7] [--draws 100000]

For each scenario (10 arms each) this measures, in this one process:
1. the time of `stats.probability_of_best` (exact, one shared Gauss-Legendre grid) and of
   `stats.monte_carlo_pob` with `--draws` draws per arm (the usual bandit shortcut), median of
   `--reps` repetitions, and their ratio;
2. each method's max absolute error against the independent adaptive `scipy.integrate.quad`
   reference of tests/stats/_reference.py (Monte Carlo: median over the repetitions, one seed each).
Prints ratios, not only times: absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openautotune.stats import (  # noqa: E402
    Posterior,
    beta_posterior,
    monte_carlo_pob,
    normal_posterior,
    probability_of_best,
)
from tests.stats._reference import reference_pob  # noqa: E402

ARMS = 10


def occurrence_arms(n: int, rate: float = 0.1) -> list[Posterior]:
    # True rates one standard error apart: a race that is still open, the case that matters.
    se = (rate * (1 - rate) / n) ** 0.5
    return [beta_posterior(round(n * (rate + (i - ARMS / 2) * 0.5 * se)), n) for i in range(ARMS)]


def value_arms(n: int, mean: float = 5.0, sd: float = 3.0) -> list[Posterior]:
    se = sd / n**0.5
    means = [mean + (i - ARMS / 2) * 0.5 * se for i in range(ARMS)]
    return [normal_posterior(n, n * m, (n - 1) * sd * sd + n * m * m) for m in means]


SCENARIOS: dict[str, Callable[[], list[Posterior]]] = {
    "occurrence, 10,000 units/arm": lambda: occurrence_arms(10_000),
    "occurrence, 1,000,000 units/arm": lambda: occurrence_arms(1_000_000),
    "value (Normal), 5,000 units/arm": lambda: value_arms(5_000),
    "value (Student-t), 12 units/arm": lambda: value_arms(12),
}


def timed(fn: Callable[..., np.ndarray], *args: object) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def run(name: str, posteriors: Sequence[Posterior], reps: int, draws: int) -> dict[str, float]:
    reference = reference_pob(posteriors)
    exact_times, mc_times, exact_errors, mc_errors = [], [], [], []
    for rep in range(reps):
        seconds, exact = timed(probability_of_best, posteriors)
        exact_times.append(seconds)
        exact_errors.append(float(np.max(np.abs(exact - reference))))
        seconds, estimate = timed(monte_carlo_pob, posteriors, draws, np.random.default_rng(rep))
        mc_times.append(seconds)
        mc_errors.append(float(np.max(np.abs(estimate - reference))))
    row = {
        "exact_ms": 1e3 * statistics.median(exact_times),
        "mc_ms": 1e3 * statistics.median(mc_times),
        "exact_err": max(exact_errors),  # identical every time: the exact method is deterministic
        "mc_err": statistics.median(mc_errors),
        "max_pob": float(np.max(reference)),
    }
    row["speedup"] = row["mc_ms"] / row["exact_ms"]
    print(
        f"| {name} | {row['max_pob']:.3f} | {row['exact_ms']:.1f} | {row['mc_ms']:.1f} | {row['speedup']:.1f}x "
        f"| {row['exact_err']:.1e} | {row['mc_err']:.1e} |",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--draws", type=int, default=100_000)
    args = parser.parse_args()
    # Warm-up: scipy's first calls load and cache code paths; that should not count against either side.
    warm = occurrence_arms(1_000)
    probability_of_best(warm)
    monte_carlo_pob(warm, 1_000, np.random.default_rng(0))
    print(f"{ARMS} arms; median of {args.reps} repetitions; Monte Carlo with {args.draws:,} draws per arm\n")
    print("| scenario | leader's PoB | exact ms | MC ms | MC time / exact time | exact max error | MC max error |")
    print("|---|---|---|---|---|---|---|")
    rows = [run(name, make(), args.reps, args.draws) for name, make in SCENARIOS.items()]
    speedups = [r["speedup"] for r in rows]
    error_ratio = [r["mc_err"] / max(r["exact_err"], 1e-17) for r in rows]
    print(
        f"\nMC time / exact time: {min(speedups):.1f}x to {max(speedups):.1f}x; "
        f"MC error / exact error: {min(error_ratio):.0e}x to {max(error_ratio):.0e}x"
    )


if __name__ == "__main__":
    main()
