from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from openautotune.contextual.models import (
    MIN_UNITS,
    GaussianPrior,
    NormalInverseGammaPrior,
    fit_occurrence,
    fit_value,
)


def _logistic_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 3))])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ [-1.0, 0.8, -0.5, 0.0])))).astype(float)
    return X, y


def test_logistic_map_matches_l2_logistic_regression() -> None:
    X, y = _logistic_data(2000, 0)
    prior = GaussianPrior(np.zeros(4), np.full(4, 0.5))
    fit = fit_occurrence(X, y, prior)
    # sklearn minimises C * log-loss + ||w||^2 / 2: the same objective as a N(0, C) prior.
    reference = LogisticRegression(C=0.5, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(fit.mean, reference.coef_[0], atol=1e-6)
    assert not fit.on_prior and fit.units == 2000 and fit.successes == int(y.sum())


def test_laplace_covariance_is_the_inverse_hessian_at_the_map() -> None:
    X, y = _logistic_data(500, 1)
    prior = GaussianPrior(np.array([0.3, 0, 0, 0]), np.array([4.0, 1, 1, 1]))
    fit = fit_occurrence(X, y, prior)
    p = 1 / (1 + np.exp(-(X @ fit.mean)))
    gradient = X.T @ (y - p) - (fit.mean - prior.mean) / prior.variance
    np.testing.assert_allclose(gradient, 0.0, atol=1e-8)
    hessian = X.T @ np.diag(p * (1 - p)) @ X + np.diag(1 / prior.variance)
    np.testing.assert_allclose(fit.covariance, np.linalg.inv(hessian), rtol=1e-9)
    x = np.array([1.0, 0.5, -1.0, 2.0])
    assert fit.score_sd(x) == pytest.approx(np.sqrt(x @ np.linalg.inv(hessian) @ x), rel=1e-9)
    np.testing.assert_allclose(fit.predict_mean(X[:3]), 1 / (1 + np.exp(-(X[:3] @ fit.mean))))


def test_fits_are_deterministic() -> None:
    X, y = _logistic_data(1000, 2)
    prior = GaussianPrior.default(4, base_rate=0.3)
    first, second = fit_occurrence(X, y, prior), fit_occurrence(X.copy(), y.copy(), prior)
    assert first.mean.tobytes() == second.mean.tobytes()
    assert first.covariance.tobytes() == second.covariance.tobytes()
    value_prior = NormalInverseGammaPrior.default(4)
    assert fit_value(X, y, value_prior).mean.tobytes() == fit_value(X.copy(), y.copy(), value_prior).mean.tobytes()


def test_separable_data_still_converges_thanks_to_the_prior() -> None:
    X = np.column_stack([np.ones(40), np.r_[-np.ones(20), np.ones(20)]])
    y = np.r_[np.zeros(20), np.ones(20)]
    fit = fit_occurrence(X, y, GaussianPrior(np.zeros(2), np.full(2, 100.0)))
    assert np.all(np.isfinite(fit.mean)) and fit.mean[1] > 2


def test_too_little_data_keeps_the_prior_with_a_message() -> None:
    X, y = _logistic_data(MIN_UNITS - 1, 3)
    prior = GaussianPrior.default(4, base_rate=0.1)
    fit = fit_occurrence(X, y, prior)
    assert fit.on_prior and "at least 20" in fit.message
    np.testing.assert_array_equal(fit.mean, prior.mean)
    np.testing.assert_array_equal(fit.covariance, np.diag(prior.variance))
    assert prior.mean[0] == pytest.approx(np.log(0.1 / 0.9))
    no_success = fit_occurrence(*_logistic_data(100, 4)[:1], np.zeros(100), prior)
    assert no_success.on_prior and "no success" in no_success.message
    X20 = _logistic_data(MIN_UNITS, 5)[0]
    enough = fit_occurrence(X20, np.r_[1.0, np.zeros(MIN_UNITS - 1)], prior)  # 20 units, one success: fitted
    assert not enough.on_prior and enough.units == MIN_UNITS and enough.successes == 1
    assert "fitted on 20 units" in enough.message
    value = fit_value(X, y, NormalInverseGammaPrior.default(4))
    assert value.on_prior and "at least 20" in value.message


def test_value_model_is_the_conjugate_posterior() -> None:
    rng = np.random.default_rng(6)
    X = np.column_stack([np.ones(300), rng.standard_normal((300, 2))])
    y = X @ [2.0, 1.0, -0.5] + rng.normal(0, 1.5, 300)
    prior = NormalInverseGammaPrior(np.array([1.0, 0, 0]), np.array([10.0, 2.0, 2.0]), 3.0, 2.0)
    fit = fit_value(X, y, prior)
    # Textbook form: Vn = (V0^-1 + X'X)^-1, mn = Vn (V0^-1 m0 + X'y), an = a0 + n/2,
    # bn = b0 + (y'y + m0'V0^-1 m0 - mn'Vn^-1 mn) / 2, Cov(w) = bn / (an - 1) Vn.
    v0_inv = np.diag(1 / prior.variance)
    vn = np.linalg.inv(v0_inv + X.T @ X)
    mn = vn @ (v0_inv @ prior.mean + X.T @ y)
    an = prior.shape + 150
    bn = prior.rate + (y @ y + prior.mean @ v0_inv @ prior.mean - mn @ np.linalg.inv(vn) @ mn) / 2
    np.testing.assert_allclose(fit.mean, mn, rtol=1e-10)
    np.testing.assert_allclose(fit.covariance, bn / (an - 1) * vn, rtol=1e-8)
    assert fit.noise_variance == pytest.approx(bn / (an - 1), rel=1e-8)
    np.testing.assert_allclose(fit.predict_mean(X[:2]), X[:2] @ mn, rtol=1e-10)


def test_draws_follow_the_posterior() -> None:
    X, y = _logistic_data(3000, 7)
    rng = np.random.default_rng(8)
    for fit in (fit_occurrence(X, y, GaussianPrior.default(4)), fit_value(X, y, NormalInverseGammaPrior.default(4))):
        draws = fit.draws(rng, 40_000)
        sd = np.sqrt(np.diag(fit.covariance))
        assert np.all(np.abs(draws.mean(axis=0) - fit.mean) < 4 * sd / np.sqrt(40_000))
        np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.05)


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="columns"):
        fit_occurrence(np.ones((30, 3)), np.ones(30), GaussianPrior.default(4))
    with pytest.raises(ValueError, match="do not match"):
        fit_value(np.ones((30, 4)), np.ones(29), NormalInverseGammaPrior.default(4))
