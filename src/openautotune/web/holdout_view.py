"""The dashboard's "Holdout and delayed conversions" card, from the results (engine/results.py).

Two facts the summary table does not show: how many units per variant are still inside their
attribution window (the allocation counts their observable share, the numbers above do not), and,
with a holdout, the bandit against the units that kept the fixed equal split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openautotune.engine.results import Results
from openautotune.web.templating import format_number, format_percent


@dataclass(frozen=True)
class ImmatureRow:
    name: str
    units: int


@dataclass(frozen=True)
class HoldoutComparison:
    percent: str
    holdout_units: int
    bandit_units: int
    holdout_mean: str
    bandit_mean: str
    lift: str
    lift_interval: str
    relative_lift: str
    regret_avoided: str
    regret_interval: str
    reading: str
    message: str | None


@dataclass(frozen=True)
class HealthDelaySection:
    immature: tuple[ImmatureRow, ...]
    holdout: HoldoutComparison | None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _end(block: Any, key: str) -> float | None:
    return _number(block.get(key)) if isinstance(block, dict) else None


def _holdout(block: dict[str, Any], occurrence: bool) -> HoldoutComparison:
    def show(value: float | None) -> str:
        return format_percent(value, 2) if occurrence else format_number(value)

    def signed(value: float | None) -> str:
        if value is None:
            return "—"
        return ("+" if value >= 0 else "") + show(value)

    lift, relative, regret = block.get("lift"), block.get("relativeLift"), block.get("regretAvoided")
    low, high = _end(lift, "low"), _end(lift, "high")
    regret_value = _end(regret, "value")
    if low is None or high is None:
        reading = "Not enough data yet to compare the bandit with its holdout."
    elif low > 0:
        reading = "The bandit's units do better than the holdout's (95% interval above 0)."
    elif high < 0:
        reading = "The bandit's units do worse than the holdout's (95% interval below 0)."
    else:
        reading = "No difference between the bandit and its holdout can be told apart yet (95% interval spans 0)."
    return HoldoutComparison(
        percent=f"{_number(block.get('percent')) or 0:g}%",
        holdout_units=int(_number(block.get("units")) or 0),
        bandit_units=int(_number(block.get("banditUnits")) or 0),
        holdout_mean=show(_number(block.get("holdoutMean"))),
        bandit_mean=show(_number(block.get("banditMean"))),
        lift=signed(_end(lift, "value")),
        lift_interval=f"{signed(low)} to {signed(high)}" if low is not None and high is not None else "—",
        relative_lift=format_percent(_end(relative, "value")),
        regret_avoided=f"{regret_value:,.1f}" if regret_value is not None else "—",
        regret_interval=(
            f"{_end(regret, 'low'):,.1f} to {_end(regret, 'high'):,.1f}" if regret_value is not None else "—"
        ),
        reading=reading,
        message=block.get("message") if isinstance(block.get("message"), str) else None,
    )


def section(results: Results) -> HealthDelaySection | None:
    """The card's content; None for contextual autotunes (they have neither), drafts, and when there is
    neither a holdout nor an immature unit to show."""
    if results.contextual is not None or results.stage.value == "draft":
        return None
    if results.holdout is None and not any(v.immature_units for v in results.variants):
        return None
    return HealthDelaySection(
        immature=tuple(ImmatureRow(v.name, v.immature_units) for v in results.variants),
        holdout=_holdout(results.holdout, results.metric == "occurrence") if results.holdout is not None else None,
    )
