"""Online Laplace for the occurrence models (contextual.md, "Models"; docs/contextual.md, "Incremental").

The posterior after the units seen so far is approximated by a Gaussian ``N(m, P^-1)`` (mean and
precision). When new units ``(X, y)`` mature, that Gaussian becomes their prior: the new mean is the
maximum of ``log p(y | X, w) - (w - m)' P (w - m) / 2`` (Newton's method with step halving, as
``models.fit_occurrence``) and the new precision ``P + X' W X`` at that maximum. This is assumed-density
filtering: exact for a Gaussian likelihood, an approximation for the logistic one, because the curvature of
earlier units' likelihood is frozen at the weights of their own update. A full refit on a bounded window
(``incremental``) resets the approximation; ``bench/contextual.py`` measures it against the full fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg
from scipy.special import expit

from openautotune.contextual.models import ModelFit, _readonly, newton_map

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Gaussian:
    """A Gaussian posterior over the weights, by mean and precision."""

    mean: FloatArray
    precision: FloatArray


def _objective(X: FloatArray, y: FloatArray, w: FloatArray, prior: Gaussian) -> float:
    eta = X @ w
    delta = w - prior.mean
    return float(np.sum(y * eta - np.logaddexp(0.0, eta))) - 0.5 * float(delta @ prior.precision @ delta)


def laplace_step(prior: Gaussian, X: FloatArray, y: FloatArray) -> tuple[Gaussian, int]:
    """The Laplace posterior of logistic weights given ``prior`` and the units ``(X, y)``."""
    w = prior.mean.copy()
    if y.size == 0:
        return prior, 0
    w, iterations = newton_map(X, y, w, lambda v: _objective(X, y, v, prior), prior.mean, prior.precision)
    p = expit(X @ w)
    precision = (X * (p * (1.0 - p))[:, None]).T @ X + prior.precision
    return Gaussian(w, (precision + precision.T) / 2.0), iterations


def occurrence_fit(posterior: Gaussian, units: int, successes: int, message: str) -> ModelFit:
    """A ``ModelFit`` (mean, Laplace covariance, draw factor) from a Gaussian posterior."""
    factor = linalg.cho_factor(posterior.precision, lower=True)
    cov = linalg.cho_solve(factor, np.eye(posterior.mean.size))
    cov = (cov + cov.T) / 2.0
    return ModelFit(
        "occurrence", _readonly(posterior.mean), _readonly(cov), units, successes, False, message, 0,
        _readonly(linalg.cholesky(cov, lower=True)), None, None,
    )  # fmt: skip


def from_fit(fit: ModelFit) -> Gaussian:
    """The Gaussian of a full occurrence fit (its Laplace covariance inverted)."""
    precision = linalg.cho_solve(linalg.cho_factor(fit.covariance, lower=True), np.eye(fit.mean.size))
    return Gaussian(np.array(fit.mean), (precision + precision.T) / 2.0)
