"""How many waiting users to admit right now.

A token bucket paces admissions at `admission_rate_per_s`, so the seat-hold path sees a steady,
configurable load instead of the whole queue at once. The bucket holds at most `burst` tokens,
so a quiet spell (nobody waiting, or before on-sale) does not bank a stampede. On top of the
pace, admissions never exceed what the remaining seats can serve: every admitted user who has
not held yet is counted as taking one seat, so we never let in more people than there are seats
left for them. When sold out this is zero; when expired holds return seats, it rises again and
admission resumes by itself.

`admit_count` is pure apart from the bucket it owns: no clock (callers pass `now_ms`), no IO.
It consumes only the tokens it actually used, so a tick limited by seats or by the queue
length does not waste the rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from domain.waiting.errors import InvalidParameter


def seats_left(free_per_block: Mapping[int, int], blocks: Iterable[int]) -> int | None:
    """Seats neither held nor sold, summed over the event's blocks; None (unknown) while a
    block's count is missing: a Redis that came back empty, before that block has recounted
    from its bitmaps and the ledger. Unknown admits nobody and tells nobody `sold_out`."""
    total = 0
    for block in blocks:
        if block not in free_per_block:
            return None
        total += free_per_block[block]
    return total


class AdmissionController:
    """Token bucket plus seat cap; see the module docstring."""

    def __init__(self, rate_per_s: float, now_ms: int, burst: float | None = None) -> None:
        _check_rate(rate_per_s)
        self._rate_per_s = rate_per_s
        self._fixed_burst = burst
        if burst is not None and burst < 1:
            raise InvalidParameter("burst must be >= 1")
        self._tokens = 0.0
        self._last_ms = now_ms

    @property
    def rate_per_s(self) -> float:
        return self._rate_per_s

    @property
    def burst(self) -> float:
        """Bucket capacity: as configured, else one second's worth (at least one token)."""
        if self._fixed_burst is not None:
            return self._fixed_burst
        return max(1.0, self._rate_per_s)

    def set_rate(self, rate_per_s: float, now_ms: int) -> None:
        """Change the pace live; time already elapsed is credited at the old rate."""
        _check_rate(rate_per_s)
        self._refill(now_ms)
        self._rate_per_s = rate_per_s
        self._tokens = min(self._tokens, self.burst)

    def admit_count(self, now_ms: int, waiting: int, remaining_seats: int,
                    outstanding_admitted: int, limit: int | None = None) -> int:
        """Admit this many now (and spend their tokens).

        `waiting`: tickets in the queue; `remaining_seats`: seats neither held nor sold;
        `outstanding_admitted`: admitted users who have not held yet; `limit`: most admitted
        in one step (the rest of the tokens stay for the next).
        """
        if waiting < 0 or outstanding_admitted < 0:
            raise InvalidParameter("waiting and outstanding_admitted must be >= 0")
        self._refill(now_ms)
        seat_room = remaining_seats - outstanding_admitted
        count = max(0, min(math.floor(self._tokens), waiting, seat_room,
                           waiting if limit is None else limit))
        self._tokens -= count
        return count

    def _refill(self, now_ms: int) -> None:
        elapsed_ms = max(0, now_ms - self._last_ms)  # a clock step back credits nothing
        self._tokens = min(self.burst, self._tokens + elapsed_ms * self._rate_per_s / 1000.0)
        self._last_ms = max(self._last_ms, now_ms)


def _check_rate(rate_per_s: float) -> None:
    if not (rate_per_s >= 0 and math.isfinite(rate_per_s)):
        raise InvalidParameter("admission_rate_per_s must be finite and >= 0 (0 pauses)")
