"""The payment provider seam. Payments are external; the built-in test provider stands in.

A provider charges idempotently by key and can say afterwards whether a key was charged, so an
owner that restarts mid-checkout can finish (charged) or roll back (not charged) the checkout.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from domain.errors import InvalidRequest, PaymentDeclined

ACCEPT = "tok_visa"
ACCEPT_2 = "tok_visa_2"  # a second card that pays
DECLINE = "tok_chargeDeclined"
# What the test provider reports as each token's card fingerprint: the same card always has the
# same fingerprint, whichever token names it (as a real provider's card.fingerprint).
FINGERPRINTS = {ACCEPT: "fp_visa_4242", ACCEPT_2: "fp_visa_1881", DECLINE: "fp_visa_0002"}


class ChargeOutcome(StrEnum):
    CHARGED = "charged"
    DECLINED = "declined"


class PaymentProvider(Protocol):
    async def charge(self, key: str, payment_token: str, amount_cents: int) -> None:
        """Charge once per key; raises PaymentDeclined."""

    async def was_charged(self, key: str) -> bool:
        """Whether a charge under `key` went through."""

    async def fingerprint(self, payment_token: str) -> str:
        """The card's fingerprint: one per card, whatever token names it."""


def test_fingerprint(payment_token: str) -> str:
    if payment_token not in FINGERPRINTS:
        raise InvalidRequest("unknown payment_token (test provider takes tok_visa, tok_visa_2 "
                             "or tok_chargeDeclined)")
    return FINGERPRINTS[payment_token]


def test_outcome(payment_token: str) -> ChargeOutcome:
    """The test provider's rule: tok_visa and tok_visa_2 pay, tok_chargeDeclined is declined."""
    if payment_token in (ACCEPT, ACCEPT_2):
        return ChargeOutcome.CHARGED
    if payment_token == DECLINE:
        return ChargeOutcome.DECLINED
    raise InvalidRequest("unknown payment_token (test provider takes tok_visa, tok_visa_2 or "
                         "tok_chargeDeclined)")


def raise_for(outcome: ChargeOutcome) -> None:
    if outcome is ChargeOutcome.DECLINED:
        raise PaymentDeclined("the card was declined; the hold stays active")
