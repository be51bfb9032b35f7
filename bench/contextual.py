"""Contextual autotunes: the cost of one update and of one server-side decision, and learning at scale.

1. One update on N units (default 100,000) with 10 variants and 20 features (15 numeric, 5 categorical
   with 6 values each): our feature encoding from Statsig user dicts plus ten Bayesian logistic fits
   (MAP by Newton + Laplace covariance), against scikit-learn's ``LogisticRegression`` (lbfgs, L2,
   point estimate only) fitted per variant on the same design matrix, in the same run.
2. One server-side decision: encode one user, then Thompson sampling from a bank of 1,000 posterior
   draws with the exact propensity, against the published policy's argmax on the same context.
3. One engine update through the store (SQLite file, `--engine-units`, default 20,000 matured units with
   the same features): a contextual autotune against a plain one on the same units and events.
4. Scale (`bench/contextual_scale.py`, run from here with `--scale-hours`): hourly engine updates of a
   contextual autotune fed 10,000 units an hour, their time and the process's peak memory.
5. Accuracy and speed (`bench/contextual_scale.py`): incremental learning against a full refit on the
   same units, and against Vowpal Wabbit's ``--cb_explore_adf`` on the same examples.

    .venv/bin/python bench/contextual.py [--units 100000] [--repeats 3] [--engine-units 20000]
    .venv/bin/python bench/contextual.py --only scale --scale-hours 336 [--units-per-hour 10000]
    .venv/bin/python bench/contextual.py --only accuracy [--accuracy-hours 24]
    .venv/bin/python bench/contextual.py --only datasets
"""

from __future__ import annotations

import os

# One BLAS thread: on a busy 2-core machine OpenBLAS's threads spin against each other and small matrix
# products become up to 100x slower (measured: 46x2000 Gram matrix 74 ms threaded vs 0.4 ms single).
# Both sides of every ratio below run under the same setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import contextual_scale  # type: ignore[import-not-found]
import numpy as np
from sklearn.linear_model import LogisticRegression

from openautotune.clock import FixedClock
from openautotune.contextual.features import encode_training
from openautotune.contextual.models import GaussianPrior, ModelFit, fit_occurrence
from openautotune.contextual.policy import LinearPolicy, ThompsonBank
from openautotune.contextual.publish import sample_rate
from openautotune.domain.autotune import Actor
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.store.ingest_tables import events_table, units_table

VARIANTS = 10
NUMERIC = 15
CATEGORICAL = 5
LEVELS = 6


def make_units(n: int, rng: np.random.Generator) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    numeric = rng.normal(0, 1, (n, NUMERIC)) * rng.uniform(0.5, 20, NUMERIC) + rng.uniform(-5, 50, NUMERIC)
    levels = rng.integers(0, LEVELS, (n, CATEGORICAL))
    users = [
        {
            "userID": f"u{i}",
            "custom": {
                **{f"n{j}": round(float(numeric[i, j]), 3) for j in range(NUMERIC)},
                **{f"c{j}": f"level{levels[i, j]}" for j in range(CATEGORICAL)},
            },
        }
        for i in range(n)
    ]
    actions = rng.integers(0, VARIANTS, n)
    standard = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    effects = rng.normal(0, 0.4, (VARIANTS, NUMERIC))
    logit = -2.0 + np.sum(standard * effects[actions], axis=1) + 0.3 * (levels[:, 0] == actions % LEVELS)
    rewards = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return users, actions, rewards


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--engine-units", type=int, default=20_000)
    parser.add_argument("--only", choices=["classic", "scale", "accuracy", "datasets"], default=None)
    parser.add_argument("--scale-hours", type=int, default=336)
    parser.add_argument("--units-per-hour", type=int, default=10_000)
    parser.add_argument("--accuracy-hours", type=int, default=24)
    parser.add_argument("--scale-budget", type=float, default=float("inf"), help="stop the scale run after this many s")
    args = parser.parse_args()
    if args.only == "scale":
        contextual_scale.scale(args.scale_hours, args.units_per_hour, args.scale_budget)
        return
    if args.only == "datasets":
        contextual_scale.datasets()
        return
    if args.only == "accuracy":
        contextual_scale.accuracy(args.accuracy_hours, args.units_per_hour)
        return
    rng = np.random.default_rng(0)
    users, actions, rewards = make_units(args.units, rng)

    encode_s, (encoding, design) = timed(lambda: encode_training(users), args.repeats)
    prior = GaussianPrior.default(encoding.n_columns, base_rate=float(rewards.mean()))

    def ours() -> list[ModelFit]:
        return [fit_occurrence(design[actions == k], rewards[actions == k], prior) for k in range(VARIANTS)]

    def sklearn() -> list[LogisticRegression]:
        return [
            LogisticRegression(C=1.0, max_iter=1000).fit(design[actions == k, 1:], rewards[actions == k])
            for k in range(VARIANTS)
        ]

    fit_s, fits = timed(ours, args.repeats)
    sklearn_s, models = timed(sklearn, args.repeats)
    agreement = np.mean(
        [np.corrcoef(fit.mean[1:], model.coef_[0])[0, 1] for fit, model in zip(fits, models, strict=True)]
    )
    print(f"units {args.units}, variants {VARIANTS}, features {NUMERIC + CATEGORICAL}, columns {encoding.n_columns}")
    print(f"encode user dicts           {encode_s:8.3f} s")
    print(f"our 10 Bayesian fits        {fit_s:8.3f} s  (Newton steps: {[f.iterations for f in fits]})")
    print(f"sklearn 10 LogisticRegr.    {sklearn_s:8.3f} s")
    print(f"ratio fits / sklearn        {fit_s / sklearn_s:8.2f}x  (coefficient correlation {agreement:.4f})")
    print(f"ratio encode+fits / sklearn {(encode_s + fit_s) / sklearn_s:8.2f}x")

    policy = LinearPolicy.from_fits(encoding, fits, sample_rate(args.units, VARIANTS))
    bank = ThompsonBank.build(fits, rng, policy.sample_rate, size=1000)
    sample = [users[i] for i in rng.integers(0, args.units, args.decisions)]
    contexts = encoding.transform(sample)

    def thompson() -> None:
        for row in contexts:
            bank.choose(row, rng)

    def published() -> None:
        for row in contexts:
            policy.greedy(row[None, :])

    def encode_one() -> None:
        for user in sample:
            encoding.transform_one(user)

    thompson_s, _ = timed(thompson, args.repeats)
    published_s, _ = timed(published, args.repeats)
    encode_one_s, _ = timed(encode_one, args.repeats)
    per = 1e6 / args.decisions
    print(f"encode one user             {encode_one_s * per:8.1f} us/decision")
    print(f"Thompson (1000 draws)       {thompson_s * per:8.1f} us/decision (with exact propensity)")
    print(f"published argmax            {published_s * per:8.1f} us/decision")
    print(f"ratio Thompson / argmax     {thompson_s / published_s:8.2f}x")
    engine_update(args.engine_units)


def engine_update(n: int) -> None:
    """One update of a contextual and of a plain autotune over the same n matured units (SQLite file)."""
    rng = np.random.default_rng(1)
    users, actions, rewards = make_units(n, rng)
    with tempfile.TemporaryDirectory() as directory:
        db = Database.from_url(f"sqlite:///{directory}/bench.db")
        migrate.upgrade(db.engine)
        clock = FixedClock(1_767_225_600_000)
        actor = Actor(id="bench", name="bench")
        seconds = {}
        for name, contextual in (("plain", False), ("contextual", True)):
            fields = {
                "name": name,
                "variants": [VariantInput(f"v{k}", {"k": k}) for k in range(VARIANTS)],
                "success_event": f"goal_{name}",
                "exploration_window": "1hr",
                "attribution_window": "1hr",
                "winner_threshold": "99%",
                "is_contextual": contextual,
            }
            autotune = autotune_service.start(db, clock, actor, autotune_service.create(db, clock, actor, fields).id)
            start = autotune.started_at_ms or 0
            variant_ids = [v.id for v in autotune.definition.variants]
            with db.write() as conn:
                conn.execute(
                    units_table.insert(),
                    [
                        {
                            "autotune_id": autotune.id,
                            "run": autotune.run,
                            "unit_id": user["userID"],
                            "variant_id": variant_ids[int(actions[i])],
                            "first_exposure_ms": start + i,
                            "allocation_version": autotune.allocation_version,
                            "explore": True,
                            "features": user,
                            "propensity": None,
                        }
                        for i, user in enumerate(users)
                    ],
                )
                conn.execute(
                    events_table.insert(),
                    [
                        {
                            "id_type": "userID",
                            "unit_id": users[i]["userID"],
                            "event_name": f"goal_{name}",
                            "value": None,
                            "metadata": None,
                            "time_ms": start + i + 1,
                            "received_ms": start + i + 1,
                            "dedup_key": f"{name}-{i}",
                        }
                        for i in np.flatnonzero(rewards)
                    ],
                )
            began = time.perf_counter()
            assert update_autotune(db, clock, autotune.id, start + 3 * 3_600_000).updated
            seconds[name] = time.perf_counter() - began
        db.dispose()
    print(f"engine update, {n} units: plain {seconds['plain']:.3f} s, contextual {seconds['contextual']:.3f} s")
    print(f"ratio contextual / plain update {seconds['contextual'] / seconds['plain']:8.2f}x")


if __name__ == "__main__":
    main()
