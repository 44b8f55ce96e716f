"""An event owner that comes due without having reached its closing time keeps the event open.

A host that hands an entity off marks it due now, so its new host activates it at the next
sweep: for an event owner that must not mean "closing time" (it closed every event without an
end the first time the pool grew, which the autoscaling test found). Real Redis, no Ray: the
owner is driven directly, as its host would.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from redis.asyncio import Redis

from actors import directory
from actors.event_owner import EventOwner
from actors.host import Shared
from domain import placement
from domain.event import Event
from domain.settings import Settings
from domain.venue import Section
from store import catalog, keys

pytestmark = pytest.mark.integration


def an_event(ends_at: float | None) -> Event:
    return Event(f"ev{int(time.time() * 1e6) & 0xFFFFFFFFFFFF:012x}", "Due", time.time(), 600,
                 6, (Section("A", 1, 10, 1000),), 2000, ends_at=ends_at)


@pytest.fixture(autouse=True)
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing reaches the pool's hosts through Ray, which these tests do not start: were the
    owner to close the event, fail at once rather than let Ray start a local cluster."""

    def closing(_settings: Settings) -> Any:
        raise AssertionError("the event owner closed the event")

    monkeypatch.setattr(directory, "hosts", closing)


async def owner_of(settings: Settings, event: Event) -> EventOwner:
    owner = EventOwner(settings, event.event_id, Shared(settings))  # a host's Redis and logs
    await owner.activate()
    await owner.create(event)
    return owner


async def test_an_event_without_an_end_handed_off_stays_open_and_leaves_no_reminder(
        settings: Settings, redis_client: Any) -> None:
    redis = Redis.from_url(settings.redis_url)
    event = an_event(ends_at=None)
    owner = await owner_of(settings, event)
    entity = placement.event_entity(event.event_id)
    await redis.zadd(keys.due_index(), {entity: int(time.time() * 1000)})  # handed off: due now
    await owner.on_due()
    stored = await catalog.load_event(redis, event.event_id)
    assert stored is not None and not stored.closed
    assert await redis.zscore(keys.open_events(), event.event_id) is not None
    assert await redis.zscore(keys.due_index(), entity) is None  # no sweep keeps waking it
    await redis.aclose()


async def test_an_event_not_yet_at_its_closing_time_handed_off_keeps_its_reminder(
        settings: Settings, redis_client: Any) -> None:
    redis = Redis.from_url(settings.redis_url)
    ends_at = time.time() + 3600
    event = an_event(ends_at=ends_at)
    owner = await owner_of(settings, event)
    entity = placement.event_entity(event.event_id)
    await redis.zadd(keys.due_index(), {entity: int(time.time() * 1000)})
    await owner.on_due()
    stored = await catalog.load_event(redis, event.event_id)
    assert stored is not None and not stored.closed
    closing_ms = int((ends_at + settings.event_close_after_s) * 1000)
    assert await redis.zscore(keys.due_index(), entity) == closing_ms
    await redis.aclose()
