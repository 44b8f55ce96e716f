"""What a ticket holder is told: state, position and ETA, from a few numbers the room publishes.

Each ticket gets a fixed sequence number in its lane when the room persists it; the room
publishes each lane's head (the next number to admit) and its measured rate. A position is
then `seq - head + 1`, so every replica can refresh a million streams from one read of the
room's stats per tick, and a position can only go down. Presale holders have their own lane,
admitted first: they lengthen the ETA of the general lane, never its positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.waiting.eta import Eta, RateSample, eta_at
from domain.waiting.queue_order import QueueTier
from domain.waiting.tickets import TicketState

NO_RATE = RateSample(0.0, 0.0)
UNKNOWN_ETA = Eta(None, None, None)


@dataclass(frozen=True)
class RoomStats:
    head: int = 0
    presale_head: int = 0
    presale_tail: int = 0
    tail: int = 0
    lottery_done: bool = False
    sold_out: bool = False
    rate: RateSample = NO_RATE


@dataclass(frozen=True)
class Place:
    """Where a persisted ticket waits: its lane and number (pre-queue has no number yet)."""

    lane: QueueTier
    seq: int = -1


@dataclass(frozen=True)
class Admission:
    admitted_at_ms: int
    expires_at_ms: int
    user_id: str
    held: bool = False


@dataclass(frozen=True)
class TicketView:
    state: TicketState
    position: int | None = None
    eta: Eta = UNKNOWN_ETA
    admission: Admission | None = None


def view(place: Place | None, admission: Admission | None, stats: RoomStats,
         onsale_at_ms: int, now_ms: int) -> TicketView:
    if admission is not None:
        if not admission.held and admission.expires_at_ms <= now_ms:
            return TicketView(TicketState.EXPIRED)
        return TicketView(TicketState.ADMITTED, 0, Eta(0.0, 0.0, 0.0), admission)
    if place is None or place.lane is QueueTier.PREQUEUE:
        before = now_ms < onsale_at_ms or (place is not None and not stats.lottery_done)
        return TicketView(TicketState.PRE_QUEUE if before else TicketState.WAITING)
    if stats.sold_out:
        return TicketView(TicketState.SOLD_OUT, position_of(place, stats))
    position = position_of(place, stats)
    ahead = 0 if place.lane is QueueTier.PRESALE else stats.presale_tail - stats.presale_head
    return TicketView(TicketState.WAITING, position, eta_at(position + ahead, stats.rate))


def position_of(place: Place, stats: RoomStats) -> int:
    head = stats.presale_head if place.lane is QueueTier.PRESALE else stats.head
    return max(1, place.seq - head + 1)
