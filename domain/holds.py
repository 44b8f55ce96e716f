"""A hold: seats and a price locked for one user until an expiry, and its life cycle.

A hold is data with an expiry, never a sleeping timer: the owner sweeps holds whose
`expires_at` has passed. One function per transition; each refuses what is not allowed from
the current status, so the rules live here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from domain.errors import (
    CheckoutInProgress,
    Forbidden,
    HoldAlreadyConfirmed,
    HoldExpired,
    HoldNotActive,
)


class HoldStatus(StrEnum):
    ACTIVE = "active"
    CONFIRMING = "confirming"  # payment and ledger write under way; never swept
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Hold:
    hold_id: str
    event_id: str
    user_id: str
    section: str
    seat_ids: tuple[str, ...]
    total_cents: int
    expires_at: float  # epoch seconds, whole milliseconds (see expiry_of)
    status: HoldStatus = HoldStatus.ACTIVE
    idempotency_key: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Hold:
        data = json.loads(raw)
        data["seat_ids"] = tuple(data["seat_ids"])
        data["status"] = HoldStatus(data["status"])
        return cls(**data)

    def visible_status(self, now: float) -> HoldStatus:
        """What a client sees: an active hold past its expiry is expired, swept or not."""
        if self.status is HoldStatus.ACTIVE and self.expires_at <= now:
            return HoldStatus.EXPIRED
        return self.status


def expiry_of(now: float, ttl_s: float) -> float:
    """When a hold made at `now` expires, to the millisecond: the stored record keeps whole
    milliseconds, so a hold reloaded after a crash expires exactly when the planned one did."""
    return round(now + ttl_s, 3)


def check_owner(hold: Hold, user_id: str) -> None:
    if hold.user_id != user_id:
        raise Forbidden("this hold belongs to another user")


def begin_checkout(hold: Hold, idempotency_key: str, now: float) -> Hold:
    """active -> confirming, remembering the key that owns this checkout."""
    if hold.status is HoldStatus.CONFIRMED:
        raise HoldAlreadyConfirmed("this hold is already confirmed under another key")
    if hold.status is HoldStatus.CONFIRMING:
        raise CheckoutInProgress("a checkout of this hold is under way")
    if hold.visible_status(now) is HoldStatus.EXPIRED:
        raise HoldExpired("the hold expired; its seats were released")
    if hold.status is not HoldStatus.ACTIVE:
        raise HoldNotActive(f"the hold is {hold.status}")
    return replace(hold, status=HoldStatus.CONFIRMING, idempotency_key=idempotency_key)


def resume_paid_checkout(hold: Hold) -> Hold:
    """active -> confirming for a hold whose payment went through although its checkout was
    set back (its owner was replaced mid-checkout): it is finished whatever the clock says."""
    _require(hold, HoldStatus.ACTIVE)
    return replace(hold, status=HoldStatus.CONFIRMING)


def is_replay(hold: Hold, idempotency_key: str) -> bool:
    """A repeated checkout with the key that confirmed this hold returns the same booking."""
    return (hold.status is HoldStatus.CONFIRMED and bool(idempotency_key)
            and hold.idempotency_key == idempotency_key)


def abort_checkout(hold: Hold) -> Hold:
    """confirming -> active: payment declined, the hold keeps its seats and expiry."""
    _require(hold, HoldStatus.CONFIRMING)
    return replace(hold, status=HoldStatus.ACTIVE)


def confirm(hold: Hold) -> Hold:
    """confirming -> confirmed, only after the booking is in the ledger."""
    _require(hold, HoldStatus.CONFIRMING)
    return replace(hold, status=HoldStatus.CONFIRMED)


def release(hold: Hold, now: float) -> Hold:
    """active -> released, by its holder."""
    if hold.visible_status(now) is HoldStatus.EXPIRED:
        raise HoldExpired("the hold already expired")
    _require(hold, HoldStatus.ACTIVE)
    return replace(hold, status=HoldStatus.RELEASED)


def expire(hold: Hold, now: float) -> Hold:
    """active -> expired, by the owner's sweep once `expires_at` has passed."""
    _require(hold, HoldStatus.ACTIVE)
    if hold.expires_at > now:
        raise HoldNotActive("the hold has not expired yet")
    return replace(hold, status=HoldStatus.EXPIRED)


def _require(hold: Hold, status: HoldStatus) -> None:
    if hold.status is not status:
        raise HoldNotActive(f"the hold is {hold.status}, not {status}")
