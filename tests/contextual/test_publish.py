from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautotune.contextual.features import Encoding, encode_training, fit_encoding
from openautotune.contextual.models import GaussianPrior, ModelFit, fit_occurrence
from openautotune.contextual.publish import (
    cmab_config,
    exploration_bonus,
    exploration_z,
    group_config,
    sample_rate,
)
from tests.contextual.sdk import as_float, lookup, sdk_score

CUSTOM_KEYS = ["age", "Plan", "score", "tier", "visits", "country", "Device"]
CATEGORIES = ["a", "b", "c", "pro", "free", "DE", "x y", "10", "true"]

values = st.one_of(
    st.none(),
    st.just(""),
    st.integers(-10_000, 10_000),
    st.floats(-1e4, 1e4, allow_nan=False),
    st.integers(-500, 500).map(str),
    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.sampled_from(CATEGORIES),
    st.booleans(),
)


@st.composite
def users(draw: st.DrawFn, numeric_bias: bool = False) -> dict[str, Any]:
    user: dict[str, Any] = {"userID": draw(st.text(min_size=1, max_size=4))}
    for field, pool in (("country", ["DE", "FR", "US", "JP"]), ("locale", ["de_DE", "en_US"])):
        if draw(st.booleans()):
            user[field] = draw(st.sampled_from(pool))
    if draw(st.booleans()):
        user["appVersion"] = draw(st.sampled_from(["1.0.0", "2.1", "3"]))
    keys = draw(st.lists(st.sampled_from(CUSTOM_KEYS), unique_by=str.lower, max_size=len(CUSTOM_KEYS)))
    custom: dict[str, Any] = {}
    for key in keys:
        spelt = draw(st.sampled_from([key, key.lower(), key.upper()]))
        if numeric_bias and key in ("age", "score", "visits"):
            custom[spelt] = draw(st.one_of(st.integers(0, 100), st.integers(0, 100).map(str), st.none()))
        else:
            custom[spelt] = draw(values)
    user["custom"] = custom
    return user


def _fit_with_weights(encoding: Encoding, weights: np.ndarray, covariance: np.ndarray) -> ModelFit:
    return ModelFit(
        "occurrence", weights, covariance, 100, 10, False, "test", 1, np.linalg.cholesky(covariance), None, None
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.lists(users(numeric_bias=True), min_size=1, max_size=40),
    feature_list=st.one_of(st.none(), st.lists(st.sampled_from([*CUSTOM_KEYS, "Country", "appversion", "ip"]))),
    others=st.lists(users(), max_size=15),
    seed=st.integers(0, 2**32 - 1),
)
def test_sdk_score_equals_the_server_score_for_any_user(
    population: list[dict[str, Any]], feature_list: list[str] | None, others: list[dict[str, Any]], seed: int
) -> None:
    encoding, training = encode_training(population, feature_list)
    assert encoding == fit_encoding(population, feature_list)
    np.testing.assert_array_equal(training, encoding.transform(population))
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 3, encoding.n_columns)
    root = rng.normal(0, 0.3, (encoding.n_columns, encoding.n_columns))
    fit = _fit_with_weights(encoding, weights, root @ root.T + np.eye(encoding.n_columns))
    alpha = exploration_bonus(encoding, fit, 1.96)
    group = group_config(encoding, fit, alpha)
    assert group["weightsNumerical"] or group["weightsCategorical"]
    everyone = population + others
    design = encoding.transform(everyone)
    server = design @ weights + alpha
    for user, row, expected in zip(everyone, design, server, strict=True):
        assert abs(sdk_score(group, user) - expected) <= _tolerance(group, user)
        np.testing.assert_array_equal(encoding.transform_one(user), row)


def _tolerance(group: dict[str, Any], user: dict[str, Any]) -> float:
    """1e-9, or 1e-13 of the size of the score's terms when they are huge (a 1e20 term cannot be
    summed to 1e-9 in double precision by anyone: the rounding of the SDK's own sum is larger)."""
    size = abs(group["intercept"]) + abs(group["alpha"])
    for feature, weight in group["weightsNumerical"].items():
        size += abs(weight * (as_float(lookup(user, feature)) or 0.0))
    for by_value in group["weightsCategorical"].values():
        size += sum(abs(w) for w in by_value.values())
    return max(1e-9, 1e-13 * size)


def test_published_weights_of_a_fitted_model() -> None:
    rng = np.random.default_rng(3)
    population = [
        {
            "country": str(rng.choice(["DE", "FR", "US"])),
            "custom": {"age": int(rng.integers(18, 70)), "vip": bool(i % 3)},
        }
        for i in range(400)
    ]
    encoding = fit_encoding(population, ["country", "age", "vip"])
    X = encoding.transform(population)
    y = (rng.random(400) < 0.3).astype(float)
    fit = fit_occurrence(X, y, GaussianPrior.default(encoding.n_columns, base_rate=0.3))
    config = cmab_config(encoding, {"v1": fit}, exploration_window_rate=None)
    group = config["v1"]
    assert group["records"] == 400
    assert group["alpha"] == pytest.approx(1.96 * np.sqrt(fit.covariance[0, 0]))
    assert set(group["weightsCategorical"]) == {"country", "vip"}  # type: ignore[arg-type]
    assert set(group["weightsCategorical"]["vip"]) == {"true", "false"}  # type: ignore[index]
    assert set(group["weightsNumerical"]) == {"age"}  # type: ignore[arg-type]
    for user, expected in zip(population, X @ fit.mean + group["alpha"], strict=True):  # type: ignore[operator]
        assert sdk_score(group, user) == pytest.approx(expected, abs=1e-9, rel=0)
    lower = cmab_config(encoding, {"v1": fit}, exploration_window_rate=1.0, higher_is_better=False)["v1"]
    assert lower["alpha"] == pytest.approx(-3.09 * np.sqrt(fit.covariance[0, 0]))


def test_a_model_without_features_still_publishes_a_weight() -> None:
    encoding = fit_encoding([{"custom": {}}] * 30)
    assert encoding.n_columns == 1
    fit = _fit_with_weights(encoding, np.array([0.7]), np.eye(1))
    group = group_config(encoding, fit, 0.0)
    assert group["weightsNumerical"] == {"__bias": 0.0} and group["intercept"] == 0.7
    assert sdk_score(group, {"custom": {"__bias": 5}}) == pytest.approx(0.7)


def test_exploration_z_interpolates_between_the_anchors() -> None:
    assert exploration_z(None) == 1.96
    assert exploration_z(0.001) == 0.0
    assert exploration_z(1.0) == pytest.approx(3.09)
    assert exploration_z(0.001 * 1000**0.5) == pytest.approx(3.09 / 2)
    rates = [0.001, 0.002, 0.01, 0.1, 0.5, 1.0]
    assert [exploration_z(r) for r in rates] == sorted(exploration_z(r) for r in rates)


def test_sample_rate_starts_at_one_and_decays_to_the_floor() -> None:
    assert sample_rate(0, 3) == 1.0
    assert sample_rate(60, 3) == 1.0
    assert sample_rate(240, 3) == pytest.approx(0.5)
    assert sample_rate(6000, 3) == pytest.approx(0.1)
    assert sample_rate(10**9, 3) == 0.01
    assert sample_rate(10**9, 3, floor=0.05) == 0.05
    rates = [sample_rate(n, 4) for n in range(0, 100_000, 997)]
    assert rates == sorted(rates, reverse=True)
