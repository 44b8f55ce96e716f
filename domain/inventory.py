"""The seats of one block and who has them: the rules that keep a seat from being sold twice.

`BlockInventory` is the owner's in-memory picture. The owning actor plans a batch of holds on
it, asks Redis to apply the batch atomically (fenced by the actor's epoch), then keeps or undoes
each plan by Redis's answer: plan, lock, recheck, apply.

Seats are block indices (row-major, as in the Redis bitmaps), so planning never parses or
builds a seat-id string: the block maps ids to indices and back once. The inventory also keeps
the live holds' expiries in a min-heap, because the owner, not Redis, decides which holds are
due for its sweep.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidRequest, SeatsUnavailable
from domain.holds import Hold, HoldStatus, expiry_of
from domain.venue import Block, parse_seat_id


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
        width, rows = block.seats_per_row, block.last_row - block.first_row + 1
        self._width = width
        self._owner: list[str | None] = [None] * block.seats_total  # index -> live/confirmed hold
        self._free = [bytearray(b"\x01") * width for _ in range(rows)]  # per row: 1 = free
        self._row_free = [width] * rows
        self._front = 0  # every row before this one is full
        self._taken = 0
        self._seats: dict[str, list[int]] = {}  # hold_id -> its seat indices
        # (expires_at, hold_id) of active holds; entries of changed or ended holds are skipped
        # when they surface, and the heap is rebuilt when they outnumber the live ones.
        self._expiry: list[tuple[float, str]] = []

    # -- reading -------------------------------------------------------------------------
    @property
    def seats_available(self) -> int:
        return self.block.seats_total - self._taken

    def status_of(self, seat: str) -> SeatStatus:
        index = self.block.index_of(seat)
        hold_id = self._owner[index] if index is not None else None
        if hold_id is None:
            return SeatStatus.AVAILABLE
        sold = self.holds[hold_id].status is HoldStatus.CONFIRMED
        return SeatStatus.SOLD if sold else SeatStatus.HELD

    def seat_indices(self, hold_id: str) -> list[int]:
        """The block indices of a known hold's seats (its bits in the Redis bitmaps)."""
        return self._seats[hold_id]

    def expired_holds(self, now: float, limit: int | None = None) -> list[Hold]:
        """Active holds whose expiry has passed, soonest first: what the sweep must free. Only
        the due end of the heap is visited, so a sweep costs the due holds, not the live ones."""
        due: dict[str, Hold] = {}
        heap = self._expiry
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            expires_at, hold_id = heapq.heappop(heap)
            hold = self.holds.get(hold_id)
            if (hold is not None and hold.status is HoldStatus.ACTIVE
                    and hold.expires_at == expires_at):
                due[hold_id] = hold
        for hold in due.values():  # still live until the owner forgets them
            heapq.heappush(heap, (hold.expires_at, hold.hold_id))
        return list(due.values())

    def next_expiry(self) -> float | None:
        """When the soonest active hold expires (None: no active hold): the block's reminder,
        so a passivated block is woken to expire it on time."""
        heap = self._expiry
        while heap:
            expires_at, hold_id = heap[0]
            hold = self.holds.get(hold_id)
            if (hold is not None and hold.status is HoldStatus.ACTIVE
                    and hold.expires_at == expires_at):
                return expires_at
            heapq.heappop(heap)
        return None

    # -- planning ------------------------------------------------------------------------
    def plan(self, request: HoldRequest, hold_id: str, event_id: str,
             now: float, ttl_s: float) -> Hold:
        """A hold for `request` at today's price, taking its seats; raises if it cannot."""
        if request.seat_ids:
            indices = self._check_explicit(request.seat_ids)
            seats = request.seat_ids
        else:
            indices = self._best_seats(request.quantity)
            ids = self.block.ids
            seats = tuple(ids[i] for i in indices)
        hold = Hold(hold_id=hold_id, event_id=event_id, user_id=request.user_id,
                    section=self.block.section, seat_ids=seats,
                    total_cents=self.price_cents * len(seats), expires_at=expiry_of(now, ttl_s))
        self._add(hold, indices)
        return hold

    def _check_explicit(self, seat_ids: tuple[str, ...]) -> list[int]:
        if len(set(seat_ids)) != len(seat_ids):
            raise InvalidRequest("seat_ids contains duplicates")
        indices = self._indices_of(seat_ids)
        owner = self._owner
        taken = [s for s, i in zip(seat_ids, indices, strict=True) if owner[i] is not None]
        if taken:
            raise SeatsUnavailable(f"not available: {', '.join(taken[:10])}")
        return indices

    def _indices_of(self, seat_ids: Sequence[str]) -> list[int]:
        index_of = self.block.index_of
        indices = []
        for seat in seat_ids:
            index = index_of(seat)
            if index is None:
                parse_seat_id(seat)  # a malformed id is refused as malformed
                raise InvalidRequest(f"seat {seat} is not in this block")
            indices.append(index)
        return indices

    def _best_seats(self, quantity: int) -> list[int]:
        """Adjacent seats in the frontmost row that has them, nearest the centre; else the
        frontmost free seats wherever they are."""
        if quantity > self.seats_available:
            raise SeatsUnavailable(f"fewer than {quantity} seats left in section")
        width, run = self._width, b"\x01" * quantity
        row_free, free = self._row_free, self._free
        for row in range(self._front, len(free)):
            if row_free[row] >= quantity:
                start = _centred_start(free[row], run, width)
                if start >= 0:
                    first = row * width + start
                    return list(range(first, first + quantity))
        return self._scattered(quantity)

    def _scattered(self, quantity: int) -> list[int]:
        picked: list[int] = []
        for row in range(self._front, len(self._free)):
            flags, base = self._free[row], row * self._width
            seat = flags.find(1)
            while seat >= 0 and len(picked) < quantity:
                picked.append(base + seat)
                seat = flags.find(1, seat + 1)
            if len(picked) == quantity:
                break
        return picked

    # -- applying ------------------------------------------------------------------------
    def put(self, hold: Hold) -> None:
        """Record `hold` (new, changed or recovered); a terminal hold gives its seats back."""
        if hold.status in (HoldStatus.RELEASED, HoldStatus.EXPIRED):
            self.forget(hold.hold_id)
            return
        old = self.holds.get(hold.hold_id)
        if old is None:
            self._add(hold, self._indices_of(hold.seat_ids))
            return
        self.holds[hold.hold_id] = hold
        if hold.status is HoldStatus.ACTIVE and (old.status is not HoldStatus.ACTIVE
                                                 or old.expires_at != hold.expires_at):
            self._push_expiry(hold)

    def _add(self, hold: Hold, indices: list[int]) -> None:
        owner, hold_id = self._owner, hold.hold_id
        for i in indices:
            if owner[i] is not None and owner[i] != hold_id:
                raise SeatsUnavailable(f"seat {self.block.ids[i]} already has an owner")
        width, free, row_free = self._width, self._free, self._row_free
        for i in indices:
            if owner[i] is None:
                owner[i] = hold_id
                row, seat = divmod(i, width)
                free[row][seat] = 0
                row_free[row] -= 1
                self._taken += 1
        while self._front < len(row_free) and row_free[self._front] == 0:
            self._front += 1
        self.holds[hold_id] = hold
        self._seats[hold_id] = indices
        if hold.status is HoldStatus.ACTIVE:
            self._push_expiry(hold)

    def _push_expiry(self, hold: Hold) -> None:
        heap = self._expiry
        if len(heap) > 2 * len(self.holds) + 1024:  # mostly entries of ended holds: rebuild
            heap[:] = [(h.expires_at, h.hold_id) for h in self.holds.values()
                       if h.status is HoldStatus.ACTIVE and h.hold_id != hold.hold_id]
            heapq.heapify(heap)
        heapq.heappush(heap, (hold.expires_at, hold.hold_id))

    def forget(self, hold_id: str) -> None:
        """Undo a plan Redis refused, or drop a released or expired hold."""
        hold = self.holds.pop(hold_id, None)
        if hold is None:
            return
        owner, width = self._owner, self._width
        for i in self._seats.pop(hold_id):
            if owner[i] == hold_id:
                owner[i] = None
                row, seat = divmod(i, width)
                self._free[row][seat] = 1
                self._row_free[row] += 1
                self._taken -= 1
                self._front = min(self._front, row)

    def reprice(self, price_cents: int) -> None:
        """New holds pay the new price; existing holds keep the price they locked."""
        self.price_cents = price_cents


def _centred_start(flags: bytearray, run: bytes, width: int) -> int:
    """Start of the free run of `len(run)` seats nearest the row's centre (the left one on a
    tie), or -1. The nearest run on each side of the centre is found by one C-level search
    outward from it, so a nearly full row costs no Python loop over its seats."""
    span = width - len(run)  # starts go 0..span; the centre start is span / 2
    left = flags.rfind(run, 0, span // 2 + len(run))  # the last start <= centre
    if left == span // 2 and span % 2 == 0:
        return left
    right = flags.find(run, (span + 1) // 2)  # the first start >= centre
    if left < 0 or right < 0:
        return max(left, right)
    return left if span - 2 * left <= 2 * right - span else right
