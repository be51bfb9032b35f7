from __future__ import annotations

import numpy as np
import pytest

from openautotune.contextual.features import (
    CategoricalFeature,
    NumericFeature,
    as_category,
    as_number,
    candidate_features,
    fit_encoding,
    user_value,
)


def test_lookup_prefers_top_level_fields_then_custom() -> None:
    user = {"userID": "u1", "Country": "DE", "custom": {"age": 30, "country": "FR", "plan": ""}}
    assert user_value(user, "country") == "DE"
    assert user_value(user, "COUNTRY") == "DE"
    assert user_value(user, "Age") == 30
    assert user_value(user, "userid") == "u1"
    assert user_value({"custom": {"country": "FR"}}, "country") == "FR"
    assert user_value(user, "plan") is None
    assert user_value(user, "missing") is None
    assert user_value({"custom": {"tags": ["a"]}}, "tags") is None


def test_custom_keys_are_read_as_spelt_then_in_lower_case_like_the_sdk() -> None:
    user = {"custom": {"AGE": 1, "age": 2, "Plan": "pro"}}
    assert user_value(user, "age") == 2
    assert user_value(user, "AGE") == 1
    assert user_value(user, "Age") == 2  # "Age" is absent, "age" is not
    assert user_value(user, "Plan") == "pro"
    assert user_value(user, "plan") is None  # the SDK never reads "Plan" for a feature named "plan"


@pytest.mark.parametrize(
    ("value", "number"),
    [(3, 3.0), (2.5, 2.5), ("42", 42.0), ("-1.5e3", -1500.0), (".5", 0.5), ("+7", 7.0)],
)
def test_numbers_and_numeric_strings(value: object, number: float) -> None:
    assert as_number(value) == number


@pytest.mark.parametrize("value", [True, False, None, "", " 4", "4 ", "1_000", "nan", "inf", "0x10", "٣", "abc"])
def test_not_numbers(value: object) -> None:
    assert as_number(value) is None


def test_category_strings() -> None:
    assert as_category("x") == "x"
    assert as_category(True) == "true"
    assert as_category(3) == "3"
    assert as_category(2.5) == "2.5"
    assert as_category(3.0) == "3"  # as the SDK writes numbers (probed)
    assert as_category(1e20) == "100000000000000000000"
    assert as_category(1.5e-7) == "0.00000015"
    assert as_category(-0.0) == "-0"
    assert as_category("") is None
    assert as_category(None) is None


def test_candidates_default_to_custom_keys_in_their_most_frequent_spelling() -> None:
    users = [{"country": "DE", "custom": {"Age": 1}}, {"custom": {"Age": 2, "plan": "a"}}, {"custom": {"age": 3}}]
    assert candidate_features(users) == ("Age", "plan")
    assert candidate_features(users, ["COUNTRY", "age", "Age", "appversion"]) == ("country", "age", "appVersion")


def test_typing_from_data() -> None:
    users = [{"custom": {"n": str(i), "m": i, "c": "x" if i % 2 else i}} for i in range(100)]
    encoding = fit_encoding(users)
    kinds = {f.name: type(f) for f in encoding.features}
    assert kinds == {"c": CategoricalFeature, "m": NumericFeature, "n": NumericFeature}


def test_categories_keep_the_25_most_frequent_with_more_than_1_percent() -> None:
    users: list[dict[str, object]] = []
    for value in range(30):
        users += [{"custom": {"c": f"v{value:02d}"}}] * (30 - value)  # v00: 30 units ... v29: 1 unit
    users += [{"custom": {"r": "rare"}}]  # 1 unit of 466: under 1% coverage
    n = len(users)
    encoding = fit_encoding(users)
    (feature,) = [f for f in encoding.features if f.name == "c"]
    assert isinstance(feature, CategoricalFeature)
    kept = [f"v{v:02d}" for v in range(30) if (30 - v) / n > 0.01][:25]
    assert feature.values == tuple(kept)
    assert len(kept) == 25
    assert "r" not in [f.name for f in encoding.features]


def test_ties_are_broken_by_value_and_encoding_is_deterministic() -> None:
    users = [{"custom": {"c": v}} for v in ["b", "a", "c", "a", "b", "c"]]
    first, second = fit_encoding(users), fit_encoding(list(reversed(users)))
    assert first == second
    assert first.features[0] == CategoricalFeature("c", ("a", "b", "c"), (1 / 3, 1 / 3, 1 / 3))


def test_design_matrix_is_centred_with_an_intercept() -> None:
    rng = np.random.default_rng(1)
    users = [
        {"country": str(rng.choice(["DE", "FR", "US"])), "custom": {"age": int(rng.integers(18, 80)), "s": None}}
        for _ in range(200)
    ]
    users[0]["custom"] = {}  # age missing: counts as 0
    encoding = fit_encoding(users, ["country", "age", "s"])
    X = encoding.transform(users)
    assert X.shape == (200, encoding.n_columns) == (200, 1 + 3 + 1)
    names = encoding.column_names
    assert names[0] == "(intercept)" and names[4] == "age"
    assert sorted(names[1:4]) == ["country=DE", "country=FR", "country=US"]
    np.testing.assert_array_equal(X[:, 0], 1.0)
    np.testing.assert_allclose(X[:, 1:].mean(axis=0), 0.0, atol=1e-12)
    assert 2**-0.5 <= X[:, 4].std() <= 2**0.5  # scaled by a power of two near the spread
    np.testing.assert_array_equal(encoding.average_context, [1, 0, 0, 0, 0])
    unseen = encoding.transform([{"country": "JP", "custom": {"age": "n/a"}}])[0]
    age = encoding.features[1]
    assert isinstance(age, NumericFeature)
    np.testing.assert_allclose(unseen[1:4], [-c for c in encoding.features[0].centres])  # type: ignore[union-attr]
    assert unseen[4] == pytest.approx(-age.centre / age.scale)
