"""Every Redis key the platform uses is built here, and only here.

All keys of one event share the hash tag `{<event_id>}`, so a Lua script touching an event's
seats, holds and user counters stays in one slot on a Redis Cluster too.
"""

from __future__ import annotations

PREFIX = "tk"


def event(event_id: str) -> str:
    """The event definition (JSON): the cache every replica reads details and prices from."""
    return f"{PREFIX}:{{{event_id}}}:event"


def events_index() -> str:
    """Sorted set of event ids by creation time."""
    return f"{PREFIX}:events"


def available(event_id: str) -> str:
    """Hash: block index -> seats available in that block, kept by the block's owner."""
    return f"{PREFIX}:{{{event_id}}}:avail"


def user_seats(event_id: str) -> str:
    """Hash: user id -> seats the user holds plus has bought (the per-user cap)."""
    return f"{PREFIX}:{{{event_id}}}:users"


def bookings(event_id: str) -> str:
    """Hash: booking token -> confirmed booking (JSON), written after the ledger has it."""
    return f"{PREFIX}:{{{event_id}}}:bookings"


def _block(event_id: str, block: int, name: str) -> str:
    return f"{PREFIX}:{{{event_id}}}:b{block}:{name}"


def block_epoch(event_id: str, block: int) -> str:
    """Fencing counter: each incarnation of the block's actor takes the next value."""
    return _block(event_id, block, "epoch")


def block_held(event_id: str, block: int) -> str:
    """Bitmap over the block's seat indices: 1 = held by a live hold."""
    return _block(event_id, block, "held")


def block_sold(event_id: str, block: int) -> str:
    """Bitmap over the block's seat indices: 1 = sold."""
    return _block(event_id, block, "sold")


def block_holds(event_id: str, block: int) -> str:
    """Hash: hold token -> compact hold record (see store.records)."""
    return _block(event_id, block, "holds")


def block_expiry(event_id: str, block: int) -> str:
    """Sorted set: hold token scored by expiry (epoch s); swept by score <= now."""
    return _block(event_id, block, "exp")


def block_script_keys(event_id: str, block: int) -> list[str]:
    """KEYS of every block script, in the order their headers document."""
    return [block_epoch(event_id, block), block_held(event_id, block),
            block_sold(event_id, block), block_holds(event_id, block),
            block_expiry(event_id, block), available(event_id), user_seats(event_id),
            bookings(event_id)]


def queue_users(event_id: str) -> str:
    """Hash: user id -> ticket id (one place per user per event)."""
    return f"{PREFIX}:{{{event_id}}}:q:users"


def queue_tickets(event_id: str) -> str:
    """Hash: ticket id -> ticket record (JSON)."""
    return f"{PREFIX}:{{{event_id}}}:q:tickets"


def payment(key: str) -> str:
    """The built-in test payment provider's record of one charge key."""
    return f"{PREFIX}:pay:{key}"
