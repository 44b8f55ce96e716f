"""The built-in test payment provider (payments are external; this is the only stand-in).

It keeps each charge key's outcome in Redis, so the answer survives a restart of whoever
asked and `was_charged` can settle a checkout interrupted by a crash.
"""

from __future__ import annotations

from redis.asyncio import Redis

from domain.payments import ChargeOutcome, raise_for, test_outcome
from store import keys
from store.codec import text

CHARGE_RECORD_TTL_S = 7 * 86400


class TestPaymentProvider:
    __test__ = False  # not a pytest class

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def charge(self, key: str, payment_token: str, amount_cents: int) -> None:
        """Declines are not remembered: the same key may pay with another card."""
        outcome = test_outcome(payment_token)
        raise_for(outcome)
        await self._redis.set(keys.payment(key), str(outcome), ex=CHARGE_RECORD_TTL_S)

    async def was_charged(self, key: str) -> bool:
        stored = await self._redis.get(keys.payment(key))
        return stored is not None and text(stored) == ChargeOutcome.CHARGED
