"""Pure rules: window parsing, thresholds, ids and the exploration split."""

from __future__ import annotations

import pytest

from openautotune.domain import windows
from openautotune.domain.allocation import exploration_weights, winner_weights
from openautotune.domain.autotune import Definition, Variant
from openautotune.domain.errors import InvalidInput
from openautotune.domain.ids import autotune_id_from_name


@pytest.mark.parametrize(("window", "hours"), [("1", 1), ("24hr", 24), ("48hrs", 48), ("168", 168), ("336hr", 336)])
def test_exploration_window_aliases(window: str, hours: int) -> None:
    assert windows.exploration_window_ms(window) == hours * windows.HOUR_MS


@pytest.mark.parametrize(
    ("window", "unit", "ms"),
    [
        ("1hr", None, windows.HOUR_MS),
        ("2", "min", 2 * windows.MINUTE_MS),
        ("4hrs", "day", 4 * windows.DAY_MS),
        ("24", "hour", 24 * windows.HOUR_MS),
    ],
)
def test_attribution_window_in_its_unit(window: str, unit: str | None, ms: int) -> None:
    assert windows.attribution_window_ms(window, unit) == ms


@pytest.mark.parametrize("bad", ["3hr", "2 hr", "", "48hr"])
def test_bad_attribution_window(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        windows.attribution_window_ms(bad, None)
    assert raised.value.problems[0].property == "attributionWindow"


def test_winner_threshold() -> None:
    assert windows.winner_threshold("95%") == 0.95
    with pytest.raises(InvalidInput):
        windows.winner_threshold("95")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("A Autotune", "a_autotune"), ("  Mixed-Case.Name  ", "mixed-case.name"), ("a  b//c", "a_b_c"), ("ÄÖ x", "_x")],
)
def test_autotune_id_from_name(name: str, expected: str) -> None:
    assert autotune_id_from_name(name) == expected


def _definition(sizes: list[float | None]) -> Definition:
    variants = tuple(Variant(id=f"v{i}", name=f"n{i}", json={}, size=s) for i, s in enumerate(sizes))
    return Definition(
        name="t",
        variants=variants,
        success_event="e",
        exploration_window="24hr",
        attribution_window="1hr",
        winner_threshold="95%",
    )


def test_exploration_split_equal_or_by_size() -> None:
    assert exploration_weights(_definition([None, None, None])) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert exploration_weights(_definition([70, 30])) == pytest.approx((0.7, 0.3))
    # A size on only some variants is ignored: the split is equal.
    assert exploration_weights(_definition([70, None])) == pytest.approx((0.5, 0.5))
    assert winner_weights(_definition([None, None]), "v1") == (0.0, 1.0)
