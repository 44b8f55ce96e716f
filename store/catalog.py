"""Reads served straight from the Redis cache by any replica, never recomputed by an owner.

Nothing here decides a hold: the hold path always goes to the owning actor.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef
from domain.inventory import SeatStatus
from domain.venue import Block
from store import keys
from store.records import decode_hold


async def save_event(redis: Redis, event: Event, now: float) -> bool:
    """Store a new event and its per-block availability; False if it already exists."""
    if not await redis.set(keys.event(event.event_id), event.to_json(), nx=True):
        return False
    await redis.zadd(keys.events_index(), {event.event_id: now})
    await redis.hset(keys.available(event.event_id), mapping={
        str(b.index): b.seats_total for b in event.venue.blocks})
    return True


async def load_event(redis: Redis, event_id: str) -> Event | None:
    raw = await redis.get(keys.event(event_id))
    return Event.from_json(raw) if raw is not None else None


async def availability(redis: Redis, event_id: str) -> dict[int, int]:
    """Seats available per block, as each block's owner keeps them."""
    raw = await redis.hgetall(keys.available(event_id))
    return {int(block): int(count) for block, count in raw.items()}


async def seat_statuses(redis: Redis, event: Event) -> dict[str, SeatStatus]:
    """Every seat's status, from the owners' held and sold bitmaps (two GETs per block)."""
    pipe = redis.pipeline(transaction=False)
    blocks = event.venue.blocks
    for b in blocks:
        pipe.get(keys.block_held(event.event_id, b.index))
        pipe.get(keys.block_sold(event.event_id, b.index))
    bitmaps = await pipe.execute()
    statuses: dict[str, SeatStatus] = {}
    for i, block in enumerate(blocks):
        statuses.update(_block_statuses(block, bitmaps[2 * i] or b"", bitmaps[2 * i + 1] or b""))
    return statuses


def _block_statuses(block: Block, held: bytes, sold: bytes) -> dict[str, SeatStatus]:
    out = {}
    for index, seat in enumerate(block.seat_ids()):
        if _bit(sold, index):
            out[seat] = SeatStatus.SOLD
        elif _bit(held, index):
            out[seat] = SeatStatus.HELD
        else:
            out[seat] = SeatStatus.AVAILABLE
    return out


def _bit(bitmap: bytes, index: int) -> bool:
    byte = index >> 3
    return byte < len(bitmap) and bool(bitmap[byte] & (0x80 >> (index & 7)))


async def load_hold(redis: Redis, ref: HoldRef, block: Block) -> Hold | None:
    record = await redis.hget(keys.block_holds(ref.event_id, ref.block), ref.token)
    return decode_hold(record, ref, block) if record is not None else None


async def load_booking(redis: Redis, ref: HoldRef) -> dict[str, Any] | None:
    raw = await redis.hget(keys.bookings(ref.event_id), ref.token)
    return json.loads(raw) if raw is not None else None


async def event_ids(redis: Redis, limit: int) -> list[str]:
    return [e.decode() for e in await redis.zrevrange(keys.events_index(), 0, limit - 1)]
