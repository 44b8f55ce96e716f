"""The built-in test payment provider (payments are external; this is the only stand-in).

It keeps each charge key's outcome in Redis, so the answer survives a restart of whoever
asked and `was_charged` can settle a checkout interrupted by a crash.
"""

from __future__ import annotations

from redis.asyncio import Redis

from domain.errors import CardLimitExceeded
from domain.payments import ChargeOutcome, raise_for, test_fingerprint, test_outcome
from store import keys
from store.codec import text
from store.scripts import load_script

CHARGE_RECORD_TTL_S = 7 * 86400
CARD_CLAIM = load_script("card_claim.lua")


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

    async def fingerprint(self, payment_token: str) -> str:
        return test_fingerprint(payment_token)


class CardCaps:
    """Seats each payment instrument has paid for (or is paying for) in one event.

    The per-user cap is per account; a person with many accounts still has one card, so the
    cap holds per card too. A checkout claims its seats for the card (under its hold token, so
    a retry claims once) before the charge and gives them back if the charge fails.
    """

    def __init__(self, redis: Redis, event_id: str) -> None:
        self._keys = [keys.card_seats(event_id), keys.card_claims(event_id)]
        self._script = redis.register_script(CARD_CLAIM)

    async def claim(self, hold_token: str, fingerprint: str, seats: int, cap: int) -> None:
        if text(await self._script(self._keys, ["claim", hold_token, fingerprint, seats, cap])
                ) == "limit":
            raise CardLimitExceeded(f"this card has already paid for the limit of {cap} seats "
                                    "for this event")

    async def release(self, hold_token: str) -> None:
        await self._script(self._keys, ["release", hold_token, "", 0, 0])
