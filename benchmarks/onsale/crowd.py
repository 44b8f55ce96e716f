"""The crowd of an on-sale: when each user arrives and how an admitted user behaves.

Pure (numpy and a seed, no clock, no IO), so the same `--seed` replays the same crowd for our
stack and for the baselines, and the shapes are unit-tested.

Arrivals (seconds relative to on-sale, which is 0):
  * pre-queue  `prequeue_share` of the users arrive in the `prequeue_s` before on-sale, more of
               them the closer it gets (density rising linearly); the room orders them by its
               lottery at on-sale, ahead of everyone after.
  * burst      `burst_share` arrive in the first `burst_s` after on-sale, exponentially
               thinning (time constant burst_s / 4): the refresh-at-10:00 stampede.
  * tail       the rest arrive uniformly over the following `tail_s`.

Behaviour of an admitted user (one `Person` per user, drawn from the seed and the user's index
so a user behaves the same wherever it runs): how many seats it asks for (1-6, mostly 2),
how long it thinks before holding and before paying (log-normal, compressed: an on-sale that
takes people minutes takes the simulation seconds, see `think_scale`), whether it abandons its
hold (lets it expire), whether its first card is declined and whether it then retries with a
good card or gives up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUANTITY_WEIGHTS = (0.22, 0.38, 0.12, 0.18, 0.05, 0.05)  # 1..6 seats


@dataclass(frozen=True)
class CrowdShape:
    prequeue_share: float = 0.002
    prequeue_s: float = 15.0
    burst_share: float = 0.7
    burst_s: float = 20.0
    tail_s: float = 40.0

    def __post_init__(self) -> None:
        if not (self.prequeue_share >= 0 and self.burst_share >= 0
                and self.prequeue_share + self.burst_share <= 1):
            raise ValueError("shares must be >= 0 and add up to at most 1")
        if min(self.prequeue_s, self.burst_s, self.tail_s) <= 0:
            raise ValueError("durations must be > 0")

    @property
    def span_s(self) -> float:
        return self.prequeue_s + self.burst_s + self.tail_s


def arrivals(users: int, shape: CrowdShape, seed: int) -> np.ndarray:
    """Arrival second of each user (relative to on-sale), sorted ascending; index = user."""
    rng = np.random.default_rng(seed)
    n_pre = round(users * shape.prequeue_share)
    n_burst = round(users * shape.burst_share)
    n_tail = users - n_pre - n_burst
    # pre-queue: density rising linearly towards on-sale -> inverse CDF of a triangle
    pre = -shape.prequeue_s * (1 - np.sqrt(rng.random(n_pre)))
    # burst: truncated exponential over [0, burst_s)
    tau = shape.burst_s / 4
    u = rng.random(n_burst)
    burst = -tau * np.log(1 - u * (1 - np.exp(-shape.burst_s / tau)))
    tail = shape.burst_s + shape.tail_s * rng.random(n_tail)
    out = np.concatenate([pre, burst, tail])
    out.sort()
    return out


def rate_profile(times: np.ndarray, bin_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Arrivals per second in bins: (bin starts, rate)."""
    if len(times) == 0:
        return np.zeros(0), np.zeros(0)
    lo, hi = float(np.floor(times.min())), float(np.ceil(times.max())) + bin_s
    edges = np.arange(lo, hi + bin_s / 2, bin_s)
    counts, _ = np.histogram(times, edges)
    return edges[:-1], counts / bin_s


def http_sample(arrival_s: np.ndarray, count: int, early: int, seed: int) -> np.ndarray:
    """Indexes of the users who come through real HTTP + SSE clients: half drawn from the first
    `early` arrivals (so some of the sample is admitted and measures holds and checkouts), the
    rest uniformly (most of them are told `sold_out`, which is what most people experience)."""
    users = len(arrival_s)
    count = min(count, users)
    rng = np.random.default_rng(seed + 1)
    early = max(1, min(early, users))
    n_early = min(count // 2, early)
    first = rng.choice(early, n_early, replace=False)
    rest_pool = np.setdiff1d(np.arange(users), first, assume_unique=True)
    rest = rng.choice(rest_pool, count - n_early, replace=False)
    return np.sort(np.concatenate([first, rest]))


@dataclass(frozen=True)
class Person:
    quantity: int
    think_hold_s: float  # admitted -> asks for seats
    think_pay_s: float  # hold -> pays
    abandons: bool  # holds, then walks away: the hold expires
    declined_first: bool  # the first card is declined
    retries_after_decline: bool  # ... and then pays with a good card
    card: str


@dataclass(frozen=True)
class Behaviour:
    abandon_p: float = 0.08
    decline_p: float = 0.07
    retry_after_decline_p: float = 0.8
    think_scale: float = 1.0  # multiplies every think time (1.0: median ~1.5 s to hold, ~2.5 s to pay)

    def person(self, seed: int, index: int, user_id: str) -> Person:
        rng = np.random.default_rng([seed, index])
        q = int(rng.choice(6, p=QUANTITY_WEIGHTS)) + 1
        hold = float(rng.lognormal(np.log(1.5), 0.6)) * self.think_scale
        pay = float(rng.lognormal(np.log(2.5), 0.7)) * self.think_scale
        r = rng.random(3)
        return Person(q, hold, pay, bool(r[0] < self.abandon_p), bool(r[1] < self.decline_p),
                      bool(r[2] < self.retry_after_decline_p), f"tok_visa_{user_id}")


def expected_buyers(seats: int) -> int:
    """About how many buyers the seats make (mean quantity), to size the early HTTP sample."""
    mean_q = sum((i + 1) * w for i, w in enumerate(QUANTITY_WEIGHTS))
    return max(1, round(seats / mean_q))
