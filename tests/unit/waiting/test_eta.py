import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.eta import Eta, RateEstimator


def steady(estimator: RateEstimator, per_tick: int, start_ms: int, end_ms: int) -> None:
    for t in range(start_ms, end_ms + 1, 100):
        estimator.record(t, per_tick)


def test_position_zero_or_admitted_has_no_wait():
    assert RateEstimator(configured_rate_per_s=10).eta(0, now_ms=0) == Eta(0.0, 0.0, 0.0)


def test_without_a_measurement_the_configured_rate_is_used():
    assert RateEstimator(configured_rate_per_s=10).eta(50, now_ms=0) == Eta(5.0, 5.0, 5.0)


def test_less_than_one_bucket_of_admissions_is_not_yet_a_measurement():
    est = RateEstimator(configured_rate_per_s=10, bucket_ms=1_000)
    est.record(0, 100)
    assert est.measured(999) is None
    assert est.eta(50, 999).eta_s == 5.0


def test_eta_uses_the_measured_rate_not_the_configured_one():
    est = RateEstimator(configured_rate_per_s=100, window_ms=10_000)
    steady(est, per_tick=2, start_ms=0, end_ms=10_000)  # 20 per second
    sample = est.measured(10_000)
    assert sample is not None and sample.mean_per_s == pytest.approx(20)
    assert sample.stdev_per_s == pytest.approx(0)
    assert est.eta(100, 10_000).eta_s == pytest.approx(5.0)


def test_time_before_the_first_admission_does_not_lower_the_rate():
    est = RateEstimator(configured_rate_per_s=100, window_ms=30_000)
    steady(est, per_tick=2, start_ms=50_000, end_ms=55_000)
    sample = est.measured(55_000)
    assert sample is not None and sample.mean_per_s == pytest.approx(20)


def test_uneven_admissions_widen_the_eta_range_around_the_estimate():
    est = RateEstimator(configured_rate_per_s=100, window_ms=4_000)
    for second, count in enumerate([10, 30, 10, 30, 10]):
        est.record(second * 1_000, count)
    eta = est.eta(100, 4_000)  # buckets hold 30, 10, 30, 10: mean 20, stdev 10
    assert eta.eta_s == pytest.approx(5.0)
    assert eta.eta_low_s == pytest.approx(100 / 30)
    assert eta.eta_high_s == pytest.approx(10.0)


def test_only_the_recent_window_counts():
    est = RateEstimator(configured_rate_per_s=100, window_ms=5_000)
    steady(est, per_tick=10, start_ms=0, end_ms=10_000)  # 100/s
    steady(est, per_tick=1, start_ms=10_100, end_ms=20_000)  # then 10/s
    sample = est.measured(20_000)
    assert sample is not None and sample.mean_per_s == pytest.approx(10)


def test_stalled_admission_has_no_eta_rather_than_a_made_up_one():
    est = RateEstimator(configured_rate_per_s=10, window_ms=5_000)
    est.record(0, 5)
    assert est.eta(10, 60_000) == Eta(None, None, None)
    assert RateEstimator(configured_rate_per_s=0).eta(10, 0) == Eta(None, None, None)


def test_spread_as_large_as_the_rate_leaves_the_upper_bound_open():
    est = RateEstimator(configured_rate_per_s=10, window_ms=2_000)
    est.record(0, 1)
    est.record(2_000, 40)  # buckets hold 0 and 40: mean 20, stdev 20
    eta = est.eta(10, 2_000)
    assert eta.eta_s == pytest.approx(0.5) and eta.eta_high_s is None


def test_bucket_must_fit_in_the_window():
    with pytest.raises(InvalidParameter):
        RateEstimator(configured_rate_per_s=1, window_ms=500, bucket_ms=1_000)
