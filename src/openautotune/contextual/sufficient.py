"""Exact sufficient statistics of a run's units in a raw basis that only grows.

The raw basis is the intercept, then one column per numeric feature (its number, 0 when missing, minus a
fixed ``origin``: the feature's mean in the batch it first appeared in, so that sums of squares stay
well-conditioned) and one 0/1 column per tracked category of each categorical feature. A column added
later is known for every earlier unit from what those units had (the feature was missing, or
the category absent; a numeric column is then the constant ``-origin``, whose sums follow from the
intercept's), so statistics accumulated before stay valid as the vocabulary grows.

Per variant: ``X'X``, ``X'y``, ``y'y``, n and the number of successes. The training encoding of
``features.encode_training`` (centres, power-of-two scales, the 25 most frequent categories above 1%)
is affine in the raw columns, so it is derived from the pooled statistics (``derive``) and the encoded
``X'X`` is ``T S T'``: the value model's posterior after any number of updates equals a full refit on
every unit (``fit_value_from_stats`` against ``models.fit_value``, to rounding).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg

from openautotune.contextual.compact import CompactRows, Vocabulary
from openautotune.contextual.features import (
    MAX_CATEGORIES,
    MIN_COVERAGE,
    CategoricalFeature,
    Encoding,
    Feature,
    NumericFeature,
    _power_of_two_scale,
)
from openautotune.contextual.models import ModelFit, NormalInverseGammaPrior, _nig_result, _too_little

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NUMERIC = -1


@dataclass(eq=False)
class RawStats:
    """Raw-basis statistics of every variant: ``columns`` (feature, category id or NUMERIC) after the
    intercept, ``origins`` per column (0 for categories), and per variant the sums."""

    columns: list[tuple[int, int]]
    origins: list[float]
    gram: FloatArray  # K x p x p
    xty: FloatArray  # K x p
    yty: FloatArray  # K
    n: IntArray  # K
    successes: IntArray  # K

    @staticmethod
    def empty(variants: int) -> RawStats:
        return RawStats(
            [], [], np.zeros((variants, 1, 1)), np.zeros((variants, 1)), np.zeros(variants),
            np.zeros(variants, dtype=np.int64), np.zeros(variants, dtype=np.int64),
        )  # fmt: skip

    @property
    def width(self) -> int:
        return 1 + len(self.columns)

    @property
    def units(self) -> int:
        return int(self.n.sum())

    def sync(self, vocabulary: Vocabulary, rows: CompactRows) -> None:
        """Add the columns the vocabulary has gained (new features, new categories); zero for old units."""
        have = set(self.columns)
        rows = rows.widened(len(vocabulary.names))
        added: list[tuple[int, int]] = []
        origins: list[float] = []
        for f in range(len(vocabulary.names)):
            if vocabulary.present[f] == 0:
                continue
            if vocabulary.numeric[f]:
                if (f, NUMERIC) not in have:
                    values = np.nan_to_num(rows.numbers[:, f], nan=0.0)
                    added.append((f, NUMERIC))
                    origins.append(float(values.mean()) if values.size else 0.0)
                continue
            for c in range(len(vocabulary.categories[f])):
                if (f, c) not in have:
                    added.append((f, c))
                    origins.append(0.0)
        if not added:
            return
        old, new = self.width, self.width + len(added)
        k = self.n.size
        gram = np.zeros((k, new, new))
        gram[:, :old, :old] = self.gram
        xty = np.zeros((k, new))
        xty[:, :old] = self.xty
        # Earlier units had the new feature missing (number 0) or the category absent: the column is the
        # constant -origin for them, i.e. -origin times the intercept column, so its sums follow exactly.
        for j, origin in enumerate(origins, start=old):
            if origin != 0.0:
                gram[:, j, :] = -origin * gram[:, 0, :]
                gram[:, :, j] = -origin * gram[:, :, 0]
                xty[:, j] = -origin * xty[:, 0]
        self.columns += added
        self.origins += origins
        self.gram, self.xty = gram, xty

    def design(self, rows: CompactRows) -> FloatArray:
        """Raw-basis rows of ``rows`` (n x width)."""
        n = rows.size
        out = np.zeros((n, self.width))
        out[:, 0] = 1.0
        have = rows.numbers.shape[1]
        for j, ((f, c), origin) in enumerate(zip(self.columns, self.origins, strict=True), start=1):
            if f >= have:
                out[:, j] = 0.0 - origin if c == NUMERIC else 0.0
            elif c == NUMERIC:
                out[:, j] = np.nan_to_num(rows.numbers[:, f], nan=0.0) - origin
            else:
                out[:, j] = rows.categories[:, f] == c
        return out

    def add(self, rows: CompactRows, actions: IntArray, outcomes: FloatArray) -> None:
        """Accumulate ``rows`` (after ``sync``) with their variants and outcomes."""
        design = self.design(rows)
        for k in np.unique(actions):
            mask = actions == k
            x, y = design[mask], outcomes[mask]
            self.gram[k] += x.T @ x
            self.xty[k] += x.T @ y
            self.yty[k] += float(y @ y)
            self.n[k] += int(mask.sum())
            self.successes[k] += int(np.sum(y > 0))

    def pooled_outcome(self) -> tuple[float, float]:
        """Mean and (population) variance of every outcome so far."""
        n = self.units
        if n == 0:
            return 0.0, 1.0
        total = float(self.xty[:, 0].sum())
        mean = total / n
        return mean, max(float(self.yty.sum()) / n - mean * mean, 0.0)


def derive(vocabulary: Vocabulary, stats: RawStats) -> tuple[Encoding, FloatArray]:
    """The training encoding of every unit so far (``encode_training``'s rules, from the pooled sums)
    and ``T`` with encoded row = ``T @`` raw row."""
    n = stats.units
    pooled = stats.gram.sum(axis=0)
    position = {column: j for j, column in enumerate(stats.columns, start=1)}
    order = range(len(vocabulary.names))
    if vocabulary.feature_list is None:
        order = sorted(order, key=lambda f: vocabulary.names[f])  # type: ignore[assignment]
    features: list[Feature] = []
    rows: list[FloatArray] = []
    intercept = np.zeros(stats.width)
    intercept[0] = 1.0
    rows.append(intercept)
    for f in order:
        if vocabulary.present[f] == 0 or n == 0:
            continue
        name = vocabulary.names[f]
        if vocabulary.numeric[f]:
            j = position.get((f, NUMERIC))
            if j is None:
                continue
            shifted_mean = pooled[0, j] / n
            spread = float(np.sqrt(max(pooled[j, j] / n - shifted_mean * shifted_mean, 0.0)))
            centre = float(stats.origins[j - 1] + shifted_mean)
            scale = _power_of_two_scale(spread)
            features.append(NumericFeature(name, centre, scale))
            row = np.zeros(stats.width)
            row[j] = 1.0 / scale
            row[0] = (stats.origins[j - 1] - centre) / scale
            rows.append(row)
            continue
        counts = Counter(
            {value: pooled[0, position[(f, c)]] for c, value in enumerate(vocabulary.categories[f])
             if (f, c) in position}
        )  # fmt: skip
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [(value, count) for value, count in ranked if count / n > MIN_COVERAGE][:MAX_CATEGORIES]
        if not kept:
            continue
        ids = {value: c for c, value in enumerate(vocabulary.categories[f])}
        features.append(CategoricalFeature(name, tuple(v for v, _ in kept), tuple(float(c) / n for _, c in kept)))
        for value, count in kept:
            row = np.zeros(stats.width)
            row[position[(f, ids[value])]] = 1.0
            row[0] = -float(count) / n
            rows.append(row)
    return Encoding(tuple(features)), np.vstack(rows)


def value_prior(stats: RawStats, n_columns: int) -> NormalInverseGammaPrior:
    """The value models' prior, as a full refit sets it: pooled mean and variance of the outcomes."""
    mean, variance = stats.pooled_outcome()
    return NormalInverseGammaPrior.default(n_columns, mean, variance if stats.units > 1 else 1.0)


def fit_value_from_stats(
    gram: FloatArray, xty: FloatArray, yty: float, units: int, prior: NormalInverseGammaPrior
) -> ModelFit:
    """``models.fit_value`` from ``X'X``, ``X'y``, ``y'y`` and n alone (same posterior, to rounding)."""
    reason = _too_little(units, None)
    if reason is not None:
        return _nig_result(prior.mean, np.diag(prior.variance), prior.shape, prior.rate, units, reason)
    precision0 = 1.0 / prior.variance
    precision = gram + np.diag(precision0)
    factor = linalg.cho_factor(precision, lower=True)
    mean = linalg.cho_solve(factor, xty + precision0 * prior.mean)
    scale = linalg.cho_solve(factor, np.eye(mean.size))
    residual = max(yty - 2.0 * float(mean @ xty) + float(mean @ gram @ mean), 0.0)
    shape = prior.shape + units / 2.0
    rate = prior.rate + 0.5 * (residual + float(np.sum(precision0 * (mean - prior.mean) ** 2)))
    return _nig_result(mean, (scale + scale.T) / 2.0, shape, rate, units, f"fitted on {units} units")


def value_fits(stats: RawStats, transform: FloatArray) -> list[ModelFit]:
    """Every variant's value model in the derived encoding (``T S T'``, ``T X'y``)."""
    prior = value_prior(stats, transform.shape[0])
    return [
        fit_value_from_stats(
            transform @ stats.gram[k] @ transform.T,
            transform @ stats.xty[k],
            float(stats.yty[k]),
            int(stats.n[k]),
            prior,
        )
        for k in range(stats.n.size)
    ]


def encoded(stats: RawStats, transform: FloatArray, rows: CompactRows) -> FloatArray:
    """Design rows of ``rows`` in the derived encoding."""
    return np.asarray(stats.design(rows) @ transform.T, dtype=np.float64)


def counts(stats: RawStats) -> Sequence[int]:
    return [int(v) for v in stats.n]
