"""The payment provider seam. Payments are external; the built-in test provider stands in.

A provider charges idempotently by key and can say afterwards whether a key was charged, so an
owner that restarts mid-checkout can finish (charged) or roll back (not charged) the checkout.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from domain.errors import InvalidRequest, PaymentDeclined

ACCEPT = "tok_visa"
DECLINE = "tok_chargeDeclined"


class ChargeOutcome(StrEnum):
    CHARGED = "charged"
    DECLINED = "declined"


class PaymentProvider(Protocol):
    async def charge(self, key: str, payment_token: str, amount_cents: int) -> None:
        """Charge once per key; raises PaymentDeclined."""

    async def was_charged(self, key: str) -> bool:
        """Whether a charge under `key` went through."""


def test_outcome(payment_token: str) -> ChargeOutcome:
    """The test provider's rule: tok_visa pays, tok_chargeDeclined is declined."""
    if payment_token == ACCEPT:
        return ChargeOutcome.CHARGED
    if payment_token == DECLINE:
        return ChargeOutcome.DECLINED
    raise InvalidRequest("unknown payment_token (test provider takes tok_visa or tok_chargeDeclined)")


def raise_for(outcome: ChargeOutcome) -> None:
    if outcome is ChargeOutcome.DECLINED:
        raise PaymentDeclined("the card was declined; the hold stays active")
