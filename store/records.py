"""Compact Redis encodings of holds and bookings (a few dozen bytes per hold).

A hold record is `<status>|<json [user, [seat_index...], total_cents, created, expires, key]>`:
the status stays readable to Lua without decoding, seats are bit positions of the block's
bitmaps, and the hold id, event and section are implied by the key and block.
"""

from __future__ import annotations

import json
from typing import Any

from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef
from domain.venue import Block


def encode_hold(hold: Hold, block: Block) -> str:
    body = [hold.user_id, [block.seat_index(s) for s in hold.seat_ids], hold.total_cents,
            round(hold.created_at, 3), round(hold.expires_at, 3), hold.idempotency_key]
    return f"{hold.status}|{json.dumps(body, separators=(',', ':'))}"


def decode_hold(record: str | bytes, ref: HoldRef, block: Block) -> Hold:
    text = record.decode() if isinstance(record, bytes) else record
    status, _, body = text.partition("|")
    user, seats, total, created, expires, key = json.loads(body)
    return Hold(hold_id=ref.hold_id, event_id=ref.event_id, user_id=user, section=block.section,
                seat_ids=tuple(block.seat_at(i) for i in seats), total_cents=total,
                created_at=created, expires_at=expires, status=HoldStatus(status),
                idempotency_key=key)


def booking_of(hold: Hold, ref: HoldRef, confirmed_at: float) -> dict[str, Any]:
    """The ledger's (and the API's) view of a confirmed booking."""
    return {"booking_id": ref.booking_id, "hold_id": hold.hold_id, "event_id": hold.event_id,
            "block": ref.block, "user_id": hold.user_id, "seat_ids": list(hold.seat_ids),
            "total_cents": hold.total_cents, "status": "confirmed",
            "confirmed_at": round(confirmed_at, 3)}
