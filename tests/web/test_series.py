"""The series module (pure): status sentences, per-day numbers from cumulative updates, percent text."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from openautotune.domain.autotune import Actor, Autotune, Definition, Stage, Status, Variant
from openautotune.web import series
from openautotune.web.series import UpdatePoint, VariantState

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
ACTOR = Actor(id="k", name="TEST")
RED, BLUE = Variant("r", "red", {}), Variant("b", "blue", {})


def _autotune(status: Status = Status.RUNNING, winner: str | None = None) -> Autotune:
    definition = Definition(
        name="t",
        variants=(RED, BLUE),
        success_event="click",
        exploration_window="24hr",
        attribution_window="1hr",
        winner_threshold="95%",
    )
    return Autotune("t", definition, status, 1, "salt", START, winner, 1, 1, START, START, ACTOR, ACTOR)


def _point(as_of: int, stage: Stage, pobs: tuple[float, float], units: tuple[int, int] = (10, 10)) -> UpdatePoint:
    return UpdatePoint(
        as_of,
        stage,
        tuple(
            VariantState(v.id, n, n / 10, 0.1, 0.05, 0.15, p, p)
            for v, p, n in zip((RED, BLUE), pobs, units, strict=True)
        ),
    )


def test_status_sentences() -> None:
    assert series.status_sentence(replace(_autotune(), status=Status.DRAFT), None) == (
        "Draft: not started; everyone gets red."
    )
    assert series.status_sentence(_autotune(), None) == (
        "Exploring until 2026-01-02 00:00 UTC: traffic is split evenly."
    )
    leading = _point(START + 30 * HOUR, Stage.EXPLOITING, (0.09, 0.91))
    assert series.status_sentence(_autotune(), leading) == "blue leads with 91% probability of being best; needs 95%."
    won = _point(START + 40 * HOUR, Stage.FINISHED, (0.008, 0.992))
    assert series.status_sentence(_autotune(Status.FINISHED, "b"), won, START + 40 * HOUR) == (
        "blue won on 2026-01-02 16:00 UTC with 99.2% probability of being best."
    )
    assert series.status_sentence(_autotune(Status.FINISHED, "r"), leading, START + 31 * HOUR) == (
        "red was chosen by decision on 2026-01-02 07:00 UTC (probability of being best at the last update: 9%)."
    )


def test_percent_drops_a_zero_decimal() -> None:
    assert [series.percent(x) for x in (0.91, 0.992, 1.0, 0.0)] == ["91%", "99.2%", "100%", "0%"]


@given(st.lists(st.tuples(st.integers(1, 200), st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=80))
def test_days_add_up_to_the_cumulative_numbers(steps: list[tuple[int, int, int]]) -> None:
    """Whatever the update times and growth, per-day units sum to the last cumulative count, per variant."""
    as_of, red, blue, points = START, 0, 0, []
    for hours, new_red, new_blue in steps:
        as_of += hours * HOUR
        red, blue = red + new_red, blue + new_blue
        points.append(_point(as_of, Stage.EXPLOITING, (0.5, 0.5), (red, blue)))
    days = series.daily_from_updates(points, 2)
    assert sum(day.variants[0].units for day in days) == red
    assert sum(day.variants[1].units for day in days) == blue
    assert len({day.day for day in days}) == len(days) == len({series.day_of(p.as_of_ms) for p in points})
    assert all(day.variants[0].mean is None or day.variants[0].units > 0 for day in days)
