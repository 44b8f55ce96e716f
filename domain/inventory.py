"""The seats of one block and who has them: the rules that keep a seat from being sold twice.

`BlockInventory` is the owner's in-memory picture. The owning actor plans a batch of holds on
it, asks Redis to apply the batch atomically (fenced by the actor's epoch), then keeps or undoes
each plan by Redis's answer: plan, lock, recheck, apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidRequest, SeatsUnavailable
from domain.holds import Hold, HoldStatus
from domain.venue import Block, parse_seat_id, seat_id


class SeatStatus(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


@dataclass(frozen=True)
class HoldRequest:
    """A user's ask: explicit seats, or `quantity` best seats of the block's section."""

    user_id: str
    seat_ids: tuple[str, ...] = ()
    quantity: int = 0


class BlockInventory:
    def __init__(self, block: Block, price_cents: int) -> None:
        self.block = block
        self.price_cents = price_cents
        self.holds: dict[str, Hold] = {}
        self._owner: dict[str, str] = {}  # seat -> hold_id of a live or confirmed hold
        self._row_free = {r: block.seats_per_row for r in range(block.first_row, block.last_row + 1)}

    # -- reading -------------------------------------------------------------------------
    @property
    def seats_available(self) -> int:
        return self.block.seats_total - len(self._owner)

    def status_of(self, seat: str) -> SeatStatus:
        hold_id = self._owner.get(seat)
        if hold_id is None:
            return SeatStatus.AVAILABLE
        sold = self.holds[hold_id].status is HoldStatus.CONFIRMED
        return SeatStatus.SOLD if sold else SeatStatus.HELD

    def expired_holds(self, now: float) -> list[Hold]:
        return [h for h in self.holds.values()
                if h.status is HoldStatus.ACTIVE and h.expires_at <= now]

    # -- planning ------------------------------------------------------------------------
    def plan(self, request: HoldRequest, hold_id: str, event_id: str,
             now: float, ttl_s: float) -> Hold:
        """A hold for `request` at today's price, taking its seats; raises if it cannot."""
        seats = (self._check_explicit(request.seat_ids) if request.seat_ids
                 else self._best_seats(request.quantity))
        hold = Hold(hold_id=hold_id, event_id=event_id, user_id=request.user_id,
                    section=self.block.section, seat_ids=seats,
                    total_cents=self.price_cents * len(seats), created_at=now,
                    expires_at=now + ttl_s)
        self.put(hold)
        return hold

    def _check_explicit(self, seat_ids: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(seat_ids)) != len(seat_ids):
            raise InvalidRequest("seat_ids contains duplicates")
        for seat in seat_ids:
            self._check_in_block(seat)
        taken = [s for s in seat_ids if s in self._owner]
        if taken:
            raise SeatsUnavailable(f"not available: {', '.join(taken[:10])}")
        return seat_ids

    def _check_in_block(self, seat: str) -> None:
        parsed = parse_seat_id(seat)
        b = self.block
        if not (parsed.section == b.section and b.first_row <= parsed.row <= b.last_row
                and 1 <= parsed.number <= b.seats_per_row):
            raise InvalidRequest(f"seat {seat} is not in this block")

    def _best_seats(self, quantity: int) -> tuple[str, ...]:
        """Adjacent seats in the frontmost row that has them, nearest the centre; else the
        frontmost free seats wherever they are."""
        if quantity > self.seats_available:
            raise SeatsUnavailable(f"fewer than {quantity} seats left in section")
        for row, free in self._row_free.items():
            if free >= quantity:
                run = self._centred_run(row, quantity)
                if run:
                    return run
        return self._scattered(quantity)

    def _centred_run(self, row: int, quantity: int) -> tuple[str, ...]:
        width = self.block.seats_per_row
        free = [seat_id(self.block.section, row, n) not in self._owner for n in range(1, width + 1)]
        centre = (width - quantity) / 2
        starts = [s for s in range(width - quantity + 1) if all(free[s:s + quantity])]
        if not starts:
            return ()
        best = min(starts, key=lambda s: (abs(s - centre), s))
        return tuple(seat_id(self.block.section, row, n + 1) for n in range(best, best + quantity))

    def _scattered(self, quantity: int) -> tuple[str, ...]:
        picked = [s for s in self.block.seat_ids() if s not in self._owner][:quantity]
        return tuple(picked)

    # -- applying ------------------------------------------------------------------------
    def put(self, hold: Hold) -> None:
        """Record `hold` (new, changed or recovered); a terminal hold gives its seats back."""
        old = self.holds.get(hold.hold_id)
        if hold.status in (HoldStatus.RELEASED, HoldStatus.EXPIRED):
            self.forget(hold.hold_id)
            return
        if old is None:
            for seat in hold.seat_ids:
                if self._owner.get(seat, hold.hold_id) != hold.hold_id:
                    raise SeatsUnavailable(f"seat {seat} already has an owner")
            for seat in hold.seat_ids:
                self._owner[seat] = hold.hold_id
                self._row_free[parse_seat_id(seat).row] -= 1
        self.holds[hold.hold_id] = hold

    def forget(self, hold_id: str) -> None:
        """Undo a plan Redis refused, or drop a released or expired hold."""
        hold = self.holds.pop(hold_id, None)
        if hold is None:
            return
        for seat in hold.seat_ids:
            if self._owner.get(seat) == hold_id:
                del self._owner[seat]
                self._row_free[parse_seat_id(seat).row] += 1

    def reprice(self, price_cents: int) -> None:
        """New holds pay the new price; existing holds keep the price they locked."""
        self.price_cents = price_cents
