import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.ratelimit import KeyedRateLimiter


def test_burst_is_allowed_then_refused_with_retry_after():
    limiter = KeyedRateLimiter(rate_per_s=2, burst=3)
    assert [limiter.allow("ip", 0).allowed for _ in range(3)] == [True, True, True]
    allowed, retry_after_s = limiter.allow("ip", 0)
    assert not allowed
    assert retry_after_s == pytest.approx(0.5)


def test_retry_after_is_when_a_token_is_back():
    limiter = KeyedRateLimiter(rate_per_s=2, burst=1)
    assert limiter.allow("ip", 0).allowed
    assert limiter.allow("ip", 200).retry_after_s == pytest.approx(0.3)
    assert not limiter.allow("ip", 499).allowed
    assert limiter.allow("ip", 500).allowed


def test_clients_have_separate_buckets():
    limiter = KeyedRateLimiter(rate_per_s=1, burst=1)
    assert limiter.allow("a", 0).allowed
    assert not limiter.allow("a", 0).allowed
    assert limiter.allow("b", 0).allowed


def test_fully_refilled_keys_are_forgotten():
    limiter = KeyedRateLimiter(rate_per_s=1, burst=2)
    for i in range(100):
        limiter.allow(f"k{i}", 0)
    assert len(limiter) == 100
    limiter.allow("late", 2_000)
    assert len(limiter) == 1


def test_memory_is_bounded_by_evicting_the_least_recently_seen():
    limiter = KeyedRateLimiter(rate_per_s=1, burst=1, max_keys=3)
    limiter.allow("hammer", 0)
    for i in range(10):
        limiter.allow(f"once{i}", 1)
        assert not limiter.allow("hammer", 1).allowed  # still remembered: still limited
    assert len(limiter) == 3


def test_bad_limits_are_refused():
    with pytest.raises(InvalidParameter):
        KeyedRateLimiter(rate_per_s=0, burst=1)
    with pytest.raises(InvalidParameter):
        KeyedRateLimiter(rate_per_s=1, burst=0.5)
