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


def card_seats(event_id: str) -> str:
    """Hash: card fingerprint -> seats paid for (or being paid for) with it (the card cap)."""
    return f"{PREFIX}:{{{event_id}}}:cards"


def card_claims(event_id: str) -> str:
    """Hash: hold token -> "<fingerprint>|<seats>" a checkout claimed for its card."""
    return f"{PREFIX}:{{{event_id}}}:cardclaims"


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


def block_script_keys(event_id: str, block: int) -> list[str]:
    """KEYS of every block script, in the order their headers document."""
    return [block_epoch(event_id, block), block_held(event_id, block),
            block_sold(event_id, block), block_holds(event_id, block),
            available(event_id), user_seats(event_id), bookings(event_id),
            seat_version(event_id), seat_changes(event_id)]


# -- waiting room (issue 3) ------------------------------------------------------------------


def _queue(event_id: str, name: str) -> str:
    return f"{PREFIX}:{{{event_id}}}:q:{name}"


def room(event_id: str) -> str:
    """Hash: the room's published numbers (lane heads and tails, rate, flags, log head)."""
    return _queue(event_id, "room")


def room_epoch(event_id: str) -> str:
    """Fencing counter of the waiting-room actor, like a block's."""
    return _queue(event_id, "epoch")


def queue_places(event_id: str) -> str:
    """Hash: ticket id -> place ("q" pre-queue, "p<n>" presale lane, "<n>" general lane)."""
    return _queue(event_id, "place")


def queue_line(event_id: str) -> str:
    """List: the general lane in sequence order, members `ticket|user|joined_at_ms`."""
    return _queue(event_id, "line")


def queue_presale(event_id: str) -> str:
    """List: the presale lane (valid presale codes), admitted before the general lane."""
    return _queue(event_id, "presale")


def queue_prequeue(event_id: str) -> str:
    """List: joins before on-sale, waiting for the lottery that orders them."""
    return _queue(event_id, "prequeue")


def queue_admitted(event_id: str) -> str:
    """Hash: ticket id -> admission record (JSON)."""
    return _queue(event_id, "admitted")


def queue_log(event_id: str) -> str:
    """List: the hash-chained admission log (JSON entries), in admission order."""
    return _queue(event_id, "log")


def lottery_seed(event_id: str) -> str:
    """The lottery seed (hex), secret until on-sale; its commitment is published."""
    return _queue(event_id, "seed")


def lottery_entrants(event_id: str) -> str:
    """List: the pre-queue ticket ids the lottery ordered, published for recomputation."""
    return _queue(event_id, "entrants")


def queue_offsets(event_id: str) -> str:
    """Hash: joins partition -> next offset to read, every join before it persisted here.
    Written by the room after each persist; an ingest lane starts at the lower of this and
    Kafka's committed offset, so joins whose Redis writes were lost (a Redis restart that lost
    its last writes, or an empty one) are read and placed again."""
    return _queue(event_id, "offsets")


def room_script_keys(event_id: str) -> list[str]:
    """KEYS of every waiting-room script, in the order their headers document."""
    return [room_epoch(event_id), room(event_id), queue_places(event_id),
            queue_admitted(event_id), queue_line(event_id), queue_presale(event_id),
            queue_prequeue(event_id), queue_log(event_id), lottery_entrants(event_id)]


def payment(key: str) -> str:
    """The built-in test payment provider's record of one charge key."""
    return f"{PREFIX}:pay:{key}"


# -- live availability and read replicas (issue 4) -------------------------------------------


def seat_version(event_id: str) -> str:
    """Counter: the event's seat-state version, bumped once by each block script that changes
    a seat (the `id` of the availability stream's events)."""
    return f"{PREFIX}:{{{event_id}}}:seatver"


def seat_changes(event_id: str) -> str:
    """Stream (capped): one entry per seat change, fields v (version), b (block), s (status)
    and i (comma-separated seat indices); what the availability streams fan out."""
    return f"{PREFIX}:{{{event_id}}}:seatlog"


# -- hosting many events on a pool of host actors (issue 9) ----------------------------------


def pool_members() -> str:
    """Set: indexes of the live host actors; entities are placed over it by rendezvous hashing
    (domain.placement). Written by the pool's manager (host 0)."""
    return f"{PREFIX}:pool:members"


def due_index() -> str:
    """Sorted set: entity id -> epoch ms when it must run without a request (a block's next
    hold expiry, a busy room's or ingest's heartbeat, an event's on-sale or closing time). The
    pool's hosts sweep it and activate what is due: the platform's reminders."""
    return f"{PREFIX}:due"


def open_events() -> str:
    """Sorted set: ids of events not closed, by creation time (what the pool is sized for)."""
    return f"{PREFIX}:events:open"


def catalog_restored() -> str:
    """String: the run_id of the Redis server that holds every event of the events log, set
    by the first host to restore them into it (store.catalog_log.restore_missing). A Redis
    without it (new, emptied) or with another server's run_id (restarted on an AOF that may
    have lost its last second, a promoted replica) may lack events that exist: an unknown
    event is then "retry", not 404 (store.catalog.holds_every_event)."""
    return f"{PREFIX}:events:restored"


def replica_heartbeat(router_id: str) -> str:
    """Epoch seconds last written to the primary by one read router (one Serve replica); read
    back through a replica to measure how stale the replica is. One key per router, so only
    that router's own writes can make a replica look fresh: a replica URL that mirrors another
    keyspace (another Redis, another db) never shows it and is never read from."""
    return f"{PREFIX}:replica:heartbeat:{router_id}"


def replication_barrier() -> str:
    """String written just before a WAIT (store.redis_clients.replicated): its replication
    offset is past every write completed before it, which is what the WAIT waits for."""
    return f"{PREFIX}:replication:barrier"


def rate_budget(tag: str, scope: str, party: str) -> str:
    """String: the GCRA arrival time (ms) of one party's budget for one kind of request, shared
    by every replica (store/lua/rate_limit.lua). `tag` is the event id (so an event's budgets
    share its slot) or "signin"; `party` is "a:<client address>" or "u:<user id>"."""
    return f"{PREFIX}:{{{tag}}}:rl:{scope}:{party}"
