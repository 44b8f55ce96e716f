"""The event entity: the one writer of an event's definition, prices and lifecycle.

Creating an event stores it (the cache every replica reads) and nothing else: its seat blocks,
waiting room and ingest are entities that activate on first use, so an event costs a few
Redis keys until somebody comes. Price and admission-rate changes go to the entities concerned.
Closing (by an admin, or by itself `EVENT_CLOSE_AFTER_S` after it ends, through the due index)
stops its entities on every host and drops their reminders; its bookings stay readable.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from actors import directory
from domain import placement
from domain.errors import EventClosed, NotFound
from domain.event import Event
from domain.settings import Settings
from store import catalog, catalog_log, keys
from store.queue import lottery_seed


class EventOwner:
    def __init__(self, settings: Settings, event_id: str, shared: Any) -> None:
        self._settings = settings
        self._event_id = event_id
        self._entity_id = placement.event_entity(event_id)
        self._redis = shared.redis
        self._shared = shared
        self._event: Event | None = None
        self.last_used = time.monotonic()
        self.taken_over = False  # fenced by a newer incarnation: its host drops it

    async def activate(self) -> None:
        self._event = await catalog.load_event(self._redis, self._event_id)

    async def deactivate(self) -> None:
        return None

    def can_passivate(self, now: float) -> bool:
        return True

    async def on_due(self) -> None:
        """Its reminder is its closing time. It is also due whenever a host hands it off (the
        new host activates what was handed off through the due index), so an event with no
        closing time, or one not reached yet, only sets its reminder again: never closes."""
        event = await self._current()
        due = event.close_due_at(self._settings.event_close_after_s)
        if event.closed or (due is not None and due <= time.time()):
            await self.close()
        else:
            await self._remind(event)

    async def _current(self) -> Event:
        if self._event is None:  # not created yet, or activated before a lost Redis got it back
            self._event = await catalog.load_event(self._redis, self._event_id)
        if self._event is None:
            raise await catalog.missing_event(self._redis, self._event_id)
        return self._event

    async def _open(self) -> Event:
        event = await self._current()
        if event.closed:
            raise EventClosed("this event is closed")
        return event

    async def create(self, event: Event) -> Event:
        """Store a new event (a retried create returns the stored one). It is answered only
        once the events log has it (with its seed): a Redis that loses it gets it back."""
        if event.event_id != self._event_id:
            raise NotFound("wrong event")
        if await catalog.save_event(self._redis, event, time.time()):
            await self._redis.zadd(keys.open_events(), {event.event_id: time.time()})
            self._event = event
        else:
            self._event = await catalog.load_event(self._redis, self._event_id) or event
        seed = await lottery_seed(self._redis, event.event_id, secrets.token_bytes)
        await self._log(self._event, seed)
        await self._remind(self._event)
        return self._event

    async def _log(self, event: Event, seed: bytes | None = None) -> None:
        """The events log first, then Redis (a change Redis has and the log lacks could be
        lost with Redis; the other way round, the next activation reads it back)."""
        if seed is None:
            seed = await lottery_seed(self._redis, event.event_id, secrets.token_bytes)
        await catalog_log.append(await self._shared.durable_log(self._settings.events_topic),
                                 self._settings, event, seed.hex())

    async def _remind(self, event: Event) -> None:
        """The due index holds its closing time, or nothing (so no sweep keeps waking it)."""
        due = event.close_due_at(self._settings.event_close_after_s)
        if due is not None and not event.closed:
            await self._redis.zadd(keys.due_index(), {self._entity_id: int(due * 1000)})
        else:
            await self._redis.zrem(keys.due_index(), self._entity_id)

    async def ping(self) -> str:
        return (await self._current()).event_id

    async def set_price(self, section: str, price_cents: int) -> Event:
        """Later holds pay the new price; every existing hold keeps the price it locked."""
        event = (await self._open()).with_price(section, price_cents)
        await self._log(event)
        self._event = event
        await catalog.store_event(self._redis, event)
        await asyncio.gather(*[
            directory.seat_block(self._settings, event.event_id, b.index).reprice.remote(
                price_cents) for b in event.venue.blocks_of(section)])
        return event

    async def set_admission_rate(self, rate_per_s: float) -> Event:
        event = (await self._open()).with_rate(rate_per_s)
        await self._log(event)
        self._event = event
        await catalog.store_event(self._redis, event)
        await directory.waiting_room(self._settings, event.event_id).set_rate.remote(rate_per_s)
        return event

    async def close(self) -> Event:
        """Closed for good: entities stopped everywhere, reminders dropped, bookings kept."""
        event = (await self._current()).close(time.time())
        await self._log(event)
        self._event = event
        await catalog.store_event(self._redis, event)
        await self._redis.zrem(keys.open_events(), event.event_id)
        s = self._settings
        entities = [placement.block_entity(event.event_id, b.index) for b in event.venue.blocks]
        entities += [placement.room_entity(event.event_id), self._entity_id]
        entities += [placement.ingest_entity(event.event_id, i) for i in range(s.ingest_actors)]
        await self._redis.zrem(keys.due_index(), *entities)
        await asyncio.gather(*[host.drop_event.remote(event.event_id)
                               for host in directory.hosts(s)], return_exceptions=True)
        return event
