"""Encode once: a run's vocabulary of features, and units' user dicts as compact numeric rows.

A unit's user dict is read exactly once, when the unit matures (contextual.md, "Models"). It becomes a
compact row: for each feature of the run's ``Vocabulary`` a number (``numbers``: the value as
``features.as_number`` reads it; NaN when missing, not a number, or once the feature is categorical)
and a category id (``categories``: the position of ``features.as_category(value)`` in the feature's
dictionary; ``MISSING`` when missing, ``UNTRACKED`` when the dictionary is full, ``NOT_COMPUTED`` for a
feature that is numeric so far, whose category string is derived from its number only if it ever turns
categorical).

The vocabulary only grows, so rows encoded earlier stay valid:

- features are appended as they are first seen (``featureList`` fixes them up front); a row encoded
  before a feature existed is simply shorter: the feature was missing for that unit;
- category dictionaries are append-only, at most ``MAX_TRACKED`` values per feature (first seen first;
  a later new value is ``UNTRACKED`` and can never get a weight: documented in docs/contextual.md);
- a feature is numeric while every observed value is a number; the first non-number makes it
  categorical for good (``flipped`` tells the caller, which re-derives statistics from stored rows).

Without ``featureList`` a ``custom`` key's spelling is fixed when it is first seen (its most frequent
spelling in that batch): the batch-wide choice of ``features.candidate_features``, applied once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from openautotune.contextual.features import (
    User,
    as_category,
    as_number,
    candidate_features,
    feature_columns,
)

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int16]

MAX_TRACKED: Final = 64
MISSING: Final = -1
UNTRACKED: Final = -2
NOT_COMPUTED: Final = -3


@dataclass
class Vocabulary:
    """Every feature of a run, in the order first seen, with its kind and its category dictionary."""

    feature_list: tuple[str, ...] | None
    names: list[str] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)
    _ids: list[dict[str, int]] = field(default_factory=list, repr=False)

    @staticmethod
    def start(feature_list: Sequence[str] | None) -> Vocabulary:
        vocabulary = Vocabulary(tuple(feature_list) if feature_list is not None else None)
        if feature_list is not None:
            for name in candidate_features([], feature_list):
                vocabulary._add(name)
        return vocabulary

    def _add(self, name: str) -> None:
        self.names.append(name)
        self.numeric.append(True)
        self.present.append(0)
        self.categories.append([])
        self._ids.append({})

    def category_id(self, feature: int, value: str) -> int:
        """The id of ``value`` in the feature's dictionary, added when there is room."""
        ids = self._ids[feature]
        found = ids.get(value)
        if found is not None:
            return found
        if len(ids) >= MAX_TRACKED:
            return UNTRACKED
        ids[value] = len(ids)
        self.categories[feature].append(value)
        return ids[value]

    def to_json(self) -> dict[str, Any]:
        return {
            "featureList": list(self.feature_list) if self.feature_list is not None else None,
            "names": self.names,
            "numeric": self.numeric,
            "present": self.present,
            "categories": self.categories,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Vocabulary:
        listed = data.get("featureList")
        vocabulary = Vocabulary(
            tuple(str(n) for n in listed) if listed is not None else None,
            [str(n) for n in data["names"]],
            [bool(b) for b in data["numeric"]],
            [int(c) for c in data["present"]],
            [[str(v) for v in values] for values in data["categories"]],
        )
        vocabulary._ids = [{value: i for i, value in enumerate(values)} for values in vocabulary.categories]
        return vocabulary


@dataclass(frozen=True, eq=False)
class CompactRows:
    """Encoded units: ``numbers`` and ``categories`` (n x features at encoding time)."""

    numbers: FloatArray
    categories: CodeArray

    @property
    def size(self) -> int:
        return int(self.numbers.shape[0])

    def widened(self, n_features: int) -> CompactRows:
        """The same rows over ``n_features`` features: features added since are missing."""
        have = self.numbers.shape[1]
        if have >= n_features:
            return self
        pad = n_features - have
        numbers = np.hstack([self.numbers, np.full((self.size, pad), np.nan)])
        categories = np.hstack([self.categories, np.full((self.size, pad), MISSING, dtype=np.int16)])
        return CompactRows(numbers, categories)

    def take(self, index: npt.NDArray[np.int64]) -> CompactRows:
        return CompactRows(self.numbers[index], self.categories[index])

    @staticmethod
    def concatenate(parts: Sequence[CompactRows], n_features: int) -> CompactRows:
        if not parts:
            return CompactRows(np.zeros((0, n_features)), np.zeros((0, n_features), dtype=np.int16))
        widened = [part.widened(n_features) for part in parts]
        return CompactRows(
            np.vstack([p.numbers for p in widened]), np.vstack([p.categories for p in widened]).astype(np.int16)
        )


def _numbers(values: list[object]) -> FloatArray:
    """``as_number`` of every value, NaN where it gives None; plain ints and floats in one numpy pass."""
    if all(type(v) is float or type(v) is int for v in values):
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            array = None
        if array is not None:
            array[~np.isfinite(array)] = np.nan
            return array
    return np.array([np.nan if (n := as_number(v)) is None else n for v in values], dtype=np.float64)


def _new_keys(vocabulary: Vocabulary, users: Sequence[User]) -> bool:
    """Whether some user carries a ``custom`` key the vocabulary does not know (rare after the first batch)."""
    keys: set[str] = set()
    for user in users:
        custom = user.get("custom")
        if isinstance(custom, dict):
            keys.update(custom)
    known = {name.lower() for name in vocabulary.names}
    return any(str(key).lower() not in known for key in keys)


def encode(vocabulary: Vocabulary, users: Sequence[User]) -> tuple[CompactRows, list[int]]:
    """Encode ``users`` (read once, here), growing ``vocabulary``; also the features that turned
    categorical in this batch after having been numeric (their earlier rows carry numbers only)."""
    n = len(users)
    if vocabulary.feature_list is None and _new_keys(vocabulary, users):
        known = {name.lower() for name in vocabulary.names}
        # Spelling chosen over the whole batch, as candidate_features does for a full refit.
        for name in candidate_features(users):
            if name.lower() not in known:
                vocabulary._add(name)
    names = vocabulary.names
    columns = feature_columns(users, names)
    numbers = np.full((n, len(names)), np.nan)
    categories = np.full((n, len(names)), MISSING, dtype=np.int16)
    flipped: list[int] = []
    for f, raw in enumerate(columns):
        present = [i for i, v in enumerate(raw) if v is not None]
        if not present:
            continue
        values = [raw[i] for i in present]
        if vocabulary.numeric[f]:  # a categorical feature stays one: its numbers are never needed
            parsed = _numbers(values)
            numbers[present, f] = parsed
            if bool(np.isnan(parsed).any()):
                vocabulary.numeric[f] = False
                if vocabulary.present[f] > 0:
                    flipped.append(f)
        vocabulary.present[f] += len(present)
        if vocabulary.numeric[f]:
            categories[present, f] = NOT_COMPUTED
            continue
        categories[present, f] = [vocabulary.category_id(f, as_category(v) or "") for v in values]
    return CompactRows(numbers, categories), flipped


def categorise(vocabulary: Vocabulary, rows: CompactRows, feature: int) -> CompactRows:
    """Rows of a feature that has turned categorical: ids for the values stored as numbers only
    (the category string of the number, ``as_category(float)``; documented)."""
    rows = rows.widened(len(vocabulary.names))
    pending = np.flatnonzero(rows.categories[:, feature] == NOT_COMPUTED)
    if pending.size == 0:
        return rows
    categories = rows.categories.copy()
    for i in pending:
        number = rows.numbers[i, feature]
        categories[i, feature] = (
            MISSING if np.isnan(number) else vocabulary.category_id(feature, as_category(float(number)) or "")
        )
    return CompactRows(rows.numbers, categories)
