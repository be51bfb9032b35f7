"""Features of a contextual autotune: from Statsig user dicts to a design matrix.

The rules (spec: contextual.md, "Features"; sdk-core-protocol.md, "Contextual autotunes"):

- A feature's value is looked up the way the core SDK (``statsig-python-core`` 0.24.2, probed in
  ``tests/e2e/test_contextual_weights_core.py``) looks it up when it scores a user: the top-level fields
  ``userID``, ``email``, ``ip``, ``country``, ``locale``, ``appVersion``, ``userAgent`` first (the feature
  name matched case-insensitively), then ``custom[name]``, then ``custom[name.lower()]``. So a feature
  published as ``Age`` reads ``custom["Age"]`` or ``custom["age"]``, but one published as ``age`` never
  reads ``custom["Age"]``.
- Candidates: ``featureList`` when given (each name resolved as above), otherwise every ``custom`` key
  seen in the data.
- Missing: absent, ``None``, the empty string, or a list/object (which the SDK cannot score).
- Typing, per feature, from the data: numeric when every observed non-missing value parses as a finite
  number (numbers, or strings of ASCII digits such as ``"42"`` or ``"-1.5e3"``, without spaces;
  booleans are not numbers), else
  categorical. A feature never observed is dropped.
- Categorical: the ``MAX_CATEGORIES`` (25) most frequent values (ties broken by value) each covering
  more than ``MIN_COVERAGE`` (1%) of the units get a column; other values add 0. Values are compared as
  strings: a string as is, ``true``/``false`` for booleans, integers in decimal, other numbers in the
  shortest positional form that reads back the same (``3.0`` -> ``3``, ``1e20`` -> ``100000000000000000000``,
  ``1.5e-7`` -> ``0.00000015``), as the SDK writes them.
- Numeric: the raw number, 0 when missing or unparsable, so a missing value adds 0 to the raw-unit
  score exactly as in the SDK.

Training works on centred and scaled columns (better-conditioned fits, and a prior that means the
same for every feature): numeric ``(x - centre) / scale`` (``scale``: the power of two nearest the
standard deviation, so that scaling is exact in floating point) and categorical ``1[value = v] - p_v``. The
intercept is column 0. Both transforms are affine per column, so ``publish`` folds them back into
raw-unit weights and the intercept exactly. Centred columns have mean zero on the training data, so
the *average context* is the unit vector ``(1, 0, ..., 0)``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
User = Mapping[str, object]

TOP_LEVEL_FIELDS: Final[tuple[str, ...]] = ("userID", "email", "ip", "country", "locale", "appVersion", "userAgent")
_TOP_BY_LOWER: Final[dict[str, str]] = {name.lower(): name for name in TOP_LEVEL_FIELDS}
MAX_CATEGORIES: Final = 25
MIN_COVERAGE: Final = 0.01
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


_MISSING: Final = object()


def _present(value: object) -> bool:
    kind = type(value)
    if kind is str:
        return value != ""
    if kind is float or kind is int or kind is bool:
        return True
    if value is None or isinstance(value, (list, tuple, dict)):
        return False
    return value != ""


def _custom_of(user: User) -> Mapping[str, object]:
    custom = user.get("custom")
    return custom if isinstance(custom, Mapping) else {}


def _top_level_value(user: User, canonical: str) -> object:
    if canonical in user:
        return user[canonical]
    lower = canonical.lower()
    return next((value for key, value in user.items() if key.lower() == lower), None)


def _values(user: User, names: Sequence[str], tops: Sequence[str | None]) -> list[object | None]:
    """The values of ``names`` for one user (``tops``: each name's canonical top-level field or None)."""
    custom = _custom_of(user)
    out: list[object | None] = []
    for name, top in zip(names, tops, strict=True):
        if top is not None:
            value = _top_level_value(user, top)
            if _present(value):
                out.append(value)
                continue
        value = custom.get(name, _MISSING)
        if value is _MISSING:
            value = custom.get(name.lower())
        out.append(value if _present(value) else None)
    return out


def _kept(value: object) -> object | None:
    return value if _present(value) else None


def feature_columns(users: Sequence[User], names: Sequence[str]) -> list[list[object | None]]:
    """The value of each feature (one list per name) for every user, ``None`` when missing; the same
    values as ``_values`` per user, read a column at a time (list comprehensions: several times faster)."""
    customs = [_custom_of(user) for user in users]
    columns: list[list[object | None]] = []
    for name in names:
        raw = [custom.get(name, _MISSING) for custom in customs]
        lower = name.lower()
        if lower != name:
            raw = [custom.get(lower) if v is _MISSING else v for v, custom in zip(raw, customs, strict=True)]
        column = [_kept(None if v is _MISSING else v) for v in raw]
        top = _TOP_BY_LOWER.get(lower)
        if top is not None:
            for i, user in enumerate(users):
                value = _top_level_value(user, top)
                if _present(value):
                    column[i] = value
        columns.append(column)
    return columns


def user_value(user: User, name: str) -> object | None:
    """The value of feature ``name`` for ``user`` as the SDK resolves it; ``None`` when missing."""
    return _values(user, [name], [_TOP_BY_LOWER.get(name.lower())])[0]


def as_number(value: object) -> float | None:
    """A finite float when ``value`` is a number or a numeric string, else ``None`` (booleans: None)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None  # type: ignore[arg-type,return-value]
    if isinstance(value, bool) or value is None:
        return None
    numeric_string = isinstance(value, str) and _NUMBER.fullmatch(value) is not None
    if not (isinstance(value, (int, float)) or numeric_string):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def as_category(value: object) -> str | None:
    """The string a categorical weight is keyed by; ``None`` when missing."""
    if not _present(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return str(value)
        return np.format_float_positional(number, trim="-") if math.isfinite(number) else str(number)
    return str(value)


@dataclass(frozen=True)
class NumericFeature:
    """A numeric feature: column ``(x - centre) / scale``, ``x`` = 0 when missing."""

    name: str
    centre: float
    scale: float


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical feature: one column ``1[value = v] - centre_v`` per kept value ``v``."""

    name: str
    values: tuple[str, ...]
    centres: tuple[float, ...]

    @cached_property
    def slots(self) -> dict[str, int]:
        """Each kept value's position among the feature's columns."""
        return {value: i for i, value in enumerate(self.values)}


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class Encoding:
    """How users become rows of a design matrix (column 0 is the intercept). Deterministic."""

    features: tuple[Feature, ...]

    @property
    def n_columns(self) -> int:
        return 1 + sum(1 if isinstance(f, NumericFeature) else len(f.values) for f in self.features)

    @property
    def column_names(self) -> tuple[str, ...]:
        names = ["(intercept)"]
        for feature in self.features:
            if isinstance(feature, NumericFeature):
                names.append(feature.name)
            else:
                names.extend(f"{feature.name}={value}" for value in feature.values)
        return tuple(names)

    @property
    def average_context(self) -> FloatArray:
        """The design row of the average training unit: centred columns average to 0."""
        row = np.zeros(self.n_columns)
        row[0] = 1.0
        return row

    def transform(self, users: Sequence[User]) -> FloatArray:
        """The design matrix of ``users`` (n x n_columns)."""
        names = [feature.name for feature in self.features]
        return self.transform_columns(feature_columns(users, names), len(users))

    def transform_one(self, user: User) -> FloatArray:
        """The design row of one user (the server-side evaluation path; same values as ``transform``)."""
        names, tops = self._lookup
        row = [1.0]
        for feature, value in zip(self.features, _values(user, names, tops), strict=True):
            if isinstance(feature, NumericFeature):
                row.append((_number_or_zero(value) - feature.centre) / feature.scale)
                continue
            block = [-centre for centre in feature.centres]
            slot = feature.slots.get(as_category(value) or "", -1) if value is not None else -1
            if slot >= 0:
                block[slot] = 1.0 - feature.centres[slot]
            row.extend(block)
        return np.array(row, dtype=np.float64)

    @cached_property
    def _lookup(self) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
        names = tuple(feature.name for feature in self.features)
        return names, tuple(_TOP_BY_LOWER.get(name.lower()) for name in names)

    def transform_columns(self, columns: Sequence[Sequence[object | None]], n: int) -> FloatArray:
        """The design matrix from ``feature_columns`` of this encoding's features (n units)."""
        parsed: list[FloatArray | list[str | None]] = []
        for feature, raw in zip(self.features, columns, strict=True):
            if isinstance(feature, NumericFeature):
                parsed.append(np.fromiter((_number_or_zero(v) for v in raw), dtype=np.float64, count=n))
            else:
                parsed.append([as_category(v) for v in raw])
        return self._design(parsed, n)

    def _design(self, parsed: Sequence[FloatArray | list[str | None]], n: int) -> FloatArray:
        out = np.zeros((n, self.n_columns))
        out[:, 0] = 1.0
        position = 1
        for feature, values in zip(self.features, parsed, strict=True):
            if isinstance(feature, NumericFeature):
                out[:, position] = (np.asarray(values, dtype=np.float64) - feature.centre) / feature.scale
                position += 1
                continue
            index = feature.slots
            width = len(feature.values)
            slots = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=n)  # type: ignore[arg-type]
            block = np.zeros((n, width))
            hit = slots >= 0
            block[np.flatnonzero(hit), slots[hit]] = 1.0
            out[:, position : position + width] = block - np.asarray(feature.centres)
            position += width
        return out


def _power_of_two_scale(spread: float) -> float:
    """The power of two nearest the spread (1 when there is none): dividing by it is exact."""
    if not spread > 0.0 or not math.isfinite(spread):
        return 1.0
    return math.ldexp(1.0, round(math.log2(spread)))


def _number_or_zero(value: object) -> float:
    number = as_number(value)
    return 0.0 if number is None else number


def candidate_features(users: Iterable[User], feature_list: Sequence[str] | None = None) -> tuple[str, ...]:
    """Feature names, spelt as they will be published.

    With ``feature_list``: its names, top-level fields in their canonical spelling, duplicates (in any
    casing) dropped. Without: every ``custom`` key seen, each in its most frequent spelling (ties:
    the smallest), ordered by that spelling.
    """
    if feature_list is not None:
        seen: set[str] = set()
        names: list[str] = []
        for raw in feature_list:
            name = _TOP_BY_LOWER.get(raw.lower(), raw)
            if name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
        return tuple(names)
    counts = Counter(key for user in users for key, value in _custom_of(user).items() if _present(value))
    spellings: dict[str, list[tuple[int, str]]] = {}
    for key, count in counts.items():
        spellings.setdefault(key.lower(), []).append((-count, key))
    chosen = [min(options)[1] for options in spellings.values()]
    return tuple(sorted(chosen))


def fit_encoding(
    users: Sequence[User],
    feature_list: Sequence[str] | None = None,
    *,
    max_categories: int = MAX_CATEGORIES,
    min_coverage: float = MIN_COVERAGE,
) -> Encoding:
    """Decide every feature's type, categories, centre and scale from ``users`` (the training units)."""
    return encode_training(users, feature_list, max_categories=max_categories, min_coverage=min_coverage)[0]


def encode_training(
    users: Sequence[User],
    feature_list: Sequence[str] | None = None,
    *,
    max_categories: int = MAX_CATEGORIES,
    min_coverage: float = MIN_COVERAGE,
) -> tuple[Encoding, FloatArray]:
    """``fit_encoding`` and the training design matrix, reading every user once."""
    n = len(users)
    names = candidate_features(users, feature_list)
    columns = feature_columns(users, names)
    features: list[Feature] = []
    parsed: list[FloatArray | list[str | None]] = []
    for name, raw in zip(names, columns, strict=True):
        present = [i for i, v in enumerate(raw) if v is not None]
        if not present:
            continue
        numbers = _all_numbers([raw[i] for i in present])
        if numbers is not None:
            column = np.zeros(n)
            column[present] = numbers
            features.append(NumericFeature(name, float(column.mean()), _power_of_two_scale(float(column.std()))))
            parsed.append(column)
            continue
        categories = [as_category(v) for v in raw]
        counts = Counter(c for c in categories if c is not None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [(value, count) for value, count in ranked if count / n > min_coverage][:max_categories]
        if kept:
            features.append(CategoricalFeature(name, tuple(v for v, _ in kept), tuple(count / n for _, count in kept)))
            parsed.append(categories)
    encoding = Encoding(tuple(features))
    return encoding, encoding._design(parsed, n)


def _all_numbers(values: Sequence[object]) -> list[float] | None:
    """Every value as a number, or None as soon as one is not a number."""
    numbers: list[float] = []
    for value in values:
        number = as_number(value)
        if number is None:
            return None
        numbers.append(number)
    return numbers


def encoding_to_json(encoding: Encoding) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for feature in encoding.features:
        if isinstance(feature, NumericFeature):
            out.append({"name": feature.name, "kind": "numeric", "centre": feature.centre, "scale": feature.scale})
        else:
            out.append(
                {
                    "name": feature.name,
                    "kind": "categorical",
                    "values": list(feature.values),
                    "centres": list(feature.centres),
                }
            )
    return out


def encoding_from_json(items: Sequence[dict[str, Any]]) -> Encoding:
    features: list[NumericFeature | CategoricalFeature] = []
    for item in items:
        if item["kind"] == "numeric":
            features.append(NumericFeature(str(item["name"]), float(item["centre"]), float(item["scale"])))
        else:
            features.append(
                CategoricalFeature(
                    str(item["name"]), tuple(str(v) for v in item["values"]), tuple(float(c) for c in item["centres"])
                )
            )
    return Encoding(tuple(features))
