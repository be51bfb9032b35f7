"""The contextual part of an update (spec: contextual.md): per-unit data -> models -> published policy.

Called by `update._update_locked` for autotunes with `isContextual: true`, inside the update's one
transaction:

1. read every matured unit of the run with its features and outcome (`store.contextual`);
2. give each unit without a propensity the one its serving policy had: the published policy of the
   version it names (`(1 - s) 1[k = best] + s q_k` from that version's scores), or `1 / K` when it was
   served by the exploration window's equal split (no policy for its version);
3. after the exploration window: encode the features, fit one Bayesian model per variant, publish the
   SDK weights (`cmab_configs[...].config`), the explore share and the server's model under the new
   allocation version, and serve SDKs that cannot score (specs v1) the policy's marginal shares as
   plain weights;
4. record per-variant units, outcomes and coefficients, and the off-policy value of the personalized
   policy against the best single variant and a uniform split.

A contextual autotune never declares a winner: the personalized policy is the product.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from sqlalchemy.engine import Connection

from openautotune.contextual.features import CategoricalFeature, Encoding, NumericFeature, encode_training
from openautotune.contextual.models import (
    GaussianPrior,
    ModelFit,
    NormalInverseGammaPrior,
    fit_occurrence,
    fit_value,
)
from openautotune.contextual.offpolicy import Logs, PolicyValue, compare
from openautotune.contextual.policy import LinearPolicy, ThompsonBank
from openautotune.contextual.publish import cmab_config, raw_weights, sample_rate
from openautotune.domain.autotune import Autotune, Status
from openautotune.store import autotunes as autotune_store
from openautotune.store import contextual as store
from openautotune.store import updates
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore

BOOTSTRAP: Final = 200
BANK_SIZE: Final = 1000
FULL_COVARIANCE_MAX_COLUMNS: Final = 200


@dataclass(frozen=True)
class Learned:
    """What the contextual step decided; `weights` None keeps the engine's own weights."""

    weights: tuple[float, ...] | None
    sample_rate: float
    config: dict[str, Any] | None
    model: dict[str, Any] | None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def publishes(self) -> bool:
        return self.config is not None


# --- the server's model as JSON ------------------------------------------------------------------


def encoding_to_json(encoding: Encoding) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for feature in encoding.features:
        if isinstance(feature, NumericFeature):
            out.append({"name": feature.name, "kind": "numeric", "centre": feature.centre, "scale": feature.scale})
        else:
            out.append(
                {
                    "name": feature.name,
                    "kind": "categorical",
                    "values": list(feature.values),
                    "centres": list(feature.centres),
                }
            )
    return out


def encoding_from_json(items: Sequence[dict[str, Any]]) -> Encoding:
    features: list[NumericFeature | CategoricalFeature] = []
    for item in items:
        if item["kind"] == "numeric":
            features.append(NumericFeature(str(item["name"]), float(item["centre"]), float(item["scale"])))
        else:
            features.append(
                CategoricalFeature(
                    str(item["name"]), tuple(str(v) for v in item["values"]), tuple(float(c) for c in item["centres"])
                )
            )
    return Encoding(tuple(features))


@dataclass(frozen=True)
class ServerModel:
    """A published version rebuilt: encoding, the published policy, and posterior draws for Thompson."""

    encoding: Encoding
    policy: LinearPolicy
    variant_ids: tuple[str, ...]
    means: np.ndarray
    covariances: np.ndarray

    def bank(self, seed: int, size: int = BANK_SIZE) -> ThompsonBank:
        """The Thompson bank of this version: draws from N(mean, covariance) per variant, seeded."""
        rng = np.random.default_rng(seed)
        draws = np.stack(
            [
                rng.multivariate_normal(mean, cov, size=size, method="cholesky")
                for mean, cov in zip(self.means, self.covariances, strict=True)
            ],
            axis=1,
        )
        draws.setflags(write=False)
        policy = self.policy
        return ThompsonBank(draws, _explore(policy.records), policy.sample_rate, policy.higher_is_better)


def _explore(records: np.ndarray) -> np.ndarray:
    raw = 1.0 / (records.astype(np.float64) + 1.0)
    return np.asarray(raw / raw.sum(), dtype=np.float64)


def model_to_json(
    encoding: Encoding, variant_ids: Sequence[str], fits: Sequence[ModelFit], policy: LinearPolicy
) -> dict[str, Any]:
    full = encoding.n_columns <= FULL_COVARIANCE_MAX_COLUMNS
    return {
        "encoding": encoding_to_json(encoding),
        "variantIds": list(variant_ids),
        "means": [fit.mean.tolist() for fit in fits],
        # Beyond FULL_COVARIANCE_MAX_COLUMNS columns only the variances are kept (documented).
        "covariances": [fit.covariance.tolist() if full else np.diag(fit.covariance).tolist() for fit in fits],
        "alphas": policy.alphas.tolist(),
        "records": policy.records.tolist(),
        "sampleRate": policy.sample_rate,
        "higherIsBetter": policy.higher_is_better,
    }


def model_from_json(model: dict[str, Any]) -> ServerModel:
    encoding = encoding_from_json(model["encoding"])
    means = np.array(model["means"], dtype=np.float64).reshape(len(model["variantIds"]), encoding.n_columns)
    covariances = [np.array(c, dtype=np.float64) for c in model["covariances"]]
    full = np.stack([c if c.ndim == 2 else np.diag(c) for c in covariances])
    policy = LinearPolicy(
        weights=means,
        alphas=np.array(model["alphas"], dtype=np.float64),
        records=np.array(model["records"], dtype=np.int64),
        sample_rate=float(model["sampleRate"]),
        higher_is_better=bool(model["higherIsBetter"]),
    )
    return ServerModel(encoding, policy, tuple(model["variantIds"]), means, full)


# --- the update step ----------------------------------------------------------------------------


def _propensities(
    units: Sequence[store.UnitRow], index: dict[str, int], policies: dict[int, store.Policy], k: int
) -> dict[str, float]:
    """Propensities for the units that have none, from the policy of the version they name."""
    missing: dict[int | None, list[store.UnitRow]] = {}
    for unit in units:
        if unit.propensity is None:
            missing.setdefault(unit.allocation_version, []).append(unit)
    out: dict[str, float] = {}
    for version, group in missing.items():
        policy = policies.get(version) if version is not None else None
        if policy is None:
            out.update({unit.unit_id: 1.0 / k for unit in group})
            continue
        server = model_from_json(policy.model)
        known = [unit for unit in group if unit.variant_id in server.variant_ids]
        out.update({unit.unit_id: 1.0 / k for unit in group if unit.variant_id not in server.variant_ids})
        if not known:
            continue
        design = server.encoding.transform([unit.features for unit in known])
        served = [server.variant_ids.index(unit.variant_id) for unit in known]
        values = server.policy.propensity(design, served)
        out.update({unit.unit_id: float(p) for unit, p in zip(known, values, strict=True)})
    return out


def publishable(fits: Sequence[ModelFit], alphas: np.ndarray) -> bool:
    """Every weight, covariance and bonus finite: one non-finite number would make validation refuse the
    whole v2 document (and PostgreSQL's json refuse the row), freezing every autotune's specs."""
    return bool(np.all(np.isfinite(alphas))) and all(
        bool(np.all(np.isfinite(fit.mean)) and np.all(np.isfinite(fit.covariance))) for fit in fits
    )


def _fit(optimizes_value: bool, design: np.ndarray, outcome: np.ndarray, actions: np.ndarray, k: int) -> list[ModelFit]:
    columns = design.shape[1]
    fits: list[ModelFit] = []
    if optimizes_value:
        spread = float(outcome.var()) if outcome.size > 1 else 1.0
        prior = NormalInverseGammaPrior.default(columns, float(outcome.mean()) if outcome.size else 0.0, spread)
        return [fit_value(design[actions == v], outcome[actions == v], prior) for v in range(k)]
    base = float(outcome.mean()) if outcome.size else None
    gaussian = GaussianPrior.default(columns, base_rate=base)
    fits = [fit_occurrence(design[actions == v], outcome[actions == v], gaussian) for v in range(k)]
    return fits


def _value_json(value: PolicyValue) -> dict[str, Any]:
    return {
        "name": value.name,
        "ipw": value.ipw,
        "snipw": value.snipw,
        "dr": value.dr,
        "ipwInterval": list(value.ipw_interval),
        "snipwInterval": list(value.snipw_interval),
        "drInterval": list(value.dr_interval),
        "effectiveSampleSize": value.effective_sample_size,
        "units": value.units,
    }


@dataclass(frozen=True)
class Prepared:
    """The contextual step computed before the update's write transaction (reads only)."""

    incarnation_ms: int
    run: int
    exploring: bool
    filled: dict[str, float]
    learned: Learned


def prepare(db: Database, autotune_id: str, as_of_ms: int) -> Prepared | None:
    """Read and fit outside the write transaction, so ingestion is not blocked while models are fitted
    (SQLite has one writer). None when there is nothing contextual to do at `as_of_ms`."""
    with db.read() as conn:
        autotune = autotune_store.get(conn, autotune_id)
        if (
            autotune is None
            or not autotune.definition.is_contextual
            or autotune.status is not Status.RUNNING
            or autotune.started_at_ms is None
        ):
            return None
        last = updates.last_as_of(conn, autotune.id, autotune.created_ms)
        if last is not None and as_of_ms <= last:
            return None
        exploring = as_of_ms < autotune.started_at_ms + autotune.definition.exploration_ms
        rows, policies = _read(conn, autotune, as_of_ms, db.events)
    filled, learned = _compute(autotune, rows, policies, as_of_ms, exploring)
    return Prepared(autotune.created_ms, autotune.run, exploring, filled, learned)


def _read(
    conn: Connection, autotune: Autotune, as_of_ms: int, events: EventStore | None = None
) -> tuple[list[store.UnitRow], dict[int, store.Policy]]:
    known = {variant.id for variant in autotune.definition.variants}
    # Units in a separate event store (ClickHouse): the same per-unit rows, read there.
    read = functools.partial(store.matured_units, conn) if events is None else events.matured_units
    units = read(autotune_id=autotune.id, run=autotune.run, definition=autotune.definition, as_of_ms=as_of_ms)
    rows = [unit for unit in units if unit.variant_id in known]
    return rows, store.policies_of_run(conn, autotune.id, autotune.created_ms, autotune.run)


def learn(
    conn: Connection,
    autotune: Autotune,
    as_of_ms: int,
    exploring: bool,
    prepared: Prepared | None = None,
    *,
    events: EventStore | None = None,
) -> Learned:
    """The contextual step of one update (see the module doc); writes only propensities. Uses `prepared`
    when it was computed for this incarnation, run and stage, else computes here."""
    usable = prepared is not None and (prepared.incarnation_ms, prepared.run, prepared.exploring) == (
        autotune.created_ms,
        autotune.run,
        exploring,
    )
    if prepared is not None and usable:
        filled, learned = prepared.filled, prepared.learned
    else:
        rows, policies = _read(conn, autotune, as_of_ms, events)
        filled, learned = _compute(autotune, rows, policies, as_of_ms, exploring)
    # With a ClickHouse event store this updates no row: the propensities are recomputed from the
    # published policies at each update instead of being cached on the units.
    store.set_propensities(conn, autotune.id, autotune.run, filled)
    return learned


def _compute(
    autotune: Autotune,
    rows: list[store.UnitRow],
    policies: dict[int, store.Policy],
    as_of_ms: int,
    exploring: bool,
) -> tuple[dict[str, float], Learned]:
    definition = autotune.definition
    variant_ids = [variant.id for variant in definition.variants]
    index = {variant_id: k for k, variant_id in enumerate(variant_ids)}
    k = len(variant_ids)
    filled = _propensities(rows, index, policies, k)
    if exploring or not rows:
        message = "exploring: equal split" if exploring else "no matured unit yet"
        return filled, Learned(None, 1.0, None, None, {"units": len(rows), "message": message})
    features = [unit.features for unit in rows]
    encoding, design = encode_training(features, definition.feature_list)
    actions = np.array([index[unit.variant_id] for unit in rows], dtype=np.int64)
    if definition.optimizes_value:
        outcome = np.array([unit.value or 0.0 for unit in rows], dtype=np.float64)
    else:
        outcome = np.array([1.0 if unit.converted else 0.0 for unit in rows], dtype=np.float64)
    fits = _fit(definition.optimizes_value, design, outcome, actions, k)
    higher = not definition.lower_is_better
    rate = sample_rate(len(rows), k, definition.longterm_exploration_allocation)
    policy = LinearPolicy.from_fits(encoding, fits, rate, definition.exploration_window_rate, higher)
    if not publishable(fits, policy.alphas):
        message = "a model has non-finite weights (extreme feature values?): the previous policy stays"
        return filled, Learned(None, rate, None, None, {"units": len(rows), "message": message})
    config = cmab_config(
        encoding, dict(zip(variant_ids, fits, strict=True)), definition.exploration_window_rate, higher
    )
    shares = policy.marginal_shares(design)
    propensities = np.array(
        [unit.propensity if unit.propensity is not None else filled[unit.unit_id] for unit in rows], dtype=np.float64
    )
    logs = Logs(actions, outcome, propensities, np.column_stack([fit.predict_mean(design) for fit in fits]))
    comparison = compare(
        policy.probabilities(design), logs, np.random.default_rng(as_of_ms % 2**63), higher, n_bootstrap=BOOTSTRAP
    )
    variants = []
    for variant_id, fit, alpha in zip(variant_ids, fits, policy.alphas, strict=True):
        intercept, numerical, categorical = raw_weights(encoding, fit.mean)
        mask = actions == index[variant_id]
        variants.append(
            {
                "id": variant_id,
                "units": int(mask.sum()),
                "successes": int(outcome[mask].sum()) if not definition.optimizes_value else None,
                "mean": float(outcome[mask].mean()) if mask.any() else None,
                "onPrior": fit.on_prior,
                "message": fit.message,
                "alpha": float(alpha),
                "intercept": intercept,
                "weightsNumerical": numerical,
                "weightsCategorical": categorical,
            }
        )
    record = {
        "units": len(rows),
        "sampleRate": rate,
        "features": encoding_to_json(encoding),
        "variants": variants,
        "marginalShares": shares.tolist(),
        "policyValue": {
            "personalized": _value_json(comparison.personalized),
            "bestSingle": _value_json(comparison.best_single),
            "bestSingleVariantId": variant_ids[comparison.best_single_variant],
            "uniform": _value_json(comparison.uniform),
        },
        "propensitiesFilled": len(filled),
    }
    weights = tuple(float(w) for w in shares / shares.sum())
    return filled, Learned(weights, rate, config, model_to_json(encoding, variant_ids, fits, policy), record)


def save(conn: Connection, autotune: Autotune, version: int, as_of_ms: int, learned: Learned) -> None:
    """Store the policy published under allocation `version` (SDKs echo it as `configVersion`)."""
    if learned.config is None or learned.model is None:
        return
    store.insert_policy(
        conn,
        store.Policy(
            autotune_id=autotune.id,
            incarnation_ms=autotune.created_ms,
            run=autotune.run,
            version=version,
            as_of_ms=as_of_ms,
            sample_rate=learned.sample_rate,
            config=learned.config,
            model=learned.model,
        ),
    )
