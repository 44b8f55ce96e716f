"""Compact Redis encodings of holds and bookings (a few dozen bytes per hold).

A hold record is `<status>|<json [user, [seat_index...], total_cents, expires_ms, key]>`:
the status stays readable to Lua without decoding, seats are bit positions of the block's
bitmaps, the expiry is whole epoch milliseconds (an integer, shorter than a float and exact for
Lua's `expires_ms <= now_ms`), and the hold id, event and section are implied by the key and
block. Nothing else is stored: every byte here is paid once per held seat's hold.
"""

from __future__ import annotations

import json
from typing import Any

from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef
from domain.venue import Block

# One encoder, made once: `json.dumps(..., separators=...)` builds a new one on every call.
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def encode_hold(hold: Hold, block: Block) -> str:
    body = [hold.user_id, [block.seat_index(s) for s in hold.seat_ids], hold.total_cents,
            epoch_ms(hold.expires_at), hold.idempotency_key]
    return f"{hold.status}|{compact_json(body)}"


def epoch_ms(seconds: float) -> int:
    """Epoch seconds as the whole milliseconds records and the sweep compare."""
    return round(seconds * 1000)


def decode_hold(record: str | bytes, ref: HoldRef, block: Block) -> Hold:
    text = record.decode() if isinstance(record, bytes) else record
    status, _, body = text.partition("|")
    user, seats, total, expires_ms, key = json.loads(body)
    return Hold(hold_id=ref.hold_id, event_id=ref.event_id, user_id=user, section=block.section,
                seat_ids=tuple(block.seat_at(i) for i in seats), total_cents=total,
                expires_at=expires_ms / 1000, status=HoldStatus(status), idempotency_key=key)


def booking_of(hold: Hold, ref: HoldRef, confirmed_at: float) -> dict[str, Any]:
    """The API's view of a confirmed booking (the ledger's, less the key: `ledger_record`)."""
    return {"booking_id": ref.booking_id, "hold_id": hold.hold_id, "event_id": hold.event_id,
            "block": ref.block, "user_id": hold.user_id, "seat_ids": list(hold.seat_ids),
            "total_cents": hold.total_cents, "status": "confirmed",
            "confirmed_at": round(confirmed_at, 3)}


def ledger_record(booking: dict[str, Any], hold: Hold) -> dict[str, Any]:
    """The booking as the ledger keeps it: with the Idempotency-Key that confirmed it, so a
    block replaying the ledger into a Redis that lost the hold answers the buyer's retry."""
    return booking | {"idempotency_key": hold.idempotency_key}


def booking_and_key(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A ledger record as the API's booking and its key ("" in records from before it)."""
    booking = dict(record)
    return booking, str(booking.pop("idempotency_key", ""))
