"""The synthetic world of a contextual simulation: who the users are and what each variant is truly worth.

A spec (plain JSON, parsed by `ContextualSpec.from_json`) names

- `attributes`: each with one distribution, drawn independently per user:
  `{"name": "country", "categorical": {"US": 0.5, "DE": 0.3, "FR": 0.2}}` (probabilities, normalised),
  `{"name": "age", "normal": {"mean": 35, "sd": 10}}` or `{"name": "visits", "uniform": {"low": 0, "high": 20}}`,
  with an optional `"decimals": n` that rounds numeric draws (0 gives whole numbers);
- `variants`: each with a true logistic model of its success probability,
  `{"name": "bold", "intercept": -2.0, "coefficients": {"age": -0.02, "country": {"DE": 0.9}}}`:
  `P(success | user) = 1 / (1 + exp(-(intercept + sum_numeric c * x + sum_categorical c[value])))`,
  an attribute left out (or a category without a coefficient) adds 0.

Users are Statsig user objects: a categorical attribute named like a top-level user field (`country`,
`locale`, `appVersion`, `userAgent`, `email`, `ip`, any casing) is set there, every other attribute goes
into `custom`. Pure: numpy only, generators passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
TOP_LEVEL_FIELDS: Final = {
    name.lower(): name for name in ("country", "locale", "appVersion", "userAgent", "email", "ip")
}
DISTRIBUTIONS: Final = ("categorical", "normal", "uniform")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"{where} must be a finite number")
    return float(value)


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str
    """`categorical`, `normal` or `uniform`."""
    values: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    a: float = 0.0
    """normal: mean; uniform: low."""
    b: float = 0.0
    """normal: sd; uniform: high."""
    decimals: int | None = None

    @property
    def top_level(self) -> str | None:
        """The top-level user field this attribute is written to, or None (it goes into `custom`)."""
        return TOP_LEVEL_FIELDS.get(self.name.lower()) if self.kind == "categorical" else None

    def draw(self, rng: np.random.Generator, n: int) -> list[Any]:
        if self.kind == "categorical":
            picks = rng.choice(len(self.values), size=n, p=np.asarray(self.probabilities))
            return [self.values[int(i)] for i in picks]
        raw = rng.normal(self.a, self.b, size=n) if self.kind == "normal" else rng.uniform(self.a, self.b, size=n)
        if self.decimals is None:
            return [float(x) for x in raw]
        rounded = np.round(raw, self.decimals)
        return [int(x) for x in rounded] if self.decimals == 0 else [float(x) for x in rounded]

    @staticmethod
    def from_json(item: Any, where: str) -> Attribute:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ValueError(f"{where}: an object with a non-empty `name`")
        name = str(item["name"])
        kinds = [kind for kind in DISTRIBUTIONS if kind in item]
        if len(kinds) != 1:
            raise ValueError(f"{where} ({name}): exactly one of {', '.join(DISTRIBUTIONS)}")
        kind = kinds[0]
        body = item[kind]
        decimals = item.get("decimals")
        if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0):
            raise ValueError(f"{where} ({name}): `decimals` must be a non-negative integer")
        if kind == "categorical":
            if not isinstance(body, Mapping) or not body:
                raise ValueError(f"{where} ({name}): `categorical` maps each value to its probability")
            weights = [_number(p, f"{where} ({name}) probability of {v!r}") for v, p in body.items()]
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"{where} ({name}): probabilities must be non-negative with a positive sum")
            total = sum(weights)
            return Attribute(name, kind, tuple(str(v) for v in body), tuple(w / total for w in weights))
        keys = ("mean", "sd") if kind == "normal" else ("low", "high")
        if not isinstance(body, Mapping) or set(body) != set(keys):
            raise ValueError(f"{where} ({name}): `{kind}` takes exactly {keys[0]} and {keys[1]}")
        a, b = (_number(body[key], f"{where} ({name}) {key}") for key in keys)
        if (kind == "normal" and b < 0) or (kind == "uniform" and b < a):
            raise ValueError(f"{where} ({name}): sd must be >= 0, and high >= low")
        if TOP_LEVEL_FIELDS.get(name.lower()):
            raise ValueError(f"{where} ({name}): a top-level user field must be categorical")
        return Attribute(name, kind, a=a, b=b, decimals=decimals)


@dataclass(frozen=True)
class VariantModel:
    name: str
    intercept: float
    numerical: Mapping[str, float]
    categorical: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class ContextualSpec:
    attributes: tuple[Attribute, ...]
    variants: tuple[VariantModel, ...]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(attribute.name for attribute in self.attributes)

    @staticmethod
    def from_json(data: Any) -> ContextualSpec:
        """Parse and check a spec (see the module doc); ValueError names what is wrong."""
        if not isinstance(data, Mapping) or set(data) - {"attributes", "variants"}:
            raise ValueError("a contextual spec is an object with `attributes` and `variants`")
        raw_attributes, raw_variants = data.get("attributes"), data.get("variants")
        if not isinstance(raw_attributes, list) or not raw_attributes:
            raise ValueError("`attributes`: a non-empty list")
        if not isinstance(raw_variants, list) or len(raw_variants) < 2:
            raise ValueError("`variants`: a list of at least two variants")
        attributes = tuple(Attribute.from_json(item, f"attributes[{i}]") for i, item in enumerate(raw_attributes))
        by_name = {attribute.name: attribute for attribute in attributes}
        if len({name.lower() for name in by_name}) != len(attributes):
            raise ValueError("attribute names must be distinct (ignoring case)")
        variants = tuple(_variant(item, f"variants[{i}]", by_name) for i, item in enumerate(raw_variants))
        if len({variant.name for variant in variants}) != len(variants):
            raise ValueError("variant names must be distinct")
        return ContextualSpec(attributes, variants)

    def draw_users(self, rng: np.random.Generator, unit_ids: Sequence[str]) -> list[dict[str, Any]]:
        """One Statsig user object per unit id, attributes drawn independently."""
        n = len(unit_ids)
        users: list[dict[str, Any]] = [{"userID": unit, "custom": {}} for unit in unit_ids]
        for attribute in self.attributes:
            values = attribute.draw(rng, n)
            top = attribute.top_level
            for user, value in zip(users, values, strict=True):
                if top is not None:
                    user[top] = value
                else:
                    user["custom"][attribute.name] = value
        return users

    def probabilities(self, users: Sequence[Mapping[str, Any]]) -> FloatArray:
        """The true success probability of every variant for every user (n x K)."""
        logits = np.zeros((len(users), len(self.variants)))
        for attribute in self.attributes:
            top = attribute.top_level
            values = [user.get(top) if top is not None else user["custom"].get(attribute.name) for user in users]
            for k, variant in enumerate(self.variants):
                if attribute.kind == "categorical":
                    table = variant.categorical.get(attribute.name)
                    if table:
                        logits[:, k] += np.fromiter((table.get(str(v), 0.0) for v in values), float, len(users))
                elif attribute.name in variant.numerical:
                    logits[:, k] += variant.numerical[attribute.name] * np.asarray(values, dtype=np.float64)
        logits += np.asarray([variant.intercept for variant in self.variants])
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)


def _variant(item: Any, where: str, attributes: Mapping[str, Attribute]) -> VariantModel:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
        raise ValueError(f"{where}: an object with a non-empty `name`")
    name = str(item["name"])
    if set(item) - {"name", "intercept", "coefficients"}:
        raise ValueError(f"{where} ({name}): only `name`, `intercept` and `coefficients`")
    intercept = _number(item.get("intercept", 0.0), f"{where} ({name}) intercept")
    coefficients = item.get("coefficients", {})
    if not isinstance(coefficients, Mapping):
        raise ValueError(f"{where} ({name}): `coefficients` maps attribute names to coefficients")
    numerical: dict[str, float] = {}
    categorical: dict[str, dict[str, float]] = {}
    for attribute_name, coefficient in coefficients.items():
        attribute = attributes.get(attribute_name)
        label = f"{where} ({name}) coefficient of {attribute_name!r}"
        if attribute is None:
            raise ValueError(f"{label}: no such attribute")
        if attribute.kind == "categorical":
            if not isinstance(coefficient, Mapping) or set(coefficient) - set(attribute.values):
                raise ValueError(f"{label}: an object keyed by the attribute's values")
            categorical[attribute_name] = {str(v): _number(c, f"{label}[{v}]") for v, c in coefficient.items()}
        else:
            numerical[attribute_name] = _number(coefficient, label)
    return VariantModel(name, intercept, numerical, categorical)
