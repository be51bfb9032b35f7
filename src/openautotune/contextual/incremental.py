"""A contextual run learned incrementally: the state one update hands to the next (docs/contextual.md,
"Incremental updates").

- ``Batch``: the units that matured in one update, encoded once (``compact``) with their variant,
  outcome and propensity; stored as one row, so a full refit or a rebuild never re-reads user dicts.
- ``RunState``: the run's vocabulary, the exact raw-basis statistics of every unit (``sufficient``), a
  bounded reservoir sample of logged decisions for the off-policy estimates and marginal shares, and for
  occurrence models the current *epoch*: an encoding frozen at the last full refit and each variant's
  Gaussian posterior, carried forward by online Laplace (``online``).
- ``absorb`` adds a batch; ``train`` returns the encoding and per-variant fits for the policy.

Value models are exact at every update (the encoding is re-derived from the statistics). Occurrence models
are refitted in full on the newest ``WINDOW_UNITS`` units (the prior set from every unit) when:
the first training; a variant that became trainable since; the derived encoding drifted from the epoch's
(a new feature on at least 1% of units, a category reaching 2%, a numeric centre moving by more than half
its scale or its scale by more than a power of two, a feature changing type); or every ``REFIT_EVERY``
updates. Between refits new categories and features add 0 to the occurrence score (the epoch encoding).
The caller reads stored batches through callbacks, so this module stays numbers only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from openautotune.contextual.compact import NOT_COMPUTED, CompactRows, Vocabulary, categorise
from openautotune.contextual.features import Encoding, NumericFeature, encoding_from_json, encoding_to_json
from openautotune.contextual.models import GaussianPrior, ModelFit, _too_little, fit_occurrence
from openautotune.contextual.online import Gaussian, from_fit, laplace_step, occurrence_fit
from openautotune.contextual.sufficient import RawStats, derive, encoded, value_fits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RESERVOIR_SIZE: Final = 5_000
WINDOW_UNITS: Final = 100_000
REFIT_EVERY: Final = 168


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _unnpz(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@dataclass(frozen=True, eq=False)
class Batch:
    """Encoded units with their variant index, outcome and propensity."""

    rows: CompactRows
    actions: IntArray
    outcomes: FloatArray
    propensities: FloatArray

    @property
    def size(self) -> int:
        return self.rows.size

    def to_bytes(self) -> bytes:
        return _npz(
            {
                "numbers": self.rows.numbers,
                "categories": self.rows.categories,
                "actions": self.actions.astype(np.int16),
                "outcomes": self.outcomes,
                "propensities": self.propensities,
            }
        )

    @staticmethod
    def from_bytes(payload: bytes) -> Batch:
        data = _unnpz(payload)
        rows = CompactRows(data["numbers"].astype(np.float64), data["categories"].astype(np.int16))
        return Batch(rows, data["actions"].astype(np.int64), data["outcomes"], data["propensities"])

    @staticmethod
    def concatenate(parts: Sequence[Batch], n_features: int) -> Batch:
        return Batch(
            CompactRows.concatenate([p.rows for p in parts], n_features),
            np.concatenate([p.actions for p in parts]) if parts else np.zeros(0, dtype=np.int64),
            np.concatenate([p.outcomes for p in parts]) if parts else np.zeros(0),
            np.concatenate([p.propensities for p in parts]) if parts else np.zeros(0),
        )


def normalised(vocabulary: Vocabulary, rows: CompactRows) -> CompactRows:
    """``rows`` over the current features, with category ids for features that have turned categorical."""
    rows = rows.widened(len(vocabulary.names))
    for f, numeric in enumerate(vocabulary.numeric):
        if not numeric and bool(np.any(rows.categories[:, f] == NOT_COMPUTED)):
            rows = categorise(vocabulary, rows, f)
    return rows


@dataclass(eq=False)
class Epoch:
    """Occurrence models since their last full refit: frozen encoding, ``transform`` (encoded row =
    transform @ raw row, over the raw columns of that time) and each variant's posterior."""

    encoding: Encoding
    transform: FloatArray
    base_rate: float | None
    posteriors: list[Gaussian | None]
    refit_at: int
    window: int
    waiting: list[int]  # variants too little trained (all units) at the refit: one becoming trainable refits

    def design(self, stats: RawStats, rows: CompactRows) -> FloatArray:
        transform = self.transform
        if transform.shape[1] < stats.width:
            transform = np.hstack([transform, np.zeros((transform.shape[0], stats.width - transform.shape[1]))])
        return encoded(stats, transform, rows)


@dataclass(eq=False)
class RunState:
    variants: int
    vocabulary: Vocabulary
    stats: RawStats
    updates: int
    seen: int
    reservoir: Batch
    epoch: Epoch | None = None
    rebuilt: bool = False

    @staticmethod
    def start(variants: int, feature_list: Sequence[str] | None) -> RunState:
        vocabulary = Vocabulary.start(feature_list)
        empty = Batch(
            CompactRows(np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int16)),
            np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
        )  # fmt: skip
        return RunState(variants, vocabulary, RawStats.empty(variants), 0, 0, empty)

    # --- serialisation ----------------------------------------------------------------------------

    def to_storage(self) -> tuple[dict[str, Any], bytes]:
        stats = self.stats
        meta: dict[str, Any] = {
            "variants": self.variants,
            "vocabulary": self.vocabulary.to_json(),
            "columns": [list(c) for c in stats.columns],
            "origins": stats.origins,
            "updates": self.updates,
            "seen": self.seen,
            "rebuilt": self.rebuilt,  # the raw columns were rebuilt: the epoch's transform no longer applies
        }
        arrays: dict[str, np.ndarray] = {
            "gram": stats.gram, "xty": stats.xty, "yty": stats.yty, "n": stats.n, "successes": stats.successes,
            "res_numbers": self.reservoir.rows.numbers, "res_categories": self.reservoir.rows.categories,
            "res_actions": self.reservoir.actions, "res_outcomes": self.reservoir.outcomes,
            "res_propensities": self.reservoir.propensities,
        }  # fmt: skip
        epoch = self.epoch
        if epoch is not None:
            meta["epoch"] = {
                "encoding": encoding_to_json(epoch.encoding),
                "baseRate": epoch.base_rate,
                "refitAt": epoch.refit_at,
                "window": epoch.window,
                "has": [p is not None for p in epoch.posteriors],
                "waiting": epoch.waiting,
            }
            p = epoch.transform.shape[0]
            arrays["epoch_transform"] = epoch.transform
            arrays["epoch_means"] = np.array([g.mean if g else np.zeros(p) for g in epoch.posteriors]).reshape(-1, p)
            arrays["epoch_precisions"] = np.array(
                [g.precision if g else np.zeros((p, p)) for g in epoch.posteriors]
            ).reshape(-1, p, p)
        return meta, _npz(arrays)

    @staticmethod
    def from_storage(meta: dict[str, Any], payload: bytes) -> RunState:
        data = _unnpz(payload)
        stats = RawStats(
            [(int(f), int(c)) for f, c in meta["columns"]], [float(o) for o in meta["origins"]],
            data["gram"], data["xty"], data["yty"], data["n"].astype(np.int64), data["successes"].astype(np.int64),
        )  # fmt: skip
        reservoir = Batch(
            CompactRows(data["res_numbers"], data["res_categories"].astype(np.int16)),
            data["res_actions"].astype(np.int64), data["res_outcomes"], data["res_propensities"],
        )  # fmt: skip
        state = RunState(
            int(meta["variants"]), Vocabulary.from_json(meta["vocabulary"]), stats,
            int(meta["updates"]), int(meta["seen"]), reservoir, None, bool(meta.get("rebuilt", False)),
        )  # fmt: skip
        epoch = meta.get("epoch")
        if epoch is not None:
            means, precisions = data["epoch_means"], data["epoch_precisions"]
            state.epoch = Epoch(
                encoding_from_json(epoch["encoding"]), data["epoch_transform"],
                None if epoch["baseRate"] is None else float(epoch["baseRate"]),
                [Gaussian(means[k], precisions[k]) if has else None for k, has in enumerate(epoch["has"])],
                int(epoch["refitAt"]), int(epoch["window"]), [int(k) for k in epoch["waiting"]],
            )  # fmt: skip
        return state


# --- absorbing a batch ----------------------------------------------------------------------------

Reader = Callable[[], Sequence[Batch]]


def absorb(state: RunState, batch: Batch, flipped: Sequence[int], stored: Reader, seed: int) -> None:
    """Add ``batch`` (encoded with ``state.vocabulary``) to the statistics and the reservoir. When a
    feature turned categorical, the statistics are rebuilt from the stored batches (``stored``: every
    earlier batch of the run, oldest first), never from user dicts."""
    vocabulary = state.vocabulary
    rows = normalised(vocabulary, batch.rows)
    batch = replace(batch, rows=rows)
    if flipped:
        state.stats = RawStats.empty(state.variants)
        for old in stored():
            old_rows = normalised(vocabulary, old.rows)
            state.stats.sync(vocabulary, old_rows)
            state.stats.add(old_rows, old.actions, old.outcomes)
        state.rebuilt = True
    state.stats.sync(vocabulary, rows)
    state.stats.add(rows, batch.actions, batch.outcomes)
    state.reservoir = _sample(state, batch, seed)
    state.updates += 1


def _sample(state: RunState, batch: Batch, seed: int) -> Batch:
    """Algorithm R over every unit of the run: each is in the reservoir with equal probability."""
    n_features = len(state.vocabulary.names)
    reservoir = replace(state.reservoir, rows=normalised(state.vocabulary, state.reservoir.rows.widened(n_features)))
    room = max(RESERVOIR_SIZE - reservoir.size, 0)
    head = np.arange(min(room, batch.size))
    first = Batch(batch.rows.take(head), batch.actions[head], batch.outcomes[head], batch.propensities[head])
    parts = [reservoir, first]
    merged = Batch.concatenate(parts, n_features)
    rest = np.arange(head.size, batch.size)
    if rest.size:
        rng = np.random.default_rng([seed, state.updates])
        positions = rng.integers(0, state.seen + rest + 1)
        numbers, categories = merged.rows.numbers.copy(), merged.rows.categories.copy()
        actions, outcomes, propensities = merged.actions.copy(), merged.outcomes.copy(), merged.propensities.copy()
        for i, slot in zip(rest, positions, strict=True):
            if slot < RESERVOIR_SIZE:
                numbers[slot], categories[slot] = batch.rows.numbers[i], batch.rows.categories[i]
                actions[slot], outcomes[slot], propensities[slot] = (
                    batch.actions[i], batch.outcomes[i], batch.propensities[i],
                )  # fmt: skip
        merged = Batch(CompactRows(numbers, categories), actions, outcomes, propensities)
    state.seen += batch.size
    return merged


# --- training -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Trained:
    """What the policy needs: the encoding, one fit per variant, and how to encode stored rows."""

    encoding: Encoding
    fits: list[ModelFit]
    encode: Callable[[CompactRows], FloatArray]
    refitted: bool
    reason: str


def train_value(state: RunState) -> Trained:
    """Exact: the encoding re-derived from the statistics, each variant's posterior from its sums."""
    encoding, transform = derive(state.vocabulary, state.stats)
    fits = value_fits(state.stats, transform)
    stats = state.stats
    return Trained(encoding, fits, lambda rows: encoded(stats, transform, rows), False, "exact sufficient statistics")


def _drift(epoch: Epoch, now: Encoding, vocabulary: Vocabulary, units: int) -> str | None:
    before = {f.name: f for f in epoch.encoding.features}
    for feature in now.features:
        old = before.get(feature.name)
        if old is None:
            f = vocabulary.names.index(feature.name)
            if vocabulary.present[f] >= 0.01 * units:
                return f"feature {feature.name!r} appeared"
            continue
        if type(old) is not type(feature):
            return f"feature {feature.name!r} changed type"
        if isinstance(feature, NumericFeature) and isinstance(old, NumericFeature):
            if abs(feature.centre - old.centre) > 0.5 * old.scale or not 0.5 <= feature.scale / old.scale <= 2.0:
                return f"feature {feature.name!r} drifted"
            continue
        known = set(old.values)  # type: ignore[union-attr]
        for value, share in zip(feature.values, feature.centres, strict=True):  # type: ignore[union-attr]
            if value not in known and share >= 0.02:
                return f"category {feature.name}={value} reached {share:.1%}"
    return None


def _eligible(stats: RawStats, k: int) -> bool:
    return _too_little(int(stats.n[k]), int(stats.successes[k])) is None


def train_occurrence(state: RunState, latest: Batch, window: Callable[[int], Sequence[Batch]]) -> Trained:
    """Online Laplace on ``latest`` within the epoch, or a full refit on the newest ``WINDOW_UNITS``
    units (``window(limit)``: stored batches, newest first, until ``limit`` units) when one is due."""
    stats = state.stats
    epoch = state.epoch
    now, transform = derive(state.vocabulary, stats)
    reason: str | None
    if epoch is None:
        reason = "first training"
    elif state.rebuilt:
        reason = "a feature changed type"
    elif state.updates - epoch.refit_at >= REFIT_EVERY:
        reason = f"{REFIT_EVERY} updates since the last full refit"
    else:
        reason = _drift(epoch, now, state.vocabulary, stats.units)
        if reason is None:
            fresh = [k for k in epoch.waiting if _eligible(stats, k)]
            if fresh:
                reason = f"variant {fresh[0]} became trainable"
    if reason is not None or epoch is None:
        epoch = _refit(state, now, transform, latest, window)
        state.epoch = epoch
        refitted = True
    else:
        rows = normalised(state.vocabulary, latest.rows)
        design = epoch.design(stats, rows)
        for k in range(state.variants):
            posterior = epoch.posteriors[k]
            mask = latest.actions == k
            if posterior is not None and mask.any():
                epoch.posteriors[k] = laplace_step(posterior, design[mask], latest.outcomes[mask])[0]
        refitted = False
        reason = "online Laplace"
    fits = [_occurrence_fit(state, epoch, k) for k in range(state.variants)]
    frozen = epoch
    return Trained(epoch.encoding, fits, lambda rows: frozen.design(stats, rows), refitted, reason or "first training")


def _occurrence_fit(state: RunState, epoch: Epoch, k: int) -> ModelFit:
    units, successes = int(state.stats.n[k]), int(state.stats.successes[k])
    posterior = epoch.posteriors[k]
    if posterior is not None:
        message = (
            f"{units} units with {successes} successes; full refit on {epoch.window} units at update "
            f"{epoch.refit_at}, online Laplace since"
        )
        return occurrence_fit(posterior, units, successes, message)
    p = epoch.transform.shape[0]
    prior = GaussianPrior.default(p, base_rate=epoch.base_rate)
    on_prior = fit_occurrence(np.zeros((0, p)), np.zeros(0), prior)
    message = _too_little(units, successes) or "not trained in the last full refit's window: stays on its prior"
    return replace(on_prior, units=units, successes=successes, message=message)


def _refit(
    state: RunState, encoding: Encoding, transform: FloatArray, latest: Batch, window: Callable[[int], Sequence[Batch]]
) -> Epoch:
    """Full fits on the newest WINDOW_UNITS units, in the encoding derived from every unit."""
    n_features = len(state.vocabulary.names)
    parts = [latest]
    have = latest.size
    if have < WINDOW_UNITS:
        for old in window(WINDOW_UNITS - have):
            parts.append(old)
            have += old.size
            if have >= WINDOW_UNITS:
                break
    parts.reverse()  # oldest first, as a full refit reads them
    merged = Batch.concatenate(parts, n_features)
    keep = np.arange(max(merged.size - WINDOW_UNITS, 0), merged.size)
    rows = normalised(state.vocabulary, merged.rows.take(keep))
    actions, outcomes = merged.actions[keep], merged.outcomes[keep]
    design = encoded(state.stats, transform, rows)
    mean, _ = state.stats.pooled_outcome()
    base = mean if state.stats.units else None
    prior = GaussianPrior.default(transform.shape[0], base_rate=base)
    posteriors: list[Gaussian | None] = []
    for k in range(state.variants):
        mask = actions == k
        fit = fit_occurrence(design[mask], outcomes[mask], prior)
        posteriors.append(None if fit.on_prior else from_fit(fit))
    state.rebuilt = False
    waiting = [k for k in range(state.variants) if not _eligible(state.stats, k)]
    return Epoch(encoding, transform, base, posteriors, state.updates, int(keep.size), waiting)
