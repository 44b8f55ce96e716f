"""Health: whether Redis, Kafka and the actors answer, and whether Redis holds every event
(what a load balancer polls)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from actors import directory
from api import models
from api.http import Http, json_response
from api.openapi import Op
from replica.client import BookingClient
from store import catalog


async def health_checks(client: BookingClient) -> dict[str, bool]:
    async def redis_ok() -> bool:
        return bool(await client.redis.ping())

    async def events_ok() -> bool:
        """A host has put every event of the events log in this Redis server
        (`catalog.holds_every_event`): until then (a new, emptied or restarted Redis) an
        unknown event is answered 503, not 404, so a replica is not ready for the traffic it
        would turn away."""
        return await catalog.holds_every_event(client.redis)

    async def kafka_ok() -> bool:
        host, _, port = client.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        return True

    async def actors_ok() -> bool:
        """Every live host of the pool answers."""
        await asyncio.gather(*[client.call(host.ping.remote())
                               for host in directory.hosts(client.settings)])
        return True

    names = ("redis", "events", "kafka", "actors")
    results = await asyncio.gather(
        *[asyncio.wait_for(check(), 5) for check in (redis_ok, events_ok, kafka_ok, actors_ok)],
        return_exceptions=True)
    return {name: result is True for name, result in zip(names, results, strict=True)}


def ops(http: Http) -> list[Op]:
    async def healthz(request: Request) -> Response:
        checks = await health_checks(http.client)
        status = 200 if all(checks.values()) else 503
        return json_response({"status": "ok" if status == 200 else "degraded", "checks": checks},
                             status)

    return [Op("GET", "/healthz", healthz, (
        "200 when Redis, Kafka and the actors answer and Redis holds every event; 503 otherwise"),
        answer=models.Health, tags=("health",))]
