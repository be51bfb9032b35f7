"""Our published CMAB weights, scored by the real core SDK: for users with numeric, numeric-string,
categorical, boolean, missing and differently-cased features, the SDK's exploit choice equals the argmax
of the server's own scores (`Encoding.transform @ weights + alpha`). The SDK only reveals its choice, so
three groups with random weights make every user a comparison of score differences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from openautotune.contextual.features import Encoding, fit_encoding
from openautotune.contextual.models import ModelFit
from openautotune.contextual.publish import group_config
from openautotune.serving import specs_v2
from openautotune.serving.validate import validate_v2
from tests.e2e.live import SdkProcess
from tests.e2e.static_specs import serve_static_specs

pytestmark = pytest.mark.e2e
GROUPS = [{"name": n, "id": f"g_{n}", "parameterValues": {"g": n}} for n in ("a", "b", "c")]


def _population(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    users = []
    for i in range(n):
        custom: dict[str, Any] = {}
        age = int(rng.integers(18, 80))
        custom["Age" if i % 3 else "age"] = str(age) if i % 4 == 0 else age  # casing and numeric strings
        if rng.random() < 0.8:
            custom["score"] = round(float(rng.normal(50, 20)), 3)
        custom["plan"] = str(rng.choice(["free", "pro", "team", "rare-" + str(i)]))
        custom["vip"] = bool(rng.random() < 0.3)
        user: dict[str, Any] = {"userID": f"w{i}", "custom": custom}
        if rng.random() < 0.9:
            user["country"] = str(rng.choice(["DE", "FR", "US", "JP"]))
        users.append(user)
    return users


def _fit(encoding: Encoding, weights: np.ndarray) -> ModelFit:
    cov = np.eye(encoding.n_columns)
    return ModelFit("occurrence", weights, cov, 100, 10, False, "test", 1, cov, None, None)


@pytest.fixture
def published() -> Iterator[tuple[Any, list[dict[str, Any]], np.ndarray]]:
    rng = np.random.default_rng(17)
    population = _population(rng, 400)
    encoding = fit_encoding(population, ["AGE", "score", "Plan", "vip", "country"])
    weights = rng.normal(0, 1.5, (3, encoding.n_columns))
    alphas = rng.normal(0, 0.3, 3)
    config = {
        group["id"]: group_config(encoding, _fit(encoding, weights[k]), float(alphas[k]))
        for k, group in enumerate(GROUPS)
    }
    entry = {
        "salt": "weights-salt",
        "defaultValue": {"g": "a"},
        "idType": "userID",
        "enabled": True,
        "version": 3,
        "sampleRate": 0.0,
        "higherIsBetter": True,
        "groups": GROUPS,
        "config": config,
    }
    document = specs_v2.render([], 1_767_225_600_000, cmab_configs={"weights": entry})
    validate_v2(document)

    fresh = _population(np.random.default_rng(18), 300)  # unseen values and categories too
    users = population[:200] + fresh
    server_scores = encoding.transform(users) @ weights.T + alphas
    with serve_static_specs(document) as server:
        yield server, users, server_scores


def test_the_core_sdk_scores_users_as_the_server_does(published: tuple[Any, list[dict[str, Any]], np.ndarray]) -> None:
    static, users, scores = published
    with SdkProcess("core", static) as sdk:
        answers = sdk.evaluate("weights", users)
    chosen = [GROUPS.index(next(g for g in GROUPS if g["id"] == rule_id)) for rule_id, _n, _v in answers]
    expected = list(np.argmax(scores, axis=1))
    mismatches = [(users[i], scores[i].tolist(), chosen[i]) for i in range(len(users)) if chosen[i] != expected[i]]
    assert not mismatches, mismatches[:5]
    assert len(set(chosen)) == 3  # every group wins somewhere: the comparison is not vacuous
