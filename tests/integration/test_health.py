"""/healthz says 503 when a dependency is down, and which one."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

import serve_app
from replica.client import BookingClient
from store import catalog
from tests.integration.conftest import on_db

pytestmark = pytest.mark.integration


async def test_health_fails_when_redis_and_kafka_do_not_answer(api, app_settings) -> None:
    """Each check stands on its own: the hosts still answer their ping while Redis is away
    (the directory keeps the members it last saw, or host 0), so only Redis and Kafka fail.
    (After `api`: the pool is up, so the actors check finds host 0 rather than starting it on
    these settings.)"""
    dead = dataclasses.replace(app_settings, redis_url="redis://127.0.0.1:1/0",
                               kafka_bootstrap="127.0.0.1:1")
    redis = Redis.from_url(dead.redis_url, socket_connect_timeout=1)
    checks = await serve_app.health_checks(BookingClient(dead, redis))
    assert (checks["redis"], checks["events"], checks["kafka"]) == (False, False, False)


async def test_health_is_200_with_every_check_when_all_answer(http) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": True, "events": True, "kafka": True,
                                        "actors": True}


async def test_health_is_503_until_redis_holds_every_event(app_settings) -> None:
    """A Redis no host has put the events log back into yet (a new or emptied one: no
    `tk:events:restored` mark, or a mark naming an earlier server) answers an unknown event
    503, not 404: a replica on it is not ready for traffic (the CI failure of 03f05ac: a
    test's first lookup came before the mark)."""
    settings = on_db(app_settings, 10)  # a database no pool's hosts restore into
    redis = Redis.from_url(settings.redis_url)
    await redis.flushdb()
    try:
        client = BookingClient(settings, redis)
        checks = await serve_app.health_checks(client)
        assert checks["redis"] and not checks["events"]
        await catalog.mark_holding_every_event(redis, "0" * 40)  # another server's mark
        assert not (await serve_app.health_checks(client))["events"]
        await catalog.mark_holding_every_event(redis, await catalog.server_run_id(redis))
        assert (await serve_app.health_checks(client))["events"]
    finally:
        await redis.flushdb()
        await redis.aclose()
