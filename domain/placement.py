"""Which pool member hosts an entity, and how big the pool should be: pure functions.

Entities (seat blocks, waiting rooms, join ingest, event owners) are data plus a little
behaviour hosted by a bounded pool of long-lived host actors. An entity's host is found from
its id alone by rendezvous (highest-random-weight) hashing over the live members: every
router that sees the same members picks the same host, and a member joining or leaving moves
only the entities that member wins or held (about 1/n of them), never the rest. Ownership is
still decided by the store: a host that activates an entity bumps its epoch, so a router with
an older view of the members, or a slow old host, can never write for it again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable


def weight(entity_id: str, member: int) -> int:
    """The member's score for the entity: stable across processes, versions and restarts."""
    digest = hashlib.blake2b(f"{member}|{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(entity_id: str, members: Iterable[int]) -> int:
    """The member with the highest weight for the entity (ties, never seen, go to the lowest)."""
    best = max(members, key=lambda m: (weight(entity_id, m), -m), default=None)
    if best is None:
        raise LookupError("the host pool has no live member")
    return best


def pool_size(open_events: int, events_per_host: int, smallest: int, largest: int) -> int:
    """Hosts wanted for the open events: grows with the catalog, within the configured bounds."""
    return max(smallest, min(largest, math.ceil(open_events / max(1, events_per_host))))


def block_entity(event_id: str, block: int) -> str:
    return f"block:{event_id}:{block}"


def room_entity(event_id: str) -> str:
    return f"room:{event_id}"


def ingest_entity(event_id: str, index: int) -> str:
    return f"ingest:{event_id}:{index}"


def event_entity(event_id: str) -> str:
    return f"event:{event_id}"


def parse_entity(entity_id: str) -> tuple[str, str, int]:
    """(kind, event_id, index) of an entity id built above; ValueError for anything else."""
    kind, _, rest = entity_id.partition(":")
    if kind in ("block", "ingest"):
        event_id, _, index = rest.rpartition(":")
        if event_id and index.isdigit():
            return kind, event_id, int(index)
    elif kind in ("room", "event") and rest and ":" not in rest:
        return kind, rest, 0
    raise ValueError(f"not an entity id: {entity_id[:80]!r}")
