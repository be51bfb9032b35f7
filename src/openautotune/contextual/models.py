"""Per-variant Bayesian models of a contextual autotune (spec: contextual.md, "Models").

- Occurrence (did the unit succeed?): Bayesian logistic regression with an independent Gaussian prior
  on the weights; the maximum a posteriori weights by Newton's method (IRLS) with step halving, and the
  Laplace approximation ``(X' W X + P)^-1`` as the posterior covariance.
- Value (what did the unit score?): Bayesian linear regression with the conjugate normal-inverse-gamma
  prior ``w | s2 ~ N(m0, s2 V0)``, ``s2 ~ InvGamma(a0, b0)``; the posterior of the weights is a
  multivariate Student-t whose mean and covariance are exposed.

Both work on the design matrices of ``features.Encoding`` (column 0 = intercept, other columns centred
and scaled), are deterministic (same data, same weights), and answer "too little data" (fewer than
``MIN_UNITS`` units, or an occurrence model with no success yet) with the prior itself and a message,
never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import linalg
from scipy.special import expit

FloatArray = npt.NDArray[np.float64]
Kind = Literal["occurrence", "value"]

MIN_UNITS: Final = 20
NEWTON_MAX_ITERATIONS: Final = 100
NEWTON_TOLERANCE: Final = 1e-10


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """Independent normal prior on the weights of a logistic model (standardised columns)."""

    mean: FloatArray
    variance: FloatArray

    @staticmethod
    def default(n_columns: int, base_rate: float | None = None, weight_sd: float = 1.0) -> GaussianPrior:
        """Intercept ~ N(logit(base_rate), 2^2) (base rate clipped to [1e-4, 1 - 1e-4]; 0 when unknown),
        each standardised weight ~ N(0, weight_sd^2)."""
        mean = np.zeros(n_columns)
        if base_rate is not None:
            rate = min(max(base_rate, 1e-4), 1 - 1e-4)
            mean[0] = float(np.log(rate / (1 - rate)))
        variance = np.full(n_columns, weight_sd**2)
        variance[0] = 4.0
        return GaussianPrior(mean, variance)


@dataclass(frozen=True, eq=False)
class NormalInverseGammaPrior:
    """``w | s2 ~ N(mean, s2 diag(variance))``, ``s2 ~ InvGamma(shape, rate)``."""

    mean: FloatArray
    variance: FloatArray
    shape: float
    rate: float

    @staticmethod
    def default(n_columns: int, base_mean: float = 0.0, base_variance: float = 1.0) -> NormalInverseGammaPrior:
        """Intercept ~ base_mean with 100 noise variances of room, each standardised weight with one;
        ``s2`` with shape 2 and prior mean ``base_variance`` (floored at 1e-12)."""
        mean = np.zeros(n_columns)
        mean[0] = base_mean
        variance = np.ones(n_columns)
        variance[0] = 100.0
        return NormalInverseGammaPrior(mean, variance, 2.0, max(base_variance, 1e-12))


@dataclass(frozen=True, eq=False)
class ModelFit:
    """One variant's posterior over the weights of its linear score ``x . w``.

    ``draw_factor`` is a matrix ``F`` with ``F F' = `` the scale of the posterior: draws are
    ``mean + F z`` (Gaussian, ``dof`` None) or ``mean + F z * sqrt(dof / chi2_dof)`` (Student-t).
    """

    kind: Kind
    mean: FloatArray
    covariance: FloatArray
    units: int
    successes: int | None
    on_prior: bool
    message: str
    iterations: int
    draw_factor: FloatArray
    dof: float | None
    noise_variance: float | None

    def linear_score(self, X: FloatArray) -> FloatArray:
        """The linear score ``X @ mean`` (what the SDK computes, before alpha)."""
        return np.asarray(X @ self.mean, dtype=np.float64)

    def predict_mean(self, X: FloatArray) -> FloatArray:
        """Predicted outcome: success probability (occurrence) or expected value (value)."""
        score = self.linear_score(X)
        return np.asarray(expit(score), dtype=np.float64) if self.kind == "occurrence" else score

    def score_sd(self, x: FloatArray) -> float:
        """Posterior standard deviation of the linear score ``x . w`` at one context (a design row)."""
        return float(self.score_sds(np.atleast_2d(x))[0])

    def score_sds(self, X: FloatArray) -> FloatArray:
        """Posterior standard deviation of the linear score at each row of ``X``."""
        variance = np.einsum("ij,jk,ik->i", X, self.covariance, X)
        return np.asarray(np.sqrt(np.maximum(variance, 0.0)), dtype=np.float64)

    def draws(self, rng: np.random.Generator, size: int) -> FloatArray:
        """``size`` posterior draws of the weights (size x n_columns)."""
        z = rng.standard_normal((size, self.mean.size)) @ self.draw_factor.T
        if self.dof is not None:
            z *= np.sqrt(self.dof / rng.chisquare(self.dof, size))[:, None]
        return np.asarray(self.mean + z, dtype=np.float64)


def _readonly(array: FloatArray) -> FloatArray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def _too_little(units: int, successes: int | None) -> str | None:
    if units < MIN_UNITS:
        return f"{units} units; the model needs at least {MIN_UNITS}, so this variant stays on its prior"
    if successes == 0:
        return "no success yet, so this variant stays on its prior"
    return None


def _validate(X: FloatArray, y: FloatArray, n_columns: int) -> None:
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"design {X.shape} and outcomes {y.shape} do not match")
    if X.shape[1] != n_columns:
        raise ValueError(f"design has {X.shape[1]} columns, the prior {n_columns}")


def newton_map(
    X: FloatArray,
    y: FloatArray,
    w: FloatArray,
    objective: Callable[[FloatArray], float],
    prior_mean: FloatArray,
    prior_precision: FloatArray,
) -> tuple[FloatArray, int]:
    """The maximum of a logistic log posterior with a Gaussian prior (``prior_precision`` a matrix) from
    ``w``: Newton's method with step halving on ``objective``; the weights and the iterations taken."""
    current = objective(w)
    iterations = 0
    for iterations in range(1, NEWTON_MAX_ITERATIONS + 1):  # noqa: B007
        p = expit(X @ w)
        gradient = X.T @ (y - p) - prior_precision @ (w - prior_mean)
        hessian = (X * (p * (1.0 - p))[:, None]).T @ X + prior_precision
        step = linalg.cho_solve(linalg.cho_factor(hessian, lower=True), gradient)
        size = 1.0
        while True:
            candidate = w + size * step
            value = objective(candidate)
            if value >= current or size < 1e-10:
                break
            size /= 2.0
        w, current = candidate, value
        if float(np.max(np.abs(size * step))) < NEWTON_TOLERANCE:
            break
    return w, iterations


def _log_posterior(X: FloatArray, y: FloatArray, w: FloatArray, prior: GaussianPrior) -> float:
    eta = X @ w
    likelihood = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return likelihood - 0.5 * float(np.sum((w - prior.mean) ** 2 / prior.variance))


def fit_occurrence(X: FloatArray, y: FloatArray, prior: GaussianPrior) -> ModelFit:
    """Bayesian logistic regression of ``y`` (0/1) on ``X``: MAP weights and Laplace covariance."""
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    y = np.asarray(y, dtype=np.float64)
    _validate(X, y, prior.mean.size)
    units, successes = int(y.size), int(np.sum(y > 0))
    reason = _too_little(units, successes)
    if reason is not None:
        cov = np.diag(prior.variance)
        return ModelFit(
            "occurrence", _readonly(prior.mean), _readonly(cov), units, successes, True, reason, 0,
            _readonly(np.diag(np.sqrt(prior.variance))), None, None,
        )  # fmt: skip
    precision = 1.0 / prior.variance
    w = prior.mean.copy()
    rate = successes / units
    w[0] = float(np.log(rate / (1.0 - rate))) if 0 < successes < units else w[0]  # columns 1.. are centred
    w, iterations = newton_map(X, y, w, lambda v: _log_posterior(X, y, v, prior), prior.mean, np.diag(precision))
    p = expit(X @ w)
    hessian = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(precision)
    cov = linalg.cho_solve(linalg.cho_factor(hessian, lower=True), np.eye(w.size))
    cov = (cov + cov.T) / 2.0
    message = f"fitted on {units} units with {successes} successes in {iterations} Newton steps"
    return ModelFit(
        "occurrence", _readonly(w), _readonly(cov), units, successes, False, message, iterations,
        _readonly(linalg.cholesky(cov, lower=True)), None, None,
    )  # fmt: skip


def fit_value(X: FloatArray, y: FloatArray, prior: NormalInverseGammaPrior) -> ModelFit:
    """Bayesian linear regression of ``y`` on ``X`` with a normal-inverse-gamma prior (conjugate)."""
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    y = np.asarray(y, dtype=np.float64)
    _validate(X, y, prior.mean.size)
    units = int(y.size)
    reason = _too_little(units, None)
    if reason is not None:
        return _nig_result(prior.mean, np.diag(prior.variance), prior.shape, prior.rate, units, reason)
    precision0 = 1.0 / prior.variance
    precision = X.T @ X + np.diag(precision0)
    factor = linalg.cho_factor(precision, lower=True)
    mean = linalg.cho_solve(factor, X.T @ y + precision0 * prior.mean)
    scale = linalg.cho_solve(factor, np.eye(mean.size))
    residual = y - X @ mean
    shape = prior.shape + units / 2.0
    rate = prior.rate + 0.5 * (float(residual @ residual) + float(np.sum(precision0 * (mean - prior.mean) ** 2)))
    return _nig_result(mean, (scale + scale.T) / 2.0, shape, rate, units, f"fitted on {units} units")


def _nig_result(mean: FloatArray, scale: FloatArray, shape: float, rate: float, units: int, message: str) -> ModelFit:
    on_prior = units < MIN_UNITS
    dof = 2.0 * shape
    t_scale = scale * (rate / shape)
    covariance = t_scale * dof / (dof - 2.0) if dof > 2.0 else t_scale * np.inf
    return ModelFit(
        "value", _readonly(mean), _readonly(covariance), units, None, on_prior, message, 0,
        _readonly(linalg.cholesky(t_scale, lower=True)), dof, rate / (shape - 1.0) if shape > 1.0 else None,
    )  # fmt: skip
