"""A contextual autotune with units served by the exploration window's equal split, for the dashboard
tests (the engine's real updates then train on them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from openautotune.domain.autotune import Autotune
from openautotune.engine.update import update_autotune
from openautotune.service.autotunes import VariantInput
from openautotune.store.ingest_tables import units_table
from tests.engine.conftest import Env

# Success probabilities by (country, variant): a suits DE users, b suits FR users, c is poor for both.
RATES = {("DE", 0): 0.6, ("DE", 1): 0.1, ("DE", 2): 0.1, ("FR", 0): 0.1, ("FR", 1): 0.6, ("FR", 2): 0.1}


def traffic(env: Env, autotune: Autotune, rng: np.random.Generator, n: int, at_ms: int) -> None:
    """`n` units served by the exploration window's equal split (the engine fills in propensity 1/K), with
    outcomes drawn from RATES."""
    variants = autotune.definition.variants
    rows: list[dict[str, Any]] = []
    converted: list[tuple[str, int]] = []
    for i in range(n):
        k = int(rng.integers(0, len(variants)))
        country = "DE" if rng.random() < 0.5 else "FR"
        unit = f"u{at_ms}-{i}"
        rows.append(
            {
                "autotune_id": autotune.id,
                "run": autotune.run,
                "unit_id": unit,
                "variant_id": variants[k].id,
                "first_exposure_ms": at_ms + i,
                "allocation_version": autotune.allocation_version,
                "explore": False,
                "features": {"userID": unit, "custom": {"country": country, "age": int(rng.integers(18, 70))}},
                "propensity": None,
            }
        )
        if rng.random() < RATES[(country, k)]:
            converted.append((unit, at_ms + 10 * 60_000))
    with env.db.write() as conn:
        conn.execute(units_table.insert(), rows)
    env.events(converted)


def contextual(env: Env) -> Autotune:
    return env.create(
        "Recommendation",
        is_contextual=True,
        exploration_window="1hr",
        feature_list=["country", "age"],
        variants=[VariantInput(name, {"v": name}) for name in ("alpha", "beta", "gamma")],
    )


HOUR_MS = 3_600_000


def trained(env: Env, n: int = 900, seed: int = 7) -> Autotune:
    """A contextual autotune started at the env's clock, `n` units in its first hour, and two real engine
    updates: one in the exploration window and one after it (the models trained, the policy valued)."""
    autotune = contextual(env)
    start = autotune.started_at_ms
    assert start is not None
    traffic(env, autotune, np.random.default_rng(seed), n, start + 1000)
    assert update_autotune(env.db, env.clock, autotune.id, start + 30 * 60_000).updated
    assert update_autotune(env.db, env.clock, autotune.id, start + 3 * HOUR_MS).updated
    return autotune
