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
from collections.abc import Iterable, Mapping
from enum import StrEnum


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


class Ping(StrEnum):
    """How a host answered host 0's ping."""

    ANSWERED = "answered"
    SILENT = "silent"  # no answer in time: busy, restarting, or on a node that is gone
    GONE = "gone"  # its actor is dead for good (stopped): no answer will ever come


def members_after_ping(me: int, current: Iterable[int], pings: Mapping[int, Ping],
                       silent_since: Mapping[int, float], now: float,
                       leave_after_s: float) -> tuple[set[int], dict[int, float]]:
    """The members after a round of pings, and since when each silent host has been silent.

    A host that answers is a member (it may have just come up); a gone one is not. A member
    that is only silent stays one until it has been silent for `leave_after_s`: a host whose
    event loop is busy under load answers late, and dropping it would move every entity it
    hosts onto the others, just as busy, and back when it answers. One late ping must not do
    that (the 1,000,000-user on-sale flapped its blocks between two hosts every ~12 s).
    """
    silent = {i: silent_since.get(i, now) for i, ping in pings.items() if ping is Ping.SILENT}
    live = {me} | {i for i, ping in pings.items() if ping is Ping.ANSWERED}
    live |= {i for i in set(current) & silent.keys() if now - silent[i] < leave_after_s}
    return live, silent


def members_before_ping(stored: Iterable[int], published: Iterable[int], wanted: int,
                        recovering: bool) -> tuple[set[int], int]:
    """The members a round of pings starts from, and the pool size it wants, when Redis may
    have lost them: an empty Redis has no members (then the ones host 0 last published) and,
    until its events are back, counts no open events (then the pool is not shrunk, nor while
    a Redis restart is being recovered). Otherwise a member busy recovering that answered late
    would leave, its entities moving to the others and back."""
    stored = set(stored)
    current = stored or set(published)
    if recovering or not stored:
        wanted = max([wanted, *(i + 1 for i in current)])
    return current, wanted


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
