"""Per-client token buckets for the join and status endpoints (429 + Retry-After).

Each key (client address, user id, ...) gets a bucket of `burst` tokens refilled at
`rate_per_s`. Memory is bounded: a bucket that has been idle long enough to refill completely
is indistinguishable from a new one, so it is dropped; and if more than `max_keys` keys are
live, the least recently seen is evicted. Evicting a key forgets its debt, but a client
hammering the endpoint is by definition recently seen, so it is the last to go.

`retry_after_s` is exact (fractional); round it up for the HTTP Retry-After header.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

from domain.waiting.errors import InvalidParameter


class Verdict(NamedTuple):
    allowed: bool
    retry_after_s: float


class KeyedRateLimiter:
    """Token bucket per key with bounded memory; see the module docstring."""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 100_000) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)) or burst < 1 or max_keys < 1:
            raise InvalidParameter("need rate_per_s > 0, burst >= 1 and max_keys >= 1")
        self._rate_per_ms = rate_per_s / 1000.0
        self._burst = burst
        self._max_keys = max_keys
        self._full_after_ms = burst / self._rate_per_ms
        # key -> (tokens, last_seen_ms), least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, key: str, now_ms: int) -> Verdict:
        """Spend one token for `key` if it has one; else say how long until it will."""
        self._evict_idle(now_ms)
        tokens, last_ms = self._buckets.pop(key, (self._burst, now_ms))
        tokens = min(self._burst, tokens + max(0, now_ms - last_ms) * self._rate_per_ms)
        last_ms = max(last_ms, now_ms)
        if tokens >= 1:
            verdict = Verdict(True, 0.0)
            tokens -= 1
        else:
            verdict = Verdict(False, (1 - tokens) / self._rate_per_ms / 1000.0)
        self._buckets[key] = (tokens, last_ms)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return verdict

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict_idle(self, now_ms: int) -> None:
        while self._buckets:
            _key, (_tokens, last_ms) = next(iter(self._buckets.items()))
            if now_ms - last_ms < self._full_after_ms:
                return
            self._buckets.popitem(last=False)
