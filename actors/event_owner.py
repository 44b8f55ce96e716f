"""The event actor: owns one event's definition and prices, and starts its other owners.

It stores the event in Redis (the cache every replica reads), creates the event's joins topic,
starts the seat-block actors, the waiting room and its ingest actors, and forwards price and
admission-rate changes to the owners concerned.
"""

from __future__ import annotations

import asyncio
import time

import ray
from redis.asyncio import Redis

from actors import directory
from domain.event import Event
from domain.settings import Settings
from store import catalog
from store.kafka_io import ensure_topic


class EventOwner:
    def __init__(self, settings: Settings, event: Event) -> None:
        self._settings = settings
        self._event = event
        self._redis = Redis.from_url(settings.redis_url)
        self._ready = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        if not await catalog.save_event(self._redis, self._event, time.time()):
            self._event = await catalog.load_event(self._redis, self._event.event_id) or self._event
        settings, event_id = self._settings, self._event.event_id
        await asyncio.to_thread(ensure_topic, settings.kafka_bootstrap,
                                settings.joins_topic(event_id), settings.join_partitions)
        owners = [directory.seat_block(settings, event_id, b.index)
                  for b in self._event.venue.blocks]
        owners.append(directory.waiting_room(settings, event_id))
        owners += [directory.ingest(settings, event_id, i) for i in range(settings.ingest_actors)]
        await asyncio.gather(*[owner.ping.remote() for owner in owners])

    async def ping(self) -> str:
        await self._ready
        return self._event.event_id

    async def set_price(self, section: str, price_cents: int) -> Event:
        """Later holds pay the new price; every existing hold keeps the price it locked."""
        await self._ready
        self._event = self._event.with_price(section, price_cents)
        await catalog.store_event(self._redis, self._event)
        await asyncio.gather(*[
            directory.seat_block(self._settings, self._event.event_id, b.index).reprice.remote(
                price_cents) for b in self._event.venue.blocks_of(section)])
        return self._event

    async def set_admission_rate(self, rate_per_s: float) -> Event:
        await self._ready
        self._event = self._event.with_rate(rate_per_s)
        await catalog.store_event(self._redis, self._event)
        await directory.waiting_room(self._settings, self._event.event_id).set_rate.remote(
            rate_per_s)
        return self._event


EventOwnerActor = ray.remote(  # type: ignore[call-overload]  # Ray's stubs lack max_concurrency
    num_cpus=0, max_restarts=-1, max_task_retries=3, max_concurrency=10_000)(EventOwner)
