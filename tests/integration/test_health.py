"""/healthz says 503 when a dependency is down, and which one."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

import serve_app
from replica.client import BookingClient

pytestmark = pytest.mark.integration


async def test_health_fails_when_redis_and_kafka_do_not_answer(app_settings) -> None:
    """Each check stands on its own: the hosts still answer their ping while Redis is away
    (the directory keeps the members it last saw, or host 0), so only Redis and Kafka fail."""
    dead = dataclasses.replace(app_settings, redis_url="redis://127.0.0.1:1/0",
                               kafka_bootstrap="127.0.0.1:1")
    redis = Redis.from_url(dead.redis_url, socket_connect_timeout=1)
    checks = await serve_app.health_checks(BookingClient(dead, redis))
    assert (checks["redis"], checks["kafka"]) == (False, False)


async def test_health_is_200_with_every_check_when_all_answer(http) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": True, "kafka": True, "actors": True}
