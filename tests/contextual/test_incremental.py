"""Incremental contextual learning (docs/contextual.md, "Incremental updates"): sufficient statistics
against a direct solve, online Laplace against a full fit, many updates against one over every unit
(late categories, late and missing features, a feature changing type), the reservoir and the state's
round trip through storage."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from openautotune.contextual import incremental
from openautotune.contextual.compact import MAX_TRACKED, Vocabulary, encode
from openautotune.contextual.features import encode_training
from openautotune.contextual.incremental import Batch, RunState, absorb, train_occurrence, train_value
from openautotune.contextual.models import GaussianPrior, NormalInverseGammaPrior, fit_occurrence, fit_value
from openautotune.contextual.online import Gaussian, laplace_step
from openautotune.contextual.sufficient import fit_value_from_stats

K = 3


def _users(rng: np.random.Generator, n: int, start: int, late: bool) -> list[dict[str, Any]]:
    users = []
    for i in range(n):
        custom: dict[str, Any] = {"age": int(rng.integers(18, 80)), "plan": str(rng.choice(["free", "pro", "team"]))}
        if rng.random() < 0.2:
            del custom["age"]  # a feature missing for some units
        if late:
            custom["plan"] = str(rng.choice(["free", "pro", "team", "enterprise"]))  # a category first seen late
            custom["score"] = round(float(rng.normal(500, 80)), 2)  # a feature first seen late
        users.append({"userID": f"u{start + i}", "country": str(rng.choice(["DE", "FR"])), "custom": custom})
    return users


def _outcome(users: list[dict[str, Any]], actions: np.ndarray, rng: np.random.Generator, value: bool) -> np.ndarray:
    age = np.array([u["custom"].get("age", 40) for u in users], dtype=float)
    pro = np.array([u["custom"]["plan"] in ("pro", "enterprise") for u in users], dtype=float)
    signal = (age - 45) / 15 * (actions - 1) + pro * (actions == 2)
    if value:
        return np.asarray(10 + 2 * signal + rng.normal(0, 1, len(users)), dtype=np.float64)
    return (rng.random(len(users)) < 1 / (1 + np.exp(-(signal - 0.5)))).astype(np.float64)


def _batches(value: bool, sizes: list[int], seed: int = 0) -> list[tuple[list[dict[str, Any]], np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out, start = [], 0
    for b, n in enumerate(sizes):
        users = _users(rng, n, start, late=b >= len(sizes) // 2)
        actions = rng.integers(0, K, n)
        out.append((users, actions, _outcome(users, actions, rng, value)))
        start += n
    return out


def _run(batches: list[tuple[list[dict[str, Any]], np.ndarray, np.ndarray]], value: bool) -> RunState:
    state = RunState.start(K, None)
    stored: list[Batch] = []
    for users, actions, outcomes in batches:
        rows, flipped = encode(state.vocabulary, users)
        batch = Batch(rows, actions.astype(np.int64), outcomes, np.full(len(users), 1 / K))
        absorb(state, batch, flipped, lambda: list(stored), seed=7)
        stored.append(batch)
        if value:
            train_value(state)
        else:
            train_occurrence(state, batch, lambda units: list(reversed(stored[:-1])))
    return state


def test_sufficient_statistics_give_the_direct_solve() -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(500), rng.normal(0, 1, (500, 6))])
    y = X @ rng.normal(0, 1, 7) + rng.normal(0, 0.5, 500) + 3
    prior = NormalInverseGammaPrior.default(7, float(y.mean()), float(y.var()))
    direct = fit_value(X, y, prior)
    stats = fit_value_from_stats(X.T @ X, X.T @ y, float(y @ y), 500, prior)
    np.testing.assert_allclose(stats.mean, direct.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.covariance, direct.covariance, rtol=1e-9, atol=1e-15)
    assert stats.dof == direct.dof and stats.noise_variance == pytest.approx(direct.noise_variance, rel=1e-9)


def test_value_models_over_many_updates_equal_one_full_refit() -> None:
    batches = _batches(True, [150] * 12)
    state = _run(batches, value=True)
    trained = train_value(state)
    users = [u for b in batches for u in b[0]]
    actions = np.concatenate([b[1] for b in batches])
    outcomes = np.concatenate([b[2] for b in batches])
    encoding, design = encode_training(users)
    assert encoding.column_names == trained.encoding.column_names
    assert "plan=enterprise" in encoding.column_names and "score" in encoding.column_names  # late arrivals
    for new, old in zip(trained.encoding.features, encoding.features, strict=True):
        for item in dataclasses.fields(new):
            a, b = getattr(new, item.name), getattr(old, item.name)
            numbers = isinstance(a, float) or (isinstance(a, tuple) and all(isinstance(v, float) for v in a))
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12) if numbers else a == b
    prior = NormalInverseGammaPrior.default(design.shape[1], float(outcomes.mean()), float(outcomes.var()))
    for k in range(K):
        full = fit_value(design[actions == k], outcomes[actions == k], prior)
        np.testing.assert_allclose(trained.fits[k].mean, full.mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(trained.fits[k].covariance, full.covariance, rtol=1e-9, atol=1e-12)
    # The encoded rows of stored units are the full refit's design rows.
    np.testing.assert_allclose(trained.encode(state.reservoir.rows)[:5], design[:5], atol=1e-12)


def _tier(rng: np.random.Generator, batch: int) -> object:
    return int(rng.integers(1, 4)) if batch < 2 else str(rng.choice(["1", "x"]))


def test_a_feature_that_turns_categorical_is_rebuilt_from_stored_rows() -> None:
    rng = np.random.default_rng(3)
    batches = []
    for b in range(4):
        users: list[dict[str, Any]] = [{"userID": f"{b}-{i}", "custom": {"tier": _tier(rng, b)}} for i in range(200)]
        actions = rng.integers(0, K, 200)
        batches.append((users, actions, rng.normal(5, 1, 200)))
    state = _run(batches, value=True)
    assert state.rebuilt and state.vocabulary.numeric == [False]
    trained = train_value(state)
    users = [u for b in batches for u in b[0]]
    encoding, design = encode_training(users)
    assert sorted(encoding.column_names) == sorted(trained.encoding.column_names)
    outcomes = np.concatenate([b[2] for b in batches])
    actions = np.concatenate([b[1] for b in batches])
    prior = NormalInverseGammaPrior.default(design.shape[1], float(outcomes.mean()), float(outcomes.var()))
    full = fit_value(design[actions == 0], outcomes[actions == 0], prior)
    order = [encoding.column_names.index(name) for name in trained.encoding.column_names]
    np.testing.assert_allclose(trained.fits[0].mean, full.mean[order], rtol=1e-9, atol=1e-9)


def test_online_laplace_tracks_the_full_fit_on_a_small_case() -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(3000), rng.normal(0, 1, (3000, 4))])
    truth = np.array([-1.0, 0.8, -0.5, 0.3, 0.0])
    y = (rng.random(3000) < 1 / (1 + np.exp(-X @ truth))).astype(float)
    prior = GaussianPrior.default(5, base_rate=float(y.mean()))
    full = fit_occurrence(X, y, prior)
    posterior = Gaussian(prior.mean, np.diag(1 / prior.variance))
    for chunk in np.array_split(np.arange(3000), 15):
        posterior, _ = laplace_step(posterior, X[chunk], y[chunk])
    assert np.corrcoef(posterior.mean, full.mean)[0, 1] > 0.999
    np.testing.assert_allclose(posterior.mean, full.mean, atol=0.03)
    np.testing.assert_allclose(np.linalg.inv(posterior.precision), full.covariance, rtol=0.1, atol=1e-4)
    # One step over everything from the prior is the full fit itself.
    once, _ = laplace_step(Gaussian(prior.mean, np.diag(1 / prior.variance)), X, y)
    np.testing.assert_allclose(once.mean, full.mean, atol=1e-8)


def test_occurrence_updates_follow_the_full_refit_and_refit_on_drift() -> None:
    batches = _batches(False, [400] * 10, seed=4)
    state = _run(batches, value=False)
    epoch = state.epoch
    assert epoch is not None and epoch.refit_at > 1  # the late category and feature forced a refit
    users = [u for b in batches for u in b[0]]
    actions = np.concatenate([b[1] for b in batches])
    outcomes = np.concatenate([b[2] for b in batches])
    design = epoch.design(state.stats, incremental.normalised(state.vocabulary, _all_rows(state, batches)))
    prior = GaussianPrior.default(design.shape[1], base_rate=epoch.base_rate)
    assert len(users) == design.shape[0]
    for k in range(K):
        full = fit_occurrence(design[actions == k], outcomes[actions == k], prior)
        online = epoch.posteriors[k]
        assert online is not None
        assert np.corrcoef(online.mean, full.mean)[0, 1] > 0.99


def _all_rows(state: RunState, batches: list[tuple[list[dict[str, Any]], np.ndarray, np.ndarray]]) -> Any:
    vocabulary = Vocabulary.from_json(state.vocabulary.to_json())
    from openautotune.contextual.compact import CompactRows

    parts = [encode(vocabulary, users)[0] for users, _, _ in batches]
    return CompactRows.concatenate(parts, len(vocabulary.names))


def test_state_round_trips_through_storage_and_the_reservoir_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "RESERVOIR_SIZE", 250)
    batches = _batches(False, [200] * 6, seed=5)
    state = _run(batches, value=False)
    assert state.reservoir.size == 250 and state.seen == 1200
    meta, payload = state.to_storage()
    again = RunState.from_storage(meta, payload)
    np.testing.assert_array_equal(again.stats.gram, state.stats.gram)
    np.testing.assert_array_equal(again.reservoir.actions, state.reservoir.actions)
    assert again.epoch is not None and state.epoch is not None
    for a, b in zip(again.epoch.posteriors, state.epoch.posteriors, strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.precision, b.precision)
    assert again.vocabulary.categories == state.vocabulary.categories


def test_category_dictionaries_are_bounded() -> None:
    vocabulary = Vocabulary.start(["city"])
    users = [{"userID": str(i), "custom": {"city": f"c{i}"}} for i in range(MAX_TRACKED + 10)]
    rows, _ = encode(vocabulary, users)
    assert len(vocabulary.categories[0]) == MAX_TRACKED
    assert int((rows.categories[:, 0] == -2).sum()) == 10  # untracked: they add 0, like a rare value
