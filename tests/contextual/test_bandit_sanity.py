"""Supervised-to-bandit sanity check, in memory: each class of a labelled data set is a variant, and a unit
succeeds when it is served its own class. Hourly batches: two hours of equal split (the exploration window),
then the published policy (explore slice + best published score) or server-side Thompson sampling,
retrained on everything logged after each hour. The learned policy's exploit path is scored on held-out
rows against the best single variant.

Measured (seed 0): wine 0.963 held-out success vs 0.444 for the best single class (2.2x), the same with
Thompson sampling; digits 0.933 vs 0.115 (8.1x; Thompson 0.935). Off-policy (DR) on the digits logs, the
final policy including its 29% explore slice: 0.705 [0.688, 0.728] vs 0.148 for the best single variant
and 0.114 for a uniform split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine

from openautotune.contextual.features import Encoding, encode_training
from openautotune.contextual.models import GaussianPrior, ModelFit, fit_occurrence
from openautotune.contextual.offpolicy import Logs, compare
from openautotune.contextual.policy import LinearPolicy, ThompsonBank, explore_weights
from openautotune.contextual.publish import sample_rate


class Run:
    def __init__(self, data: Any, hours: int, per_hour: int, server_side: bool, seed: int) -> None:
        rng = np.random.default_rng(seed)
        X, y = data.data, data.target
        self.k = int(y.max()) + 1
        self.users = [
            {"userID": str(i), "custom": {f"f{j}": float(v) for j, v in enumerate(row)}} for i, row in enumerate(X)
        ]
        order = rng.permutation(len(y))
        cut = int(0.7 * len(y))
        self.train, self.test, self.y = order[:cut], order[cut:], y
        units: list[int] = []
        actions: list[int] = []
        propensities: list[float] = []
        self.policy: LinearPolicy | None = None
        bank: ThompsonBank | None = None
        for hour in range(hours):
            batch = rng.choice(self.train, per_hour)
            if self.policy is None:
                served = rng.integers(0, self.k, per_hour)
                chances = np.full(per_hour, 1.0 / self.k)
            elif bank is not None:
                design = self.encoding.transform([self.users[i] for i in batch])
                decisions = [bank.choose(row, rng) for row in design]
                served = np.array([d.variant for d in decisions])
                chances = np.array([d.propensity for d in decisions])
            else:
                design = self.encoding.transform([self.users[i] for i in batch])
                explore = rng.random(per_hour) < self.policy.sample_rate
                drawn = rng.choice(self.k, per_hour, p=explore_weights(self.policy.records))
                served = np.where(explore, drawn, self.policy.greedy(design))
                chances = self.policy.propensity(design, served)
            units += list(batch)
            actions += list(served)
            propensities += list(chances)
            if hour >= 1:
                self.refit(units, np.array(actions))
                if server_side:
                    bank = ThompsonBank.build(self.fits, rng, self.policy.sample_rate, size=500)  # type: ignore[union-attr]
        rewards = (np.array(actions) == y[units]).astype(float)
        self.logs = Logs(
            np.array(actions, dtype=np.int64),
            rewards,
            np.array(propensities),
            np.column_stack([fit.predict_mean(self.design) for fit in self.fits]),
        )

    def refit(self, units: list[int], actions: np.ndarray) -> None:
        rewards = (actions == self.y[units]).astype(float)
        self.encoding: Encoding
        self.encoding, self.design = encode_training([self.users[i] for i in units])
        prior = GaussianPrior.default(self.encoding.n_columns, base_rate=float(rewards.mean()))
        self.fits: list[ModelFit] = [
            fit_occurrence(self.design[actions == k], rewards[actions == k], prior) for k in range(self.k)
        ]
        policy = LinearPolicy.from_fits(self.encoding, self.fits, sample_rate(len(units), self.k))
        self.policy = policy

    def held_out(self) -> tuple[float, float]:
        assert self.policy is not None
        design = self.encoding.transform([self.users[i] for i in self.test])
        learned = float(np.mean(self.policy.greedy(design) == self.y[self.test]))
        best_single = max(float(np.mean(self.y[self.test] == k)) for k in range(self.k))
        return learned, best_single


@pytest.mark.parametrize("server_side", [False, True])
def test_wine(server_side: bool) -> None:
    run = Run(load_wine(), hours=8, per_hour=40, server_side=server_side, seed=0)
    learned, best_single = run.held_out()
    assert learned >= 0.85 and learned >= 1.8 * best_single, (learned, best_single)


def test_digits() -> None:
    run = Run(load_digits(), hours=7, per_hour=300, server_side=False, seed=0)
    learned, best_single = run.held_out()
    assert learned >= 3 * best_single and learned >= 0.8, (learned, best_single)
    assert run.policy is not None
    # What personalization is worth, estimated off-policy from the logged propensities.
    comparison = compare(run.policy.probabilities(run.design), run.logs, np.random.default_rng(1), n_bootstrap=200)
    assert comparison.personalized.dr_interval[0] > comparison.best_single.dr_interval[1]
    assert comparison.personalized.dr > 3 * comparison.uniform.dr
