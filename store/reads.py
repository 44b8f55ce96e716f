"""The catalog reads of the ingress, as one service: what the HTTP handlers call instead of
reaching into Redis themselves (api/). Reads a stale answer is fine for go through the
ReadRouter (a replica when fresh, with where they were served); the rest read the primary."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from domain.errors import TicketingError
from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef
from domain.venue import Block
from store import catalog
from store.replicas import ReadRouter, Source


class CatalogReads:
    def __init__(self, primary: Redis, router: ReadRouter) -> None:
        self.primary, self.router = primary, router

    async def event_details(self, event_id: str) -> tuple[tuple[Event | None, dict[int, int]],
                                                          Source]:
        """The event and its seats available per block, and where that was read."""
        return await self.router.read(lambda redis: catalog.event_details(redis, event_id))

    async def missing_event(self, event_id: str) -> TicketingError:
        """404, or 503 while the primary may still be restoring events (`catalog.missing_event`)."""
        return await catalog.missing_event(self.primary, event_id)

    async def open_events(self, limit: int) -> tuple[list[tuple[Event, dict[int, int]]], Source]:
        return await self.router.read(lambda redis: catalog.open_events(redis, limit))

    async def event_and_seat_version(self, event_id: str) -> tuple[tuple[Event | None, int],
                                                                   Source]:
        return await self.router.read(
            lambda redis: catalog.event_and_seat_version(redis, event_id))

    async def availability(self, event_id: str) -> dict[int, int]:
        """Seats available per block, from the primary (after a write of the event)."""
        return await catalog.availability(self.primary, event_id)

    async def hold(self, ref: HoldRef, block: Block) -> Hold | None:
        return await catalog.load_hold(self.primary, ref, block)

    async def booking(self, ref: HoldRef) -> dict[str, Any] | None:
        return await catalog.load_booking(self.primary, ref)
