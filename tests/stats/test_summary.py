"""summarize: aggregates in, posteriors, intervals, P(best) and weights out; lack of data is a result."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from openautotune.domain.allocation import cumulative_thresholds
from openautotune.stats import (
    BetaPosterior,
    NormalPosterior,
    StudentTPosterior,
    VariantAggregate,
    posterior_from_params,
    probability_of_best,
    summarize,
)


def test_occurrence_summary() -> None:
    aggregates = [VariantAggregate(units=1_000, successes=100), VariantAggregate(units=1_000, successes=130)]
    summary = summarize("occurrence", aggregates, long_term=0.2)
    assert summary.enough_data
    assert summary.message is None
    first, second = summary.variants
    assert first.posterior == BetaPosterior(101.0, 901.0)
    assert (first.ci_low, first.ci_high) == pytest.approx(sps.beta(101, 901).interval(0.95), rel=1e-12)
    assert first.mean == pytest.approx(101 / 1002)
    assert summary.leader == 1
    expected = probability_of_best([BetaPosterior(101.0, 901.0), BetaPosterior(131.0, 871.0)])
    assert summary.pob == pytest.approx(tuple(expected), abs=1e-15)
    assert 0.97 < second.pob < 0.99
    assert second.weight == pytest.approx(0.1 + 0.8 * second.pob)
    assert sum(summary.weights) == pytest.approx(1.0, abs=1e-15)


def test_lower_is_better_reverses_the_leader() -> None:
    aggregates = [VariantAggregate(units=1_000, successes=100), VariantAggregate(units=1_000, successes=130)]
    summary = summarize("occurrence", aggregates, lower_is_better=True)
    assert summary.leader == 0
    assert summary.pob[0] > 0.97


def test_value_summary_picks_t_and_normal_by_units() -> None:
    aggregates = [
        VariantAggregate(units=10, total=50.0, total_sq=10 * 25.0 + 9 * 4.0),
        VariantAggregate(units=400, total=400 * 5.5, total_sq=400 * 30.25 + 399 * 4.0),
    ]
    summary = summarize("value", aggregates)
    assert isinstance(summary.variants[0].posterior, StudentTPosterior)
    assert isinstance(summary.variants[1].posterior, NormalPosterior)
    assert summary.variants[0].mean == pytest.approx(5.0)
    assert summary.variants[1].ci_low == pytest.approx(5.5 - 1.959963984540054 * 2 / 20, rel=1e-9)
    assert summary.leader == 1


def test_a_decision_can_be_recomputed_from_the_recorded_params() -> None:
    aggregates = [VariantAggregate(units=n, successes=s) for n, s in ((500, 40), (520, 55), (480, 47))]
    summary = summarize("occurrence", aggregates)
    record = [v.posterior.params() for v in summary.variants]
    rebuilt = [posterior_from_params(p) for p in record]
    assert tuple(probability_of_best(rebuilt)) == summary.pob


def test_no_units_at_all_is_a_result_with_a_message() -> None:
    for metric in ("occurrence", "value"):
        summary = summarize(metric, [VariantAggregate(units=0)] * 4, long_term=0.3)
        assert not summary.enough_data
        assert summary.message is not None
        assert "no variant has mature units" in summary.message
        assert summary.pob == (0.25, 0.25, 0.25, 0.25)
        assert summary.weights == pytest.approx((0.25,) * 4, abs=1e-15)
        assert cumulative_thresholds(summary.weights) == (250, 500, 750, 1000)


def test_one_empty_variant_keeps_a_share_but_blocks_a_winner() -> None:
    aggregates = [VariantAggregate(units=0), VariantAggregate(units=2_000, successes=1_900)]
    summary = summarize("occurrence", aggregates)
    assert not summary.enough_data
    assert summary.message is not None
    assert "variant(s) 0" in summary.message
    # A uniform arm beats B ~ Beta(1901, 101) with probability E[1 - B] = 101 / 2002 exactly.
    assert summary.pob[0] == pytest.approx(101 / 2002, abs=1e-12)


def test_value_variant_with_one_unit_is_not_enough() -> None:
    aggregates = [
        VariantAggregate(units=1, total=3.0, total_sq=9.0),
        VariantAggregate(units=100, total=300.0, total_sq=1_000.0),
    ]
    summary = summarize("value", aggregates)
    assert not summary.enough_data
    assert summary.message is not None
    assert "fewer than 2 mature units" in summary.message
    assert summary.variants[0].posterior == NormalPosterior(3.0, 1e6)
    assert np.isfinite(summary.pob).all()
    assert sum(summary.pob) == pytest.approx(1.0, abs=1e-12)


def test_invalid_input_is_an_error_not_a_message() -> None:
    with pytest.raises(ValueError):
        summarize("occurrence", [VariantAggregate(units=5, successes=6)])
    with pytest.raises(ValueError):
        summarize("occurrence", [])
    with pytest.raises(ValueError):
        summarize("ratio", [VariantAggregate(units=5)])  # type: ignore[arg-type]


def test_summary_is_frozen() -> None:
    summary = summarize("occurrence", [VariantAggregate(units=10, successes=2)] * 2)
    with pytest.raises(AttributeError):
        summary.enough_data = False  # type: ignore[misc]
    assert summary.pob == pytest.approx((0.5, 0.5), abs=1e-14)
