from __future__ import annotations

import numpy as np
import pytest

from openautotune.contextual.models import GaussianPrior, fit_occurrence
from openautotune.contextual.offpolicy import Logs, compare, evaluate
from openautotune.contextual.policy import published_probabilities

# A world with 6 kinds of context (exact truth): design rows, their probabilities, and the true success
# probability of each of 3 variants in each context (variant 0 best for the first kinds, 2 for the last).
CONTEXTS = np.column_stack([np.ones(6), np.linspace(-1.5, 1.5, 6), np.tile([0.0, 1.0], 3)])
CONTEXT_P = np.array([0.25, 0.1, 0.15, 0.2, 0.1, 0.2])
TRUE_W = np.array([[-0.5, -1.2, 0.3], [-0.8, 0.1, 0.4], [-0.6, 1.3, -0.2]])
TRUE_P = 1 / (1 + np.exp(-(CONTEXTS @ TRUE_W.T)))  # 6 x 3


def _simulate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, Logs, np.ndarray]:
    """Logs of a published-style policy (explore share 0.5) whose scores are a wrong guess."""
    kinds = rng.choice(6, size=n, p=CONTEXT_P)
    X = CONTEXTS[kinds]
    logging = published_probabilities(X @ np.array([[0, 0.5, 0], [0.2, 0, 0.1], [0, -0.2, 0]]).T, [1, 1, 1], 0.5)
    cumulative = logging.cumsum(axis=1)
    actions = (rng.random(n)[:, None] > cumulative).sum(axis=1)
    rows = np.arange(n)
    rewards = (rng.random(n) < TRUE_P[kinds, actions]).astype(float)
    outcome = np.zeros((n, 3))
    for k in range(3):
        mask = actions == k
        fit = fit_occurrence(X[mask], rewards[mask], GaussianPrior.default(3, base_rate=0.3))
        outcome[:, k] = fit.predict_mean(X)
    return kinds, Logs(actions.astype(np.int64), rewards, logging[rows, actions], outcome), logging


def _greedy_target(kinds: np.ndarray) -> np.ndarray:
    best = np.argmax(TRUE_P, axis=1)[kinds]
    target = np.full((kinds.size, 3), 0.05)
    target[np.arange(kinds.size), best] = 0.9
    return target


def test_dr_interval_covers_the_true_value() -> None:
    target_by_kind = _greedy_target(np.arange(6))
    truth = float(CONTEXT_P @ np.sum(target_by_kind * TRUE_P, axis=1))
    covered, widths = 0, []
    for seed in range(50):
        rng = np.random.default_rng(seed)
        kinds, logs, _ = _simulate(1000, rng)
        value = evaluate("greedy", target_by_kind[kinds], logs, rng, n_bootstrap=200)
        covered += value.dr_interval[0] <= truth <= value.dr_interval[1]
        widths.append(value.dr_interval[1] - value.dr_interval[0])
        assert value.dr_interval[0] <= value.dr <= value.dr_interval[1]
    assert covered >= 45, covered
    assert float(np.mean(widths)) < 0.15  # informative intervals, not merely wide ones


def test_uniform_policy_on_uniform_logs_is_the_logged_mean() -> None:
    rng = np.random.default_rng(5)
    n, k = 1000, 4
    actions = rng.integers(0, k, n)
    rewards = rng.normal(3.0, 2.0, n)
    logs = Logs(actions, rewards, np.full(n, 1 / k), np.zeros((n, k)))
    value = evaluate("uniform", np.full((n, k), 1 / k), logs, rng, n_bootstrap=100)
    assert value.ipw == float(rewards.mean())
    assert value.snipw == pytest.approx(rewards.mean(), rel=1e-12)
    assert value.dr == pytest.approx(rewards.mean(), rel=1e-12)
    assert value.effective_sample_size == pytest.approx(n)
    low, high = value.ipw_interval
    assert low < rewards.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * rewards.std() / np.sqrt(n), rel=0.2)


def test_effective_sample_size_shrinks_with_uneven_weights() -> None:
    rng = np.random.default_rng(6)
    kinds, logs, logging = _simulate(2000, rng)
    on_policy = evaluate("logging", logging, logs, rng, n_bootstrap=50)
    assert on_policy.effective_sample_size == pytest.approx(2000)
    assert on_policy.ipw == pytest.approx(logs.rewards.mean())
    greedy = evaluate("greedy", _greedy_target(kinds), logs, rng, n_bootstrap=50)
    assert greedy.effective_sample_size < 1500


def test_compare_reports_what_personalization_is_worth() -> None:
    rng = np.random.default_rng(7)
    kinds, logs, _ = _simulate(3000, rng)
    result = compare(_greedy_target(kinds), logs, rng, n_bootstrap=200)
    single_truth = CONTEXT_P @ TRUE_P
    assert result.best_single_variant == int(np.argmax(single_truth))
    assert result.personalized.dr > result.best_single.dr > result.uniform.dr
    assert result.personalized.dr_interval[0] > result.best_single.dr
    assert result.uniform.dr == pytest.approx(float(CONTEXT_P @ TRUE_P.mean(axis=1)), abs=0.03)
    lowest = compare(_greedy_target(kinds), logs, rng, higher_is_better=False, n_bootstrap=10)
    assert lowest.best_single_variant == int(np.argmin(single_truth))


def test_malformed_logs_are_rejected() -> None:
    with pytest.raises(ValueError, match="propensities"):
        Logs(np.array([0]), np.array([1.0]), np.array([0.0]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="outside"):
        Logs(np.array([2]), np.array([1.0]), np.array([0.5]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="disagree"):
        Logs(np.array([0, 1]), np.array([1.0]), np.array([0.5]), np.zeros((1, 2)))
