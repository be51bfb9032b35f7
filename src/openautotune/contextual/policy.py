"""Policies of a contextual autotune and the propensity of each decision (spec: contextual.md, "Policy").

Published policy (what the core SDK runs): with explore share ``s`` and explore weights
``q_k = (1 / (records_k + 1)) / sum_j 1 / (records_j + 1)``, a unit is explored with probability ``s``
(a variant drawn with weights ``q``) and otherwise gets the variant with the best published score
``x . w_k + alpha_k`` (highest, or lowest when lower is better; the first on ties). The probability that
it served variant ``k`` — on either path, since the server cannot tell the paths apart by design — is

    (1 - s) * 1[k = best] + s * q_k.

Server-side evaluation: Thompson sampling from a bank of posterior draws fixed at each update. With the
same explore slice, variant ``k`` is served with probability

    (1 - s) * (share of the bank's draws in which k scores best) + s * q_k,

which is computed exactly from the bank and recorded as the decision's propensity.

Withheld variants (a guardrail excluded them, contextual.md "Guardrails"): ``allowed`` masks them out of
both paths. They never score best, and ``q`` is normalised over the allowed variants only, which is what
the SDK computes from a published entry that lists the allowed groups alone; their probability is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openautotune.contextual.features import Encoding
from openautotune.contextual.models import ModelFit
from openautotune.contextual.publish import exploration_bonus, exploration_z

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def explore_weights(records: Sequence[int] | IntArray, allowed: BoolArray | None = None) -> FloatArray:
    """``q_k``: weights proportional to ``1 / (records_k + 1)``, normalised over the allowed variants (the
    SDK's explore draw among the groups it is given); 0 for a withheld one."""
    raw = 1.0 / (np.asarray(records, dtype=np.float64) + 1.0)
    if allowed is not None:
        if allowed.shape != raw.shape or not allowed.any():
            raise ValueError("allowed needs one flag per variant and at least one variant allowed")
        raw = np.where(allowed, raw, 0.0)
    return np.asarray(raw / raw.sum(), dtype=np.float64)


def best_index(scores: FloatArray, higher_is_better: bool = True, allowed: BoolArray | None = None) -> IntArray:
    """The best allowed column of each row of ``scores`` (n x K); the first one on ties."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf if higher_is_better else np.inf)
    best = np.argmax(scores, axis=1) if higher_is_better else np.argmin(scores, axis=1)
    return np.asarray(best, dtype=np.int64)


def published_probabilities(
    scores: FloatArray,
    records: Sequence[int] | IntArray,
    sample_rate: float,
    higher_is_better: bool = True,
    allowed: BoolArray | None = None,
) -> FloatArray:
    """Probability of every variant (n x K) under the published policy, from its scores (with alpha)."""
    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(f"sample rate {sample_rate} is outside 0..1")
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    q = explore_weights(records, allowed)
    if q.size != scores.shape[1]:
        raise ValueError(f"{q.size} record counts for {scores.shape[1]} variants")
    probabilities = np.tile(sample_rate * q, (scores.shape[0], 1))
    probabilities[np.arange(scores.shape[0]), best_index(scores, higher_is_better, allowed)] += 1.0 - sample_rate
    return probabilities


def published_propensity(
    scores: FloatArray,
    served: Sequence[int] | IntArray,
    records: Sequence[int] | IntArray,
    sample_rate: float,
    higher_is_better: bool = True,
    allowed: BoolArray | None = None,
) -> FloatArray:
    """The propensity of each served variant (index into the score columns) under the published policy."""
    probabilities = published_probabilities(scores, records, sample_rate, higher_is_better, allowed)
    served_index = np.asarray(served, dtype=np.int64)
    return np.asarray(probabilities[np.arange(probabilities.shape[0]), served_index], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class LinearPolicy:
    """The published policy on encoded contexts: ``weights`` (K x columns), ``alphas`` (K)."""

    weights: FloatArray
    alphas: FloatArray
    records: IntArray
    sample_rate: float
    higher_is_better: bool = True
    allowed: BoolArray | None = None
    """None: every variant; else False for each variant withheld by a guardrail (see the module doc)."""

    @staticmethod
    def from_fits(
        encoding: Encoding,
        fits: Sequence[ModelFit],
        sample_rate: float,
        exploration_window_rate: float | None = None,
        higher_is_better: bool = True,
        allowed: BoolArray | None = None,
    ) -> LinearPolicy:
        z = exploration_z(exploration_window_rate)
        return LinearPolicy(
            weights=np.array([fit.mean for fit in fits]),
            alphas=np.array([exploration_bonus(encoding, fit, z, higher_is_better) for fit in fits]),
            records=np.array([fit.units for fit in fits], dtype=np.int64),
            sample_rate=sample_rate,
            higher_is_better=higher_is_better,
            allowed=allowed,
        )

    def scores(self, X: FloatArray) -> FloatArray:
        """Published scores (n x K): linear score plus alpha, as the SDK computes them."""
        return np.asarray(np.atleast_2d(X) @ self.weights.T + self.alphas, dtype=np.float64)

    def greedy(self, X: FloatArray) -> IntArray:
        """The exploit path's variant for each row."""
        return best_index(self.scores(X), self.higher_is_better, self.allowed)

    def probabilities(self, X: FloatArray) -> FloatArray:
        """Probability of every variant for each row (n x K)."""
        return published_probabilities(
            self.scores(X), self.records, self.sample_rate, self.higher_is_better, self.allowed
        )

    def propensity(self, X: FloatArray, served: Sequence[int] | IntArray) -> FloatArray:
        return published_propensity(
            self.scores(X), served, self.records, self.sample_rate, self.higher_is_better, self.allowed
        )

    def ranking(self, x: FloatArray) -> list[tuple[int, float]]:
        """Every allowed variant with its published score at one context, best first (ties: lower index
        first); a withheld variant is not offered at all."""
        scores = self.scores(x)[0]
        offered = [k for k in range(scores.size) if self.allowed is None or bool(self.allowed[k])]
        order = sorted(offered, key=lambda k: (-scores[k] if self.higher_is_better else scores[k], k))
        return [(k, float(scores[k])) for k in order]

    def marginal_shares(self, X: FloatArray) -> FloatArray:
        """The share of traffic each variant gets over the contexts ``X`` (for SDKs that cannot score)."""
        return np.asarray(self.probabilities(X).mean(axis=0), dtype=np.float64)


@dataclass(frozen=True)
class ThompsonDecision:
    """One server-side decision: the variant's index, its exact propensity, and the path taken."""

    variant: int
    propensity: float
    explored: bool


@dataclass(frozen=True, eq=False)
class ThompsonBank:
    """Posterior draws of every variant's weights, fixed at an update: ``draws`` is (D, K, columns)."""

    draws: FloatArray
    explore: FloatArray
    """The explore weights ``q`` (0 for a withheld variant)."""
    sample_rate: float
    higher_is_better: bool = True
    allowed: BoolArray | None = None

    @staticmethod
    def build(
        fits: Sequence[ModelFit],
        rng: np.random.Generator,
        sample_rate: float,
        size: int = 1000,
        higher_is_better: bool = True,
        allowed: BoolArray | None = None,
    ) -> ThompsonBank:
        draws = np.stack([fit.draws(rng, size) for fit in fits], axis=1)
        draws.setflags(write=False)
        records = [fit.units for fit in fits]
        return ThompsonBank(draws, explore_weights(records, allowed), sample_rate, higher_is_better, allowed)

    def winners(self, x: FloatArray) -> IntArray:
        """For each draw, the index of the allowed variant that scores best at context ``x``."""
        draws, variants, columns = self.draws.shape
        scores = (self.draws.reshape(draws * variants, columns) @ np.asarray(x, dtype=np.float64)).reshape(
            draws, variants
        )
        return best_index(scores, self.higher_is_better, self.allowed)

    def probabilities(self, x: FloatArray) -> FloatArray:
        """Exact probability of every variant at context ``x`` under Thompson sampling from this bank."""
        winners = self.winners(x)
        shares = np.bincount(winners, minlength=self.explore.size) / winners.size
        return np.asarray((1.0 - self.sample_rate) * shares + self.sample_rate * self.explore, dtype=np.float64)

    def choose(self, x: FloatArray, rng: np.random.Generator) -> ThompsonDecision:
        """Serve a variant at context ``x``: explore with probability ``s``, else one draw's best variant."""
        winners = self.winners(x)
        shares = np.bincount(winners, minlength=self.explore.size) / winners.size
        probabilities = (1.0 - self.sample_rate) * shares + self.sample_rate * self.explore
        explored = bool(rng.random() < self.sample_rate)
        if explored:
            variant = int(rng.choice(self.explore.size, p=self.explore))
        else:
            variant = int(winners[rng.integers(winners.size)])
        return ThompsonDecision(variant, float(probabilities[variant]), explored)
