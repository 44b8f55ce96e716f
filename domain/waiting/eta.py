"""Estimated wait from the admission rate actually measured, with a range.

The configured rate is an upper bound: seats, holds and pauses can slow admission down, so a
user's ETA comes from what was admitted recently. We count admissions in fixed buckets
(`bucket_ms`) over a sliding window (`window_ms`) and take the mean and standard deviation of
the per-bucket rates. The ETA for position p is p / mean; its range uses mean +- stdev::

    eta_low_s = p / (mean + stdev)      eta_high_s = p / (mean - stdev)

The window starts at the first recorded admission, not before, so the dead time before
on-sale does not drag the mean down. Until one full bucket has been measured we fall back to
the configured rate with no spread. A rate of zero (paused, sold out) has no meaningful ETA:
those fields are None, and so is `eta_high_s` when mean - stdev <= 0, rather than a made-up
number.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from domain.waiting.errors import InvalidParameter


@dataclass(frozen=True)
class Eta:
    eta_s: float | None
    eta_low_s: float | None
    eta_high_s: float | None


@dataclass(frozen=True)
class RateSample:
    """Measured admissions per second: mean and (population) standard deviation."""

    mean_per_s: float
    stdev_per_s: float


class RateEstimator:
    """Sliding-window admission rate and the ETA derived from it."""

    def __init__(self, configured_rate_per_s: float, window_ms: int = 30_000,
                 bucket_ms: int = 1_000) -> None:
        if bucket_ms <= 0 or window_ms < bucket_ms:
            raise InvalidParameter("need 0 < bucket_ms <= window_ms")
        self.configured_rate_per_s = configured_rate_per_s
        self._window_ms = window_ms
        self._bucket_ms = bucket_ms
        self._records: deque[tuple[int, int]] = deque()
        self._first_ms: int | None = None

    def record(self, now_ms: int, count: int) -> None:
        """Note `count` admissions at `now_ms` (0 is meaningful only as a tick: skipped)."""
        if count < 0:
            raise InvalidParameter("count must be >= 0")
        if self._first_ms is None and count > 0:
            self._first_ms = now_ms
        if count > 0:
            self._records.append((now_ms, count))
        while self._records and self._records[0][0] <= now_ms - self._window_ms:
            self._records.popleft()

    def measured(self, now_ms: int) -> RateSample | None:
        """The measured rate over whole buckets of the window, or None before one bucket."""
        if self._first_ms is None:
            return None
        span_ms = min(self._window_ms, now_ms - self._first_ms)
        n = span_ms // self._bucket_ms
        if n < 1:
            return None
        start_ms = now_ms - n * self._bucket_ms
        counts = [0] * n
        for at_ms, count in self._records:
            if start_ms < at_ms <= now_ms:  # (start, now]: a tick reports the interval before it
                counts[(at_ms - start_ms - 1) // self._bucket_ms] += count
        bucket_s = self._bucket_ms / 1000.0
        rates = [c / bucket_s for c in counts]
        mean = sum(rates) / n
        stdev = math.sqrt(sum((r - mean) ** 2 for r in rates) / n)
        return RateSample(mean, stdev)

    def eta(self, position: int, now_ms: int) -> Eta:
        """ETA for the ticket at `position` (1 = next to be admitted; 0 = admitted)."""
        return eta_at(position, self.sample(now_ms))

    def sample(self, now_ms: int) -> RateSample:
        """The measured rate, or the configured one (with no spread) before a measurement."""
        return self.measured(now_ms) or RateSample(self.configured_rate_per_s, 0.0)


def eta_at(position: int, sample: RateSample) -> Eta:
    """ETA and its range from a rate sample: what every replica computes per stream, for free."""
    if position <= 0:
        return Eta(0.0, 0.0, 0.0)
    if sample.mean_per_s <= 0:
        return Eta(None, None, None)
    low_rate = sample.mean_per_s - sample.stdev_per_s
    high_rate = sample.mean_per_s + sample.stdev_per_s
    return Eta(eta_s=position / sample.mean_per_s,
               eta_low_s=position / high_rate,
               eta_high_s=position / low_rate if low_rate > 0 else None)
