"""Identifiers, and the routing they carry.

A hold id names its event and seat block (`hd.<event>.<block>.<random>`), so any replica can
find the owning actor and the Redis keys of a hold without a lookup. A booking id is derived
from its hold (one hold confirms at most once), which makes ledger writes idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from domain.errors import NotFound

_EVENT_ID = re.compile(r"^ev[0-9a-f]{12}\Z")
_TICKET_ID = re.compile(r"^tq[0-9a-f]{16}\Z")
# A whole hold or booking id in one match (the owner parses one per hold on its hot path): the
# event id, the block (ASCII digits only: str.isdigit() takes "²", which int() refuses) and a
# 16-hex-digit token.
_REF = {prefix: re.compile(rf"^{prefix}\.(ev[0-9a-f]{{12}})\.([0-9]{{1,6}})\.([0-9a-f]{{16}})\Z")
        for prefix in ("hd", "bk")}


def new_event_id() -> str:
    return "ev" + secrets.token_hex(6)


def ticket_id_for(secret: str, event_id: str, user_id: str) -> str:
    """A user's one ticket for an event, derived, not stored: a rejoin gets the same ticket
    without the join path writing anything but the join itself."""
    digest = hmac.new(secret.encode(), f"ticket:{event_id}:{user_id}".encode(), hashlib.sha256)
    return "tq" + digest.hexdigest()[:16]


def is_ticket_id(value: str) -> bool:
    return bool(_TICKET_ID.match(value))


def is_event_id(value: str) -> bool:
    return bool(_EVENT_ID.match(value))


@dataclass(frozen=True)
class HoldRef:
    event_id: str
    block: int
    token: str

    @property
    def hold_id(self) -> str:
        return f"hd.{self.event_id}.{self.block}.{self.token}"

    @property
    def booking_id(self) -> str:
        return f"bk.{self.event_id}.{self.block}.{self.token}"


def new_hold_ref(event_id: str, block: int) -> HoldRef:
    return HoldRef(event_id, block, secrets.token_hex(8))


def parse_hold_id(hold_id: str) -> HoldRef:
    return _parse("hd", hold_id, "hold")


def parse_booking_id(booking_id: str) -> HoldRef:
    return _parse("bk", booking_id, "booking")


def _parse(prefix: str, value: str, what: str) -> HoldRef:
    match = _REF[prefix].match(value) if isinstance(value, str) else None
    if match is None:
        raise NotFound(f"no such {what}: {str(value)[:80]!r}")
    event_id, block, token = match.groups()
    return HoldRef(event_id, int(block), token)
