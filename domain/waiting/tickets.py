"""A ticket's states, and a join as it travels from the ingress through Kafka to the room.

The state a holder sees is derived from the room's data by `domain.waiting.status.view`:

    pre_queue  joined before on-sale, waiting for the lottery
    waiting    has a place in a lane (a position once persisted)
    admitted   may hold and buy until the admission expires
    sold_out   waiting while no seat is left; waits again when holds expire
    expired    admitted, never held, and the admission lapsed: the place was given back
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class TicketState(StrEnum):
    PRE_QUEUE = "pre_queue"
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    EXPIRED = "expired"


class Join(NamedTuple):
    """One join as produced to Kafka by the ingress and read back by the waiting room.

    `joined_at_ms` is the NTP-corrected ingress time; `uncertainty_ms` bounds its error
    (|joined_at_ms - true time| <= uncertainty_ms). `clock_synced` is False when no NTP server
    answered, in which case the ingress should report a large uncertainty. `partition` and
    `offset` locate the record in Kafka so offsets are committed only after persistence.

    A tuple whose first fields are the merge order `(joined_at_ms, ticket_id)`: the merge heap
    holds joins as they are, and a million of them cost a tuple each, not an object with a
    dict (the room handles every join of an on-sale, so its per-join cost is the ceiling).
    """

    joined_at_ms: int
    ticket_id: str
    event_id: str
    user_id: str
    uncertainty_ms: int
    clock_synced: bool
    priority_code: str | None
    partition: int
    offset: int
