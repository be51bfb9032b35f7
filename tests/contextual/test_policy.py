from __future__ import annotations

import numpy as np
import pytest

from openautotune.contextual.features import Encoding, fit_encoding
from openautotune.contextual.models import GaussianPrior, ModelFit, fit_occurrence
from openautotune.contextual.policy import (
    LinearPolicy,
    ThompsonBank,
    explore_weights,
    published_probabilities,
    published_propensity,
)
from openautotune.contextual.publish import cmab_config
from tests.contextual.sdk import sdk_score


def test_explore_weights_are_inverse_records_normalised() -> None:
    np.testing.assert_allclose(explore_weights([0, 1, 3]), np.array([1, 1 / 2, 1 / 4]) / 1.75)


def test_published_probabilities() -> None:
    scores = np.array([[0.1, 0.5, 0.2], [3.0, -1.0, 0.0]])
    q = explore_weights([10, 20, 30])
    p = published_probabilities(scores, [10, 20, 30], 0.2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], 0.2 * q + [0, 0.8, 0])
    np.testing.assert_allclose(p[1], 0.2 * q + [0.8, 0, 0])
    lower = published_probabilities(scores, [10, 20, 30], 0.2, higher_is_better=False)
    np.testing.assert_allclose(lower[0], 0.2 * q + [0.8, 0, 0])
    np.testing.assert_allclose(lower[1], 0.2 * q + [0, 0.8, 0])
    np.testing.assert_allclose(published_propensity(scores, [2, 0], [10, 20, 30], 0.2), [0.2 * q[2], 0.8 + 0.2 * q[0]])
    with pytest.raises(ValueError, match="outside"):
        published_probabilities(scores, [1, 2, 3], 1.5)


def test_propensity_matches_the_frequency_of_the_sdk_procedure() -> None:
    """Simulate the SDK: explore (draw with q) below the sample rate, else the best score."""
    rng = np.random.default_rng(11)
    scores = np.array([0.3, 0.9, 0.1, 0.5])
    records = [5, 50, 500, 0]
    s = 0.3
    n = 200_000
    explore = rng.random(n) < s
    served = np.where(explore, rng.choice(4, size=n, p=explore_weights(records)), int(np.argmax(scores)))
    frequencies = np.bincount(served, minlength=4) / n
    expected = published_probabilities(scores[None, :], records, s)[0]
    np.testing.assert_allclose(frequencies, expected, atol=4 * np.sqrt(0.25 / n))


def _fitted(seed: int) -> tuple[list[dict[str, object]], Encoding, list[ModelFit]]:
    rng = np.random.default_rng(seed)
    users = [
        {"country": str(rng.choice(["DE", "FR"])), "custom": {"age": int(rng.integers(18, 70))}} for _ in range(600)
    ]
    encoding = fit_encoding(users, ["country", "age"])
    X = encoding.transform(users)
    fits = []
    for k in range(3):
        y = (rng.random(600) < 1 / (1 + np.exp(-(X @ rng.normal(0, 1, X.shape[1]))))).astype(float)
        fits.append(fit_occurrence(X[k::3], y[k::3], GaussianPrior.default(X.shape[1], base_rate=0.3)))
    return users, encoding, fits


def test_linear_policy_scores_as_the_sdk_scores_the_published_config() -> None:
    users, encoding, fits = _fitted(12)
    policy = LinearPolicy.from_fits(encoding, fits, sample_rate=0.1, exploration_window_rate=0.5)
    config = cmab_config(encoding, {f"v{k}": fit for k, fit in enumerate(fits)}, exploration_window_rate=0.5)
    scores = policy.scores(encoding.transform(users))
    for user, row in zip(users, scores, strict=True):
        sdk = [sdk_score(config[f"v{k}"], user) for k in range(3)]
        np.testing.assert_allclose(sdk, row, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(policy.records, [200, 200, 200])
    x = encoding.transform(users[:1])[0]
    ranking = policy.ranking(x)
    assert [k for k, _ in ranking] == list(np.argsort(-scores[0], kind="stable"))
    assert policy.greedy(x[None, :])[0] == ranking[0][0]
    shares = policy.marginal_shares(encoding.transform(users))
    assert shares.sum() == pytest.approx(1.0) and np.all(shares >= 0.1 / 3 * 0.99)


def test_thompson_propensity_is_exact_for_the_bank() -> None:
    _, encoding, fits = _fitted(13)
    bank = ThompsonBank.build(fits, np.random.default_rng(1), sample_rate=0.2, size=500)
    assert bank.draws.shape == (500, 3, encoding.n_columns)
    x = encoding.average_context
    probabilities = bank.probabilities(x)
    assert probabilities.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    decisions = [bank.choose(x, rng) for _ in range(20_000)]
    for decision in decisions[:50]:
        assert decision.propensity == probabilities[decision.variant]
    frequencies = np.bincount([d.variant for d in decisions], minlength=3) / len(decisions)
    np.testing.assert_allclose(frequencies, probabilities, atol=4 * np.sqrt(0.25 / 20_000))
    explored = np.mean([d.explored for d in decisions])
    assert explored == pytest.approx(0.2, abs=0.015)
    again = [
        ThompsonBank.build(fits, np.random.default_rng(1), 0.2, 500).choose(x, np.random.default_rng(2))
        for _ in range(2)
    ]
    assert again[0] == again[1] == decisions[0]


def test_thompson_minimises_when_lower_is_better() -> None:
    _, encoding, fits = _fitted(14)
    high = ThompsonBank.build(fits, np.random.default_rng(3), 0.0, 400)
    low = ThompsonBank.build(fits, np.random.default_rng(3), 0.0, 400, higher_is_better=False)
    x = encoding.average_context
    scores = high.draws @ x
    np.testing.assert_array_equal(high.winners(x), np.argmax(scores, axis=1))
    np.testing.assert_array_equal(low.winners(x), np.argmin(scores, axis=1))


def test_a_withheld_variant_is_neither_exploited_nor_explored() -> None:
    """A guardrail exclusion (contextual/withhold.py): the SDK gets only the allowed groups, so it explores
    among them with q renormalised and exploits the best of them; the server's policies say the same."""
    allowed = np.array([True, False, True])
    scores = np.array([[0.1, 0.9, 0.2], [0.5, 0.9, 0.1]])  # the withheld variant scores best everywhere
    p = published_probabilities(scores, [10, 20, 30], 0.2, allowed=allowed)
    q = explore_weights([10, 30])
    np.testing.assert_allclose(p[:, 1], 0.0)
    np.testing.assert_allclose(p[0], [0.2 * q[0], 0, 0.8 + 0.2 * q[1]])
    np.testing.assert_allclose(p[1], [0.8 + 0.2 * q[0], 0, 0.2 * q[1]])
    lower = published_probabilities(-scores, [10, 20, 30], 0.2, higher_is_better=False, allowed=allowed)
    np.testing.assert_allclose(lower, p)
    with pytest.raises(ValueError, match="at least one"):
        explore_weights([1, 2], np.array([False, False]))

    _users, encoding, fits = _fitted(13)
    policy = LinearPolicy.from_fits(encoding, fits, sample_rate=0.3, allowed=allowed)
    X = encoding.transform(_users)
    assert np.all(policy.probabilities(X)[:, 1] == 0) and np.all(policy.greedy(X) != 1)
    assert [k for k, _ in policy.ranking(X[0])] in ([0, 2], [2, 0])
    bank = ThompsonBank.build(fits, np.random.default_rng(1), 0.3, size=200, allowed=allowed)
    rng = np.random.default_rng(2)
    assert all(bank.probabilities(x)[1] == 0 for x in X[:50])
    assert all(bank.choose(x, rng).variant != 1 for x in X[:200])
