"""What a Serve replica uses to reach the owners: cached handles, batched holds and checkouts,
typed errors.

Holds and checkouts are gathered per seat block (`actors.batching`, by size or time, both
limits in settings) and each batch is one call to its block, which then runs it as one batch:
an actor call costs ~1 ms of CPU on each side, more than the rest of a hold. A block's batches
are its own: a block that is slow to answer (busy, restarting, on a loaded host) holds up its
own holds and checkouts only, never another block's or another event's on the same replica.
A block has at most HOLD_BATCHES_IN_FLIGHT hold batches out (it works through them one at a
time; what comes meanwhile goes as the next, larger batch), and any number of checkout
batches (a payment can take a second). A closed event's batchers and handles are dropped
when the replica next reads it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ray.exceptions import RayActorError, RayError, RayTaskError
from redis.asyncio import Redis

from actors import directory
from actors.batching import Batcher
from domain.commands import HoldCommand
from domain.errors import EventClosed, SeatsUnavailable, TicketingError, Unavailable
from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef
from domain.inventory import HoldRequest
from domain.settings import Settings
from store import catalog

T = TypeVar("T")
R = TypeVar("R")
EVENT_CACHE_S = 2.0
BlockHold = tuple[str, HoldRequest]  # hold_id, request: SeatBlock.hold's items
# hold_id, user_id, idempotency_key, payment_token: SeatBlock.checkouts' items
BlockCheckout = tuple[str, str, str, str]
BlockKey = tuple[str, int]  # event_id, block


def blocks_with_room(blocks: list[int], free: dict[int, int], quantity: int) -> list[int]:
    """The blocks that may have `quantity` seats: those whose count says so, and those whose
    count Redis lacks (an event restored from the events log, before that block has
    recounted): unknown is not 0 seats, so the block itself is asked."""
    return [b for b in blocks if free.get(b, quantity) >= quantity]


class BookingClient:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self._events: dict[str, tuple[float, Event]] = {}
        self._handles: dict[tuple[str, str, int], Any] = {}  # (kind, event id, block)
        self._holds: dict[BlockKey, Batcher[BlockHold, Hold]] = {}
        self._checkouts: dict[BlockKey, Batcher[BlockCheckout, dict[str, Any]]] = {}
        # each method's batch limits (size, wait, batches in flight), from settings
        self._limits: dict[str, tuple[int, float, int | None]] = {
            "hold": (settings.hold_batch_max, settings.hold_batch_wait_s,
                     settings.hold_batches_in_flight),
            "checkouts": (settings.checkout_batch_max, settings.checkout_batch_wait_ms / 1000,
                          None)}

    async def event(self, event_id: str) -> Event:
        """The event from this replica's cache (read again after EVENT_CACHE_S, so a closed
        event is refused here soon after it closes), else from Redis."""
        cached = self._events.get(event_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        event = await catalog.load_event(self.redis, event_id)
        if event is None:
            raise await catalog.missing_event(self.redis, event_id)
        if event.closed:
            self._drop(event_id)
        self._events[event_id] = (time.monotonic() + EVENT_CACHE_S, event)
        return event

    def _drop(self, event_id: str) -> None:
        """A closed event's batchers and handles: a batch still out keeps its own batcher."""
        for table in (self._holds, self._checkouts):
            for key in [k for k in table if k[0] == event_id]:
                del table[key]
        for handle in [k for k in self._handles if k[1] == event_id]:
            del self._handles[handle]

    def forget(self, event_id: str) -> None:
        """Drop a cached event after its owner changed it."""
        self._events.pop(event_id, None)

    def owner(self, event: Event) -> Any:
        return self._handle(("event", event.event_id, 0),
                            lambda: directory.event_owner(self.settings, event))

    def block(self, event_id: str, block: int) -> Any:
        return self._handle(("block", event_id, block),
                            lambda: directory.seat_block(self.settings, event_id, block))

    def _handle(self, key: tuple[str, str, int], make: Any) -> Any:
        if key not in self._handles:
            self._handles[key] = make()
        return self._handles[key]

    async def call(self, ref: Awaitable[T]) -> T:
        """Await an actor call; its typed error is re-raised, a lost actor becomes 503."""
        try:
            return await asyncio.wait_for(ref, self.settings.actor_call_timeout_s)
        except RayTaskError as error:
            cause = error.cause
            raise cause if isinstance(cause, TicketingError) else Unavailable(
                "an owner failed") from error
        except (RayActorError, RayError, TimeoutError) as error:
            raise Unavailable("an owner did not answer; retry") from error

    # -- holds ---------------------------------------------------------------------------
    async def hold(self, event: Event, user_id: str, command: HoldCommand) -> Hold:
        """Hold on the one block of explicit seats, or on the best block of a section."""
        if event.closed:
            raise EventClosed("this event is closed")
        request = HoldRequest(user_id, command.seat_ids, command.quantity)
        if command.seat_ids:
            blocks = [event.venue.block_for_seats(list(command.seat_ids)).index]
        else:
            blocks = await self._candidate_blocks(event, command.section, command.quantity)
        error: TicketingError = SeatsUnavailable(f"fewer than {command.quantity} seats left")
        for block in blocks:
            hold_id = HoldRef(event.event_id, block, secrets.token_hex(8)).hold_id
            try:
                return await self._batcher(self._holds, (event.event_id, block), "hold").submit(
                    (hold_id, request))
            except SeatsUnavailable as unavailable:  # the section's next block may have them
                error = unavailable
        raise error

    async def _candidate_blocks(self, event: Event, section: str, quantity: int) -> list[int]:
        blocks = [b.index for b in event.venue.blocks_of(event.venue.section(section).name)]
        if len(blocks) == 1:
            return blocks
        return blocks_with_room(blocks, await catalog.availability(self.redis, event.event_id),
                                quantity)

    def _batcher(self, table: dict[BlockKey, Batcher[T, R]], key: BlockKey,
                 method: str) -> Batcher[T, R]:
        """The block's batcher of `method` (SeatBlock.hold or .checkouts): one call a batch."""
        batcher = table.get(key)
        if batcher is None:
            batcher = table[key] = Batcher(self._block_call(key, method), *self._limits[method])
        return batcher

    def _block_call(self, key: BlockKey, method: str,
                    ) -> Callable[[list[Any]], Awaitable[list[Any]]]:
        async def send(items: list[Any]) -> list[Any]:
            try:
                return await self.call(getattr(self.block(*key), method).remote(items))
            except TicketingError as error:  # the whole call failed: every item has its error
                return [error] * len(items)
        return send

    # -- checkouts -----------------------------------------------------------------------
    async def checkout(self, event_id: str, block: int, hold_id: str, user_id: str,
                       idempotency_key: str, payment_token: str) -> dict[str, Any]:
        """Pay for a hold; returns the booking once it is in the ledger (or raises its error)."""
        return await self._batcher(self._checkouts, (event_id, block), "checkouts").submit(
            (hold_id, user_id, idempotency_key, payment_token))
