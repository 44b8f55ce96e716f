import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.queue_order import (
    QueueTier,
    general_score,
    is_prequeue,
    prequeue_score,
    presale_score,
    tier_of,
)

NOW_MS = 1_764_000_000_000  # late 2025
YEAR_2280_MS = 9_800_000_000_000


def test_presale_before_prequeue_before_general_whatever_the_times():
    assert presale_score(YEAR_2280_MS) < prequeue_score(0)
    assert prequeue_score(10**12) < general_score(0)


def test_general_tier_is_first_come_first_served():
    assert general_score(NOW_MS) < general_score(NOW_MS + 1)


def test_prequeue_tier_follows_lottery_rank():
    assert prequeue_score(0) < prequeue_score(1) < prequeue_score(2)


def test_scores_survive_a_float64_round_trip_exactly():
    for score in (presale_score(NOW_MS), prequeue_score(123_456), general_score(NOW_MS),
                  general_score(YEAR_2280_MS), general_score(NOW_MS + 1)):
        assert score < 2**53
        assert int(float(score)) == score
    assert float(general_score(NOW_MS)) != float(general_score(NOW_MS + 1))


def test_tier_is_recoverable_from_the_score():
    assert tier_of(presale_score(NOW_MS)) is QueueTier.PRESALE
    assert tier_of(prequeue_score(7)) is QueueTier.PREQUEUE
    assert tier_of(general_score(NOW_MS)) is QueueTier.GENERAL


def test_values_outside_the_tier_width_are_refused():
    with pytest.raises(InvalidParameter):
        general_score(10**13)
    with pytest.raises(InvalidParameter):
        prequeue_score(-1)


def test_prequeue_means_strictly_before_onsale():
    assert is_prequeue(999, 1_000)
    assert not is_prequeue(1_000, 1_000)
