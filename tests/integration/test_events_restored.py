"""An event that exists is never answered 404 because Redis lost it. Until a host has put every
event of the events log back into a Redis (the `tk:events:restored` mark, naming the server:
a new Redis, an emptied one, one restarted on its AOF, a cold start), an unknown event is 503
"retry"; the hosts restore and mark it within a watch interval. The cause this pins: after an
empty Redis came back, a join was answered "no such event" for an on-sale under way, before
the hosts had put its event back."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from domain.errors import NotFound, Unavailable
from domain.event import Event
from domain.settings import Settings
from domain.venue import Section
from store import catalog, catalog_log, keys

pytestmark = pytest.mark.integration


async def test_an_unknown_event_is_retry_until_redis_is_known_to_hold_the_events_log(
        redis_client, settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        assert isinstance(await catalog.missing_event(redis, "ev000000000001"), Unavailable)
        assert await catalog_log.restore_missing(redis, settings, time.time()) == []
        assert isinstance(await catalog.missing_event(redis, "ev000000000001"), NotFound)
        # a read that missed an event there by now (restored since, a replica behind): retry
        event = Event("ev000000000002", "Back", time.time(), 600, 6, (Section("A", 1, 5, 100),),
                      2000)
        await catalog.save_event(redis, event, time.time())
        assert isinstance(await catalog.missing_event(redis, event.event_id), Unavailable)
    finally:
        await redis.aclose()


async def test_a_mark_an_earlier_server_left_does_not_count(redis_client, settings: Settings) -> None:
    """A Redis restarted on its AOF keeps the mark its predecessor was given, but may have lost
    the newest events with its last second of writes: the mark names the server (its run_id),
    so until a host has restored into this one, an unknown event is still a retry."""
    redis = Redis.from_url(settings.redis_url)
    try:
        await catalog.mark_holding_every_event(redis, "0" * 40)  # the server before a restart
        assert not await catalog.holds_every_event(redis)
        assert isinstance(await catalog.missing_event(redis, "ev000000000003"), Unavailable)
        await catalog_log.restore_missing(redis, settings, time.time())
        assert await catalog.holds_every_event(redis)
        assert isinstance(await catalog.missing_event(redis, "ev000000000003"), NotFound)
    finally:
        await redis.aclose()


async def test_an_event_redis_lost_comes_back_from_the_events_log_and_is_never_404_meanwhile(
        http, new_event, app_redis) -> None:
    event_id = (await new_event())["event_id"]
    app_redis.delete(keys.event(event_id), keys.catalog_restored())
    answers = set()
    deadline = time.monotonic() + 20
    while not app_redis.exists(keys.event(event_id)):
        assert time.monotonic() < deadline, "no host put the event back"
        answers.add((await http.get(f"/v1/events/{event_id}")).status_code)
        await asyncio.sleep(0.05)
    assert answers <= {200, 503}, answers  # (200: a read replica not caught up yet)
    assert (await http.get(f"/v1/events/{event_id}")).status_code == 200
    assert app_redis.exists(keys.catalog_restored())
    unknown = await http.get("/v1/events/evffffffffffff")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
