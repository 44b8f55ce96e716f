"""The payment provider seam. Payments are external; the built-in test provider stands in.

A provider charges idempotently by key and can say afterwards whether a key was charged, so an
owner that restarts mid-checkout can finish (charged) or roll back (not charged) the checkout.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol

from domain.errors import InvalidRequest, PaymentDeclined

ACCEPT = "tok_visa"
ACCEPT_2 = "tok_visa_2"  # a second card that pays
DECLINE = "tok_chargeDeclined"
# tok_visa_<name> is one more paying card per name (tok_visa_2 is one): a load test or demo of
# many people gives each their own card, as the seat cap per card expects.
_CARD = re.compile(r"^tok_visa(?:_([A-Za-z0-9-]{1,64}))?\Z")
_UNKNOWN = ("unknown payment_token (test provider takes tok_visa, tok_visa_<name>, e.g. "
            "tok_visa_2, or tok_chargeDeclined)")


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
    """The card's fingerprint: the same card always has the same one, whatever token names it
    (as a real provider's card.fingerprint)."""
    if payment_token == DECLINE:
        return "fp_declined"
    card = _CARD.match(payment_token)
    if card is None:
        raise InvalidRequest(_UNKNOWN)
    return "fp_visa" + (f"_{card.group(1)}" if card.group(1) else "")


def test_outcome(payment_token: str) -> ChargeOutcome:
    """The test provider's rule: tok_visa and tok_visa_<name> pay, tok_chargeDeclined is
    declined."""
    if _CARD.match(payment_token):
        return ChargeOutcome.CHARGED
    if payment_token == DECLINE:
        return ChargeOutcome.DECLINED
    raise InvalidRequest(_UNKNOWN)


def raise_for(outcome: ChargeOutcome) -> None:
    if outcome is ChargeOutcome.DECLINED:
        raise PaymentDeclined("the card was declined; the hold stays active")
