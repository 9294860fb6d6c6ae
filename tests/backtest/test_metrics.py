"""Backtest metrics on hand-made inputs whose results are worked out in the comments."""

import numpy as np
import pytest

from costwarden.backtest.metrics import (
    brier_score,
    inside_interval,
    mase,
    reliability_table,
    seasonal_naive_scale,
    smape,
    straight_line_total,
)


def test_seasonal_naive_scale_is_weekly_mae():
    # Days 8..10 differ from a week earlier by 7, -7 and 14: the MAE is 28 / 3.
    history = np.array([10, 10, 10, 10, 10, 10, 10, 17, 3, 24], dtype=float)

    assert seasonal_naive_scale(history) == pytest.approx(28 / 3)


def test_seasonal_naive_scale_short_history():
    assert seasonal_naive_scale(np.ones(7)) is None
    assert seasonal_naive_scale(np.ones(8)) == 0.0


def test_mase_divides_mae_by_scale():
    actual = np.array([10.0, 20.0, 30.0])
    forecast = np.array([12.0, 17.0, 30.0])

    assert mase(actual, forecast, scale=2.5) == pytest.approx((2 + 3 + 0) / 3 / 2.5)


def test_mase_undefined_without_scale():
    actual = np.array([5.0, 5.0])

    assert mase(actual, actual, scale=0.0) is None
    assert mase(actual, actual, scale=None) is None


def test_smape_known_values():
    # |110-100| / (110+100) * 2 = 0.0952..., and 0 for the exact day.
    assert smape(np.array([100.0, 50.0]), np.array([110.0, 50.0])) == pytest.approx(
        100 * (20 / 210) / 2
    )
    assert smape(np.array([0.0, 10.0]), np.array([5.0, 0.0])) == pytest.approx(200.0)


def test_smape_counts_zero_over_zero_as_exact():
    assert smape(np.zeros(3), np.zeros(3)) == 0.0


def test_inside_interval_is_closed():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    lower = np.array([1.0, 2.5, 0.0, 4.0])
    upper = np.array([2.0, 3.0, 3.0, 4.0])

    # Day 1 sits on the lower bound, day 2 below it, day 3 on the upper bound, day 4 on both.
    assert inside_interval(actual, lower, upper) == 3


def test_inside_interval_tolerates_rounding_only():
    actual = np.array([100.0, 100.0])
    bound = np.array([100.0 + 1e-12, 100.5])

    assert inside_interval(actual, bound, bound) == 1


def test_brier_score_hand_computed():
    # (0.9-1)^2 + (0.2-0)^2 + (0.6-0)^2 + (1-1)^2 = 0.01 + 0.04 + 0.36 + 0 = 0.41.
    score = brier_score([0.9, 0.2, 0.6, 1.0], [True, False, False, True])

    assert score == pytest.approx(0.41 / 4)


def test_brier_score_of_no_events_is_none():
    assert brier_score([], []) is None


def test_brier_score_rejects_bad_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        brier_score([1.2], [True])
    with pytest.raises(ValueError, match="equal length"):
        brier_score([0.5, 0.5], [True])


def test_reliability_table_bins_and_frequencies():
    probabilities = [0.05, 0.08, 0.15, 0.55, 0.58, 0.95, 1.0, 0.1]
    outcomes = [False, True, False, True, False, True, True, False]

    table = reliability_table(probabilities, outcomes, bins=4)

    assert [(row.lower, row.upper) for row in table] == [
        (0.0, 0.25),
        (0.25, 0.5),
        (0.5, 0.75),
        (0.75, 1.0),
    ]
    assert [row.count for row in table] == [4, 0, 2, 2]
    assert table[0].mean_predicted == pytest.approx((0.05 + 0.08 + 0.15 + 0.1) / 4)
    assert table[0].observed_frequency == pytest.approx(0.25)
    assert table[1].mean_predicted is None
    assert table[1].observed_frequency is None
    assert table[2].observed_frequency == pytest.approx(0.5)
    assert table[3].mean_predicted == pytest.approx(0.975)
    assert table[3].observed_frequency == 1.0


def test_reliability_lower_edge_inclusive():
    table = reliability_table([0.1, 0.2], [False, True], bins=10)

    # 0.1 and 0.2 start bins of their own; the lower edge is inclusive.
    assert table[1].count == 1
    assert table[2].count == 1
    assert sum(row.count for row in table) == 2


def test_straight_line_total_extends_daily_average():
    assert straight_line_total(1000.0, days_elapsed=10, days_in_period=31) == pytest.approx(3100)


def test_straight_line_total_needs_one_day():
    with pytest.raises(ValueError, match="days_elapsed"):
        straight_line_total(10.0, days_elapsed=0, days_in_period=30)
