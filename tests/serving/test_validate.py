"""The validators refuse every document an SDK would drop or reject (and everything we never mean to send)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.validate import InvalidSpecs, validate_v1, validate_v2
from tests.serving.fixtures import T0, golden_pairs

V1 = specs_v1.render(golden_pairs(), T0)
V2 = specs_v2.render(golden_pairs(), T0)


def broken(document: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    made = copy.deepcopy(document)
    change(made)
    return made


V1_BREAKS: list[Callable[[dict[str, Any]], None]] = [
    lambda d: d.pop("time"),
    lambda d: d.update(dynamic_configs={}),
    lambda d: d["dynamic_configs"][1].pop("enabled"),
    lambda d: d["dynamic_configs"][1].update(version=True),
    lambda d: d["dynamic_configs"][1]["rules"][0].pop("passPercentage"),
    lambda d: d["dynamic_configs"][1]["rules"][0]["conditions"][0].update(type="user_fieldx"),
    lambda d: d["dynamic_configs"][1]["rules"][0]["conditions"][0].update(operator="gt"),
    lambda d: d["dynamic_configs"][1]["rules"][0]["conditions"][0].update(targetValue=1001),
    lambda d: d["dynamic_configs"][1]["rules"][0]["conditions"][0].pop("additionalValues"),
    lambda d: d["dynamic_configs"].append(d["dynamic_configs"][0]),
]
V2_BREAKS: list[Callable[[dict[str, Any]], None]] = [
    lambda d: d.pop("experiment_to_layer"),
    lambda d: d.update(checksum="a b"),
    lambda d: next(iter(d["condition_map"].values())).pop("idType"),
    lambda d: next(iter(d["condition_map"].values())).pop("type"),
    lambda d: d["dynamic_configs"]["sized_one"]["rules"][0]["conditions"].append("missing"),
    lambda d: d["dynamic_configs"]["sized_one"].update(version=2**32),
    lambda d: d["dynamic_configs"]["sized_one"].update(name="sized_one"),
    lambda d: d["dynamic_configs"]["sized_one"]["rules"][0].pop("returnValue"),
    lambda d: d.update(condition_map=[]),
]


def test_rendered_documents_pass() -> None:
    validate_v1(V1)
    validate_v2(V2)


@pytest.mark.parametrize("change", V1_BREAKS)
def test_v1_breaks_are_caught(change: Callable[[dict[str, Any]], None]) -> None:
    with pytest.raises(InvalidSpecs):
        validate_v1(broken(V1, change))


@pytest.mark.parametrize("change", V2_BREAKS)
def test_v2_breaks_are_caught(change: Callable[[dict[str, Any]], None]) -> None:
    with pytest.raises(InvalidSpecs):
        validate_v2(broken(V2, change))


def cmab_document() -> dict[str, Any]:
    group_weights = {
        "alpha": 0.1,
        "intercept": 0.0,
        "records": 3,
        "weightsNumerical": {"age": 0.5},
        "weightsCategorical": {"country": {"DE": 1.0}},
    }
    entry = {
        "salt": "s",
        "defaultValue": {},
        "idType": "userID",
        "enabled": True,
        "version": 2,
        "sampleRate": 0.5,
        "higherIsBetter": True,
        "groups": [{"name": "A", "id": "a", "parameterValues": {}}],
        "config": {"a": group_weights},
    }
    return specs_v2.render(golden_pairs(), T0, cmab_configs={"ctx": entry})


CMAB_BREAKS: list[Callable[[dict[str, Any]], None]] = [
    lambda d: d["cmab_configs"]["ctx"].pop("higherIsBetter"),
    lambda d: d["cmab_configs"]["ctx"].update(version=2**32),
    lambda d: d["cmab_configs"]["ctx"].update(sampleRate=1.5),
    lambda d: d["cmab_configs"]["ctx"].update(sampleRate=True),
    lambda d: d["cmab_configs"]["ctx"]["groups"][0].pop("parameterValues"),
    lambda d: d["cmab_configs"]["ctx"]["config"]["a"].update(weightsNumerical={}, weightsCategorical={}),
    lambda d: d["cmab_configs"]["ctx"]["config"]["a"].update(alpha=float("nan")),
    lambda d: d["cmab_configs"]["ctx"]["config"]["a"].pop("records"),
    lambda d: d["cmab_configs"]["ctx"]["config"].update(b=d["cmab_configs"]["ctx"]["config"]["a"]),
    lambda d: d["cmab_configs"]["ctx"]["config"]["a"]["weightsCategorical"].update(country={"DE": "1"}),
    lambda d: d.update(cmab_configs=[]),
]


def test_cmab_configs_pass_when_complete() -> None:
    document = cmab_document()
    validate_v2(document)
    del document["cmab_configs"]["ctx"]["config"]  # untrained: no config at all is fine
    validate_v2(document)


@pytest.mark.parametrize("change", CMAB_BREAKS)
def test_cmab_breaks_are_caught(change: Callable[[dict[str, Any]], None]) -> None:
    with pytest.raises(InvalidSpecs):
        validate_v2(broken(cmab_document(), change))
