"""The contextual part of an update (spec: contextual.md): newly matured units -> models -> published policy.

Called by `update._update_locked` for autotunes with `isContextual: true` (fitted first by `prepare`,
outside the write transaction):

1. read only the units matured since the run's stored state (`store.contextual_runs`), with their
   features and outcome, and the policies of the versions they name;
2. give each unit without a propensity the one its serving policy had: the published policy of the
   version it names (`(1 - s) 1[k = best] + s q_k` from that version's scores), or `1 / K` when it was
   served by the exploration window's equal split (no policy for its version);
3. encode them once (`compact`) into a stored batch, and absorb them into the run's state
   (`incremental`: exact sufficient statistics, reservoir sample, occurrence posteriors);
4. after the exploration window: one Bayesian model per variant (value: exact from the statistics;
   occurrence: online Laplace, full refits on a bounded window), publish the SDK weights
   (`cmab_configs[...].config`), the explore share and the server's model under the new allocation
   version, and serve SDKs that cannot score (specs v1) the policy's marginal shares as plain weights;
5. record per-variant units, outcomes and coefficients, and the off-policy value of the personalized
   policy against the best single variant and a uniform split (on the reservoir sample);
6. count the newly matured units on the explore path per (version, variant), for the engine's
   sample-ratio check of contextual autotunes (`engine.contextual_srm`).

Variants a guardrail excluded earlier in the run are withheld from the policy it fits (`withhold`).

A contextual autotune never declares a winner: the personalized policy is the product.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from sqlalchemy.engine import Connection

from openautotune.contextual.compact import encode
from openautotune.contextual.features import Encoding, encoding_from_json, encoding_to_json
from openautotune.contextual.incremental import Batch, RunState, absorb, normalised, train_occurrence, train_value
from openautotune.contextual.models import ModelFit
from openautotune.contextual.offpolicy import Logs, PolicyValue, compare
from openautotune.contextual.policy import LinearPolicy, ThompsonBank, explore_weights
from openautotune.contextual.publish import cmab_config, raw_weights, sample_rate
from openautotune.contextual.withhold import allowed_mask, previously_withheld, restricted, untrained_groups
from openautotune.domain.autotune import Autotune, Status
from openautotune.store import autotunes as autotune_store
from openautotune.store import contextual as store
from openautotune.store import contextual_runs as runs
from openautotune.store import updates
from openautotune.store.attribution import BEGINNING_MS
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
    withheld: tuple[str, ...] = ()
    """Variants left out of this policy (guardrail exclusions of the run, contextual.md "Guardrails")."""
    traffic: ExploreTraffic | None = None

    @property
    def publishes(self) -> bool:
        return self.config is not None


@dataclass(frozen=True)
class ExploreTraffic:
    """The units that matured at this update, split by path: on the explore path (rule id `:explore`)
    counted per (served version, variant in definition order); the rest only counted."""

    explore: dict[int | None, tuple[int, ...]]
    other_units: int
    from_start: bool
    """True when these are every matured unit of the run (the contextual state started afresh)."""


def explore_traffic(rows: Sequence[store.UnitRow], variant_ids: Sequence[str], from_start: bool) -> ExploreTraffic:
    index = {variant_id: k for k, variant_id in enumerate(variant_ids)}
    explore: dict[int | None, list[int]] = {}
    other = 0
    for unit in rows:
        k = index.get(unit.variant_id)
        if k is None:
            continue
        if not unit.explore:
            other += 1
            continue
        explore.setdefault(unit.allocation_version, [0] * len(variant_ids))[k] += 1
    return ExploreTraffic({version: tuple(c) for version, c in explore.items()}, other, from_start)


# --- the server's model as JSON ------------------------------------------------------------------


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
        return ThompsonBank(
            draws,
            explore_weights(policy.records, policy.allowed),
            policy.sample_rate,
            policy.higher_is_better,
            policy.allowed,
        )


def model_to_json(
    encoding: Encoding, variant_ids: Sequence[str], fits: Sequence[ModelFit], policy: LinearPolicy
) -> dict[str, Any]:
    full = encoding.n_columns <= FULL_COVARIANCE_MAX_COLUMNS
    allowed = policy.allowed
    withheld = [] if allowed is None else [v for v, ok in zip(variant_ids, allowed, strict=True) if not ok]
    return {
        # Every variant keeps its model; the withheld ones are never chosen (absent: none withheld).
        **({"withheld": withheld} if withheld else {}),
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
    variant_ids = tuple(model["variantIds"])
    policy = LinearPolicy(
        weights=means,
        alphas=np.array(model["alphas"], dtype=np.float64),
        records=np.array(model["records"], dtype=np.int64),
        sample_rate=float(model["sampleRate"]),
        higher_is_better=bool(model["higherIsBetter"]),
        allowed=allowed_mask(variant_ids, model.get("withheld") or ()),
    )
    return ServerModel(encoding, policy, variant_ids, means, full)


# --- the update step ----------------------------------------------------------------------------


def _propensities(
    units: Sequence[store.UnitRow], policies: dict[int, store.Policy], k: int, groups: Mapping[int, int] | None = None
) -> dict[str, float]:
    """Propensities for the units that have none, from the policy of the version they name (`groups`: how
    many variants the untrained split of a version without a policy listed, when not all K)."""
    missing: dict[int | None, list[store.UnitRow]] = {}
    for unit in units:
        if unit.propensity is None:
            missing.setdefault(unit.allocation_version, []).append(unit)
    out: dict[str, float] = {}
    for version, group in missing.items():
        policy = policies.get(version) if version is not None else None
        if policy is None:
            listed = (groups or {}).get(version, k) if version is not None else k
            out.update({unit.unit_id: 1.0 / listed for unit in group})
            continue
        server = model_from_json(policy.model)
        known = [unit for unit in group if unit.variant_id in server.variant_ids]
        out.update({unit.unit_id: 1.0 / k for unit in group if unit.variant_id not in server.variant_ids})
        if not known:
            continue
        design = server.encoding.transform([unit.features for unit in known])
        served = [server.variant_ids.index(unit.variant_id) for unit in known]
        values = server.policy.propensity(design, served)
        # 0: a variant its version withheld (a guardrail exclusion), which that version could not serve; a
        # mismatch (stale or forced assignment), kept with 1/K like a unit of an unknown version.
        out.update({unit.unit_id: float(p) if p > 0 else 1.0 / k for unit, p in zip(known, values, strict=True)})
    return out


def publishable(fits: Sequence[ModelFit], alphas: np.ndarray) -> bool:
    """Every weight, covariance and bonus finite: one non-finite number would make validation refuse the
    whole v2 document (and PostgreSQL's json refuse the row), freezing every autotune's specs."""
    return bool(np.all(np.isfinite(alphas))) and all(
        bool(np.all(np.isfinite(fit.mean)) and np.all(np.isfinite(fit.covariance))) for fit in fits
    )


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
class Inputs:
    """What an update reads: the units matured since the run's state, that state, and the policies of
    the versions those units name."""

    key: runs.RunKey
    rows: list[store.UnitRow]
    stored: runs.StoredState | None
    policies: dict[int, store.Policy]
    withheld: tuple[str, ...] = ()
    groups: dict[int, int] = field(default_factory=dict)
    """Versions without a policy whose untrained split listed fewer than every variant (an exclusion)."""


@dataclass(frozen=True)
class Readers:
    """Stored batches on demand (a full refit's window; a rebuild after a feature changed type)."""

    oldest_first: Callable[[], Sequence[Batch]]
    newest_first: Callable[[int], Sequence[Batch]]


@dataclass(frozen=True)
class Prepared:
    """The contextual step computed before the update's write transaction (reads only)."""

    incarnation_ms: int
    run: int
    exploring: bool
    state_as_of: int | None
    filled: dict[str, float]
    learned: Learned
    state: runs.StoredState
    batch: Batch


def _key(autotune: Autotune) -> runs.RunKey:
    return runs.RunKey(autotune.id, autotune.created_ms, autotune.run)


def _readers(read: Callable[[], AbstractContextManager[Connection]], key: runs.RunKey) -> Readers:
    def oldest_first() -> list[Batch]:
        with read() as conn:
            return [Batch.from_bytes(payload) for payload in runs.batches_oldest_first(conn, key)]

    def newest_first(units: int) -> list[Batch]:
        with read() as conn:
            return [Batch.from_bytes(payload) for payload in runs.batches_newest_first(conn, key, units)]

    return Readers(oldest_first, newest_first)


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
        inputs = _read(conn, autotune, as_of_ms, db.events)
    return _compute(autotune, inputs, as_of_ms, exploring, _readers(db.read, inputs.key))


def _read(conn: Connection, autotune: Autotune, as_of_ms: int, events: EventStore | None = None) -> Inputs:
    """Only the units matured since the run's state was last advanced (all matured ones the first time);
    from the event store when units live in another one (ClickHouse)."""
    key = _key(autotune)
    stored = runs.get_state(conn, key)
    if stored is not None and stored.meta.get("variants") != len(autotune.definition.variants):
        stored = None  # variant indices no longer mean the same: learn again from every matured unit
    known = {variant.id for variant in autotune.definition.variants}
    rows = [
        unit
        for unit in (functools.partial(store.matured_units, conn) if events is None else events.matured_units)(
            autotune_id=autotune.id,
            run=autotune.run,
            definition=autotune.definition,
            as_of_ms=as_of_ms,
            matured_after_ms=BEGINNING_MS if stored is None else stored.as_of_ms,
        )
        if unit.variant_id in known
    ]
    versions = {u.allocation_version for u in rows if u.propensity is None and u.allocation_version is not None}
    policies = store.policies_of_versions(conn, autotune.id, autotune.created_ms, autotune.run, sorted(versions))
    untrained = [v for v in versions if v not in policies]
    groups = untrained_groups(conn, autotune, untrained) if untrained else {}
    return Inputs(key, rows, stored, policies, previously_withheld(conn, autotune), groups)


def learn(
    conn: Connection,
    autotune: Autotune,
    as_of_ms: int,
    exploring: bool,
    prepared: Prepared | None = None,
    *,
    events: EventStore | None = None,
) -> Learned:
    """The contextual step of one update (see the module doc); writes propensities, the encoded batch
    and the run's state. Uses `prepared` when it was computed for this incarnation, run, stage and
    state, else computes here."""
    key = _key(autotune)
    usable = prepared is not None and (
        prepared.incarnation_ms,
        prepared.run,
        prepared.exploring,
        prepared.state_as_of,
    ) == (autotune.created_ms, autotune.run, exploring, runs.state_as_of(conn, key))
    if prepared is None or not usable:

        @contextmanager
        def same() -> Iterator[Connection]:
            yield conn

        prepared = _compute(autotune, _read(conn, autotune, as_of_ms, events), as_of_ms, exploring, _readers(same, key))
    # With a ClickHouse event store this updates no row: the propensities are recomputed from the
    # published policies at each update instead of being cached on the units.
    store.set_propensities(conn, autotune.id, autotune.run, prepared.filled)
    if prepared.state_as_of is None:
        runs.delete_run(conn, key)  # a state started afresh (see `_read`) replaces whatever was there
    if prepared.batch.size:
        seq = runs.next_seq(conn, key)
        runs.insert_batch(conn, key, seq, as_of_ms, prepared.batch.size, prepared.batch.to_bytes())
    runs.put_state(conn, key, prepared.state)
    return prepared.learned


def _seed(autotune: Autotune) -> int:
    return int.from_bytes(hashlib.sha256(f"{autotune.id}:{autotune.created_ms}:{autotune.run}".encode()).digest()[:8])


def _batch(
    state: RunState, rows: Sequence[store.UnitRow], filled: dict[str, float], index: dict[str, int], value: bool
) -> tuple[Batch, list[int]]:
    """Encode the newly matured units, once."""
    compact, flipped = encode(state.vocabulary, [unit.features for unit in rows])
    actions = np.array([index[unit.variant_id] for unit in rows], dtype=np.int64)
    if value:
        outcomes = np.array([unit.value or 0.0 for unit in rows], dtype=np.float64)
    else:
        outcomes = np.array([1.0 if unit.converted else 0.0 for unit in rows], dtype=np.float64)
    propensities = np.array(
        [unit.propensity if unit.propensity is not None else filled[unit.unit_id] for unit in rows], dtype=np.float64
    )
    return Batch(compact, actions, outcomes, propensities), flipped


def _compute(autotune: Autotune, inputs: Inputs, as_of_ms: int, exploring: bool, readers: Readers) -> Prepared:
    definition = autotune.definition
    variant_ids = [variant.id for variant in definition.variants]
    index = {variant_id: k for k, variant_id in enumerate(variant_ids)}
    k = len(variant_ids)
    filled = _propensities(inputs.rows, inputs.policies, k, inputs.groups)
    if inputs.stored is not None:
        state = RunState.from_storage(inputs.stored.meta, inputs.stored.payload)
    else:
        state = RunState.start(k, definition.feature_list)
    batch, flipped = _batch(state, inputs.rows, filled, index, definition.optimizes_value)
    if batch.size:
        absorb(state, batch, flipped, readers.oldest_first, _seed(autotune))
    learned = _learned(autotune, state, batch, readers, as_of_ms, exploring, inputs.withheld)
    traffic = explore_traffic(inputs.rows, variant_ids, from_start=inputs.stored is None)
    learned = replace(learned, traffic=traffic)
    meta, payload = state.to_storage()
    stored = runs.StoredState(as_of_ms, meta, payload)
    learned.record["newUnits"] = batch.size
    learned.record["propensitiesFilled"] = len(filled)
    previous = None if inputs.stored is None else inputs.stored.as_of_ms
    return Prepared(autotune.created_ms, autotune.run, exploring, previous, filled, learned, stored, batch)


def _learned(
    autotune: Autotune,
    state: RunState,
    batch: Batch,
    readers: Readers,
    as_of_ms: int,
    exploring: bool,
    withheld: Sequence[str] = (),
) -> Learned:
    definition = autotune.definition
    variant_ids = [variant.id for variant in definition.variants]
    k = len(variant_ids)
    stats = state.stats
    total = stats.units
    if exploring or total == 0:
        message = "exploring: equal split" if exploring else "no matured unit yet"
        return Learned(None, 1.0, None, None, {"units": total, "message": message})
    value = definition.optimizes_value
    trained = train_value(state) if value else train_occurrence(state, batch, readers.newest_first)
    encoding, fits = trained.encoding, trained.fits
    higher = not definition.lower_is_better
    rate = sample_rate(total, k, definition.longterm_exploration_allocation)
    allowed = allowed_mask(variant_ids, withheld)
    policy = LinearPolicy.from_fits(encoding, fits, rate, definition.exploration_window_rate, higher, allowed)
    if not publishable(fits, policy.alphas):
        message = "a model has non-finite weights (extreme feature values?): the previous policy stays"
        return Learned(None, rate, None, None, {"units": total, "message": message})
    # The SDK entry scores the allowed variants only: a withheld one is neither exploited nor explored.
    served = {v: fit for v, fit in zip(variant_ids, fits, strict=True) if v not in withheld}
    config = cmab_config(encoding, served, definition.exploration_window_rate, higher)
    # Off-policy value and marginal shares on the reservoir: a bounded, uniform sample of every unit.
    sample = state.reservoir
    design = trained.encode(normalised(state.vocabulary, sample.rows))
    shares = policy.marginal_shares(design)
    predictions = np.column_stack([f.predict_mean(design) for f in fits])
    logs = Logs(sample.actions, sample.outcomes, sample.propensities, predictions)
    comparison = compare(
        policy.probabilities(design), logs, np.random.default_rng(as_of_ms % 2**63), higher, n_bootstrap=BOOTSTRAP
    )
    variants = []
    for v, (variant_id, fit, alpha) in enumerate(zip(variant_ids, fits, policy.alphas, strict=True)):
        intercept, numerical, categorical = raw_weights(encoding, fit.mean)
        units = int(stats.n[v])
        variants.append(
            {
                "id": variant_id,
                "units": units,
                "successes": int(stats.successes[v]) if not definition.optimizes_value else None,
                "mean": float(stats.xty[v, 0]) / units if units else None,
                "onPrior": fit.on_prior,
                "message": fit.message,
                "alpha": float(alpha),
                "intercept": intercept,
                "weightsNumerical": numerical,
                "weightsCategorical": categorical,
            }
        )
    record = {
        "units": total,
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
        "learning": {"refitted": trained.refitted, "reason": trained.reason, "reservoirUnits": sample.size},
        "withheld": [v for v in variant_ids if v in withheld],
    }
    weights = tuple(float(w) for w in shares / shares.sum())
    model = model_to_json(encoding, variant_ids, fits, policy)
    return Learned(weights, rate, config, model, record, withheld=tuple(v for v in variant_ids if v in withheld))


def withhold(conn: Connection, autotune: Autotune, learned: Learned, excluded: Sequence[str]) -> Learned:
    """`learned` with the variants in `excluded` withheld from the policy it publishes.

    - A fitted policy (`learned.config`) fitted under the same exclusions is returned as is; one fitted
      before this update's new exclusion loses the newly excluded variants (its recorded marginal shares
      and policy value are then those of the policy before this exclusion, and say so).
    - No fitted policy (exploration window, or a fit that could not be published): when the run's latest
      stored policy still offers an excluded variant, it is published again, restricted, under the new
      allocation version. During the exploration window there is no policy: the untrained entry's groups
      follow the allocation, whose weight for an excluded variant is 0 (serving/cmab.py).

    Exclusions last for the run, so the set only grows, except when a guardrail's rule is changed while
    running: a variant re-admitted that way comes back with the next fitted policy.
    """
    variant_ids = [variant.id for variant in autotune.definition.variants]
    wanted = tuple(v for v in variant_ids if v in set(excluded))
    if learned.config is not None and learned.model is not None:
        if set(wanted) <= set(learned.withheld):
            return learned  # (a variant re-admitted since the fit is not in its config: back at the next fit)
        both = tuple(v for v in variant_ids if v in set(wanted) | set(learned.withheld))
        config, model = restricted(learned.config, learned.model, both)
        record = {
            **learned.record,
            "withheld": list(both),
            "withheldAfterFit": [v for v in wanted if v not in learned.withheld],
            "note": "marginalShares and policyValue are of the policy fitted before withheldAfterFit was excluded",
        }
        return replace(learned, config=config, model=model, record=record, withheld=both)
    if not wanted:
        return learned
    latest = store.latest_policies(conn, [autotune.id], with_model=True).get(autotune.id)
    if latest is None or (latest.incarnation_ms, latest.run) != (autotune.created_ms, autotune.run):
        return learned
    already = set(latest.model.get("withheld") or ())
    if set(wanted) <= already or not set(latest.config) - set(wanted):
        return learned
    config, model = restricted(latest.config, latest.model, wanted)
    record = {**learned.record, "withheld": list(wanted), "republished": latest.version}
    return replace(learned, sample_rate=latest.sample_rate, config=config, model=model, record=record, withheld=wanted)


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
