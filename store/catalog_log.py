"""Event definitions, durable: the events topic (compacted, one record per change, key = event
id), written by the event's owner before Redis serves the change.

Redis keeps the definition every replica reads (`store.catalog`); this log is what brings it
back when Redis lost it (an empty Redis, a restore): `restore_missing` puts back every event
Redis lacks, with its lottery seed (whose commitment is public from creation, so it must never
be drawn again), its per-block availability (left unknown: recounted by each block from its bitmaps and
the ledger when it activates) and its place in the open-events index.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from domain.event import Event
from domain.settings import Settings
from store import catalog, keys
from store.durable_log import DurableLog, read_log

PARTITIONS = 1  # a few records per event, read whole after a loss


def record(event: Event, seed_hex: str) -> dict[str, Any]:
    return {"event": event.to_json(), "seed": seed_hex}


async def append(log: DurableLog, settings: Settings, event: Event, seed_hex: str) -> None:
    await log.append(settings.events_topic, event.event_id, record(event, seed_hex))


def read_events(settings: Settings) -> dict[str, tuple[Event, str]]:
    """The latest definition (and seed) of every event in the log. Blocking."""
    latest: dict[str, tuple[Event, str]] = {}
    for value in read_log(settings.kafka_bootstrap, settings.events_topic,
                          timeout_s=settings.kafka_timeout_s * 3):
        event = Event.from_json(value["event"])
        latest[event.event_id] = (event, value["seed"])
    return latest


async def restore_missing(redis: Redis, settings: Settings, now: float) -> list[Event]:
    """Put back every event of the log that Redis lacks, then mark this server (its run_id)
    as holding them all (`keys.catalog_restored`); returns the ones put back. Idempotent
    (SET NX)."""
    run_id = await catalog.server_run_id(redis)
    restored = []
    for event_id, (event, seed) in (await asyncio.to_thread(read_events, settings)).items():
        if await redis.exists(keys.event(event_id)):
            continue
        if not await catalog.save_event(redis, event, now, availability=False):
            continue  # someone else restored it just now
        await redis.set(keys.lottery_seed(event_id), seed, nx=True)
        if not event.closed:
            await redis.zadd(keys.open_events(), {event_id: now})
        restored.append(event)
    await catalog.mark_holding_every_event(redis, run_id)
    return restored
