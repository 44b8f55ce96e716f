"""Reads served straight from the Redis cache by any replica, never recomputed by an owner.

Nothing here decides a hold: the hold path always goes to the owning actor.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from domain.errors import NotFound, TicketingError, Unavailable
from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef
from domain.inventory import SeatStatus
from domain.venue import Block
from store import keys
from store.codec import text
from store.records import decode_hold


async def save_event(redis: Redis, event: Event, now: float, availability: bool = True) -> bool:
    """Store a new event and its per-block availability; False if it already exists. An
    event restored from the events log has sold seats: `availability=False` leaves each
    block's count unknown until that block recounts (the room admits nobody meanwhile)."""
    if not await redis.set(keys.event(event.event_id), event.to_json(), nx=True):
        return False
    await redis.zadd(keys.events_index(), {event.event_id: now})
    if availability:
        await redis.hset(keys.available(event.event_id), mapping={
            str(b.index): b.seats_total for b in event.venue.blocks})
    return True


async def store_event(redis: Redis, event: Event) -> None:
    """Overwrite a changed event (prices, admission rate): only its owner calls this."""
    await redis.set(keys.event(event.event_id), event.to_json())


async def load_event(redis: Redis, event_id: str) -> Event | None:
    raw = await redis.get(keys.event(event_id))
    return Event.from_json(raw) if raw is not None else None


async def missing_event(redis: Redis, event_id: str) -> TicketingError:
    """What a read that found no event answers: 404 once this Redis holds the whole events
    log; before that (a new, emptied or restarted Redis a host has not restored yet) the
    event may well exist, so the client is told to retry (503), never that it is gone. The
    mark is read first, then the event again, in that order: a mark valid by then means every
    event of the log was back, and an event back by then (restored since the read, or a read
    replica behind) is a retry too."""
    pipe = redis.pipeline(transaction=False)  # one round trip; Redis runs them in order
    pipe.get(keys.catalog_restored())
    pipe.info("server")
    pipe.exists(keys.event(event_id))
    mark, server, exists = await pipe.execute()
    if _marks_this_server(mark, server) and not exists:
        return NotFound(f"no such event: {event_id[:40]}")
    return Unavailable("events are being restored; retry")


async def holds_every_event(redis: Redis) -> bool:
    """Whether a host has put every event of the events log into this very server: the mark
    (`keys.catalog_restored`) names its run_id. A server that restarted keeps an old mark on
    its AOF but may have lost the newest events with its last second of writes; a promoted
    replica may lack the old primary's last writes: neither is known to hold them all."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.catalog_restored())
    pipe.info("server")
    mark, server = await pipe.execute()
    return _marks_this_server(mark, server)


async def server_run_id(redis: Redis) -> str:
    return str((await redis.info("server"))["run_id"])


async def mark_holding_every_event(redis: Redis, run_id: str) -> None:
    """`run_id` is read before the events are put back: a server that restarted meanwhile
    is left unmarked (another run_id)."""
    await redis.set(keys.catalog_restored(), run_id)


def _marks_this_server(mark: bytes | None, server: dict[str, Any]) -> bool:
    return mark is not None and mark.decode() == str(server.get("run_id"))


async def event_details(redis: Redis, event_id: str) -> tuple[Event | None, dict[int, int]]:
    """The event (prices included) and its seats available per block, in one round trip."""
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.event(event_id))
    pipe.hgetall(keys.available(event_id))
    raw, free = await pipe.execute()
    event = Event.from_json(raw) if raw is not None else None
    return event, {int(block): int(count) for block, count in free.items()}


async def event_and_seat_version(redis: Redis, event_id: str) -> tuple[Event | None, int]:
    """The event (today's prices) and the seat version its read source is at."""
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.event(event_id))
    pipe.get(keys.seat_version(event_id))
    raw, version = await pipe.execute()
    return (Event.from_json(raw) if raw is not None else None), int(version or 0)


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
        statuses.update(block_statuses(block, bitmaps[2 * i] or b"", bitmaps[2 * i + 1] or b""))
    return statuses


def block_statuses(block: Block, held: bytes, sold: bytes) -> dict[str, SeatStatus]:
    """One block's seat statuses from its owner's held and sold bitmaps (sold wins)."""
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


async def open_events(redis: Redis, limit: int) -> list[tuple[Event, dict[int, int]]]:
    """Up to `limit` events not closed, newest first, each with its seats available per
    block: two round trips whatever the count."""
    ids = [text(e) for e in await redis.zrevrange(keys.open_events(), 0, limit - 1)]
    if not ids:
        return []
    pipe = redis.pipeline(transaction=False)
    for event_id in ids:
        pipe.get(keys.event(event_id))
        pipe.hgetall(keys.available(event_id))
    got = await pipe.execute()
    return [(Event.from_json(raw), {int(b): int(n) for b, n in free.items()})
            for raw, free in zip(got[::2], got[1::2], strict=True) if raw is not None]


async def seat_counts(redis: Redis, event: Event) -> tuple[int, int]:
    """Seats held and sold over the whole event: a BITCOUNT of each block's two bitmaps, in
    one round trip (the operator console, once a second)."""
    pipe = redis.pipeline(transaction=False)
    for b in event.venue.blocks:
        pipe.bitcount(keys.block_held(event.event_id, b.index))
        pipe.bitcount(keys.block_sold(event.event_id, b.index))
    counts = await pipe.execute()
    return sum(counts[0::2]), sum(counts[1::2])


async def bookings_count(redis: Redis, event_id: str) -> int:
    return int(await redis.hlen(keys.bookings(event_id)))


async def revenue_cents(redis: Redis, event_id: str) -> int:
    """What the event's confirmed bookings were paid, in cents (every booking record read:
    callers read it again only when `bookings_count` changed)."""
    return sum(int(json.loads(raw)["total_cents"])
               for raw in await redis.hvals(keys.bookings(event_id)))
