"""The ordering key of a ticket in the queue, as a Redis sorted-set score.

Three tiers, admitted in order::

    tier 0  presale code holders, by joined_at_ms
    tier 1  pre-queue (joined before on-sale), by lottery rank
    tier 2  general, first come first served by NTP-corrected joined_at_ms

score = tier * 10^13 + value, with 0 <= value < 10^13. Why that is exact in a float64 (Redis
scores are doubles): every score is an integer below 3 * 10^13 < 2^53 ~ 9.007 * 10^15, and every
integer below 2^53 has an exact float64 representation, so no two distinct scores collapse and
comparisons are exact. 10^13 ms reaches the year 2286, so epoch milliseconds fit the value
range, as does any lottery rank. Scores are returned as Python ints; send them as such.

Ties within a score (two joins in the same millisecond) are broken by ticket_id outside the
score: Redis orders members with equal scores lexicographically, so with the ticket id as the
member the sorted set already applies the tie break.

A presale code holder who joins before on-sale is tier 0, not tier 1: the code outranks the
lottery.
"""

from __future__ import annotations

from enum import IntEnum

from domain.waiting.errors import InvalidParameter

TIER_WIDTH = 10**13


class QueueTier(IntEnum):
    PRESALE = 0
    PREQUEUE = 1
    GENERAL = 2


def _score(tier: QueueTier, value: int) -> int:
    if not 0 <= value < TIER_WIDTH:
        raise InvalidParameter(f"score value {value} outside [0, {TIER_WIDTH})")
    return int(tier) * TIER_WIDTH + value


def presale_score(joined_at_ms: int) -> int:
    """Presale code holders, first come first served among themselves."""
    return _score(QueueTier.PRESALE, joined_at_ms)


def prequeue_score(rank: int) -> int:
    """Pre-queue tickets, in lottery rank order (0 = first)."""
    return _score(QueueTier.PREQUEUE, rank)


def general_score(joined_at_ms: int) -> int:
    """Everyone who joined after on-sale, by corrected join time."""
    return _score(QueueTier.GENERAL, joined_at_ms)


def tier_of(score: int) -> QueueTier:
    """Which tier a score belongs to (for status and metrics)."""
    return QueueTier(score // TIER_WIDTH)


def is_prequeue(joined_at_ms: int, onsale_at_ms: int) -> bool:
    """Joined strictly before on-sale, by the corrected stamp alone: a join whose uncertainty
    straddles on-sale is classified by its best estimate, the same rule for everyone."""
    return joined_at_ms < onsale_at_ms
