"""The room, an ingest actor and the Kafka broker fail mid-run; nobody is lost or let in twice."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from actors import directory
from domain.settings import Settings
from domain.waiting.tickets import Join
from store import joins, keys
from tests.integration.conftest import kill_owner, user_header

pytestmark = pytest.mark.integration

USERS = 120


async def join_retrying(http: httpx.AsyncClient, event_id: str, user: str) -> dict[str, Any]:
    """A browser retries a join the platform could not take (503 while Kafka restarts)."""
    for _ in range(120):
        try:
            response = await http.post(f"/v1/events/{event_id}/queue", json={},
                                       headers=user_header(user) | {"X-Forwarded-For": user})
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 202:
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"{user} could never join")


def kill(settings: Settings, entity_id: str) -> None:
    kill_owner(settings, entity_id)


async def test_room_ingest_and_broker_failures_lose_and_duplicate_nobody(
        http, new_event, app_settings, app_redis, kafka_restart) -> None:
    event = await new_event(rows=10, seats_per_row=50, admission_rate_per_s=40)
    event_id = event["event_id"]
    tickets = []
    for n in range(USERS):
        tickets.append(await join_retrying(http, event_id, f"crowd{n:03d}"))
        if n == 30:
            kill(app_settings, f"room:{event_id}")
        if n == 60:
            kill(app_settings, f"ingest:{event_id}:0")
        if n == 90:
            await asyncio.to_thread(kafka_restart)

    async def everyone_admitted() -> bool:
        return app_redis.llen(keys.queue_log(event_id)) >= USERS

    for _ in range(240):
        if await everyone_admitted():
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.5)  # anything duplicated would show up by now
    log = [json.loads(raw) for raw in app_redis.lrange(keys.queue_log(event_id), 0, -1)]
    admitted = [entry["ticket_id"] for entry in log]
    assert len(admitted) == len(set(admitted)), "someone was admitted twice"
    assert sorted(admitted) == sorted(t["ticket_id"] for t in tickets), "someone was lost"
    assert admitted == [t["ticket_id"] for t in tickets], "admitted out of join order"


async def test_a_batch_read_for_an_older_room_incarnation_is_refused_and_nobody_is_stuck(
        http, new_event, app_settings, app_redis) -> None:
    """When a host dies, Ray retries the call in flight into the restarted room: a batch that
    may start past joins the dead incarnation buffered. Taken, the lane's rewind to the
    committed offsets would look like an offset going back and the room would never drain."""
    event = await new_event(rows=2, seats_per_row=20, admission_rate_per_s=40)
    event_id = event["event_id"]

    async def admitted(count: int) -> list[str]:
        for _ in range(120):
            if app_redis.llen(keys.queue_log(event_id)) >= count:
                break
            await asyncio.sleep(0.5)
        return [json.loads(raw)["ticket_id"]
                for raw in app_redis.lrange(keys.queue_log(event_id), 0, -1)]

    early = [(await join_retrying(http, event_id, f"early{n}"))["ticket_id"] for n in range(5)]
    assert await admitted(5) == early
    epoch = int(app_redis.get(keys.room_epoch(event_id)))
    ghost = Join(int(time.time() * 1000), "ghost-ticket", event_id, "ghost", 0, True, None,
                 partition=0, offset=10**9)
    room = directory.waiting_room(app_settings, event_id)
    answer = await room.ingest.remote(joins.to_columns([ghost]), {0: False}, epoch - 1)
    assert tuple(answer) == (epoch, {}), "a batch of an older incarnation was taken"

    late = [(await join_retrying(http, event_id, f"late{n}"))["ticket_id"] for n in range(5)]
    await asyncio.sleep(1.0)  # a ghost taken would be released by now
    assert await admitted(10) == early + late, "someone is stuck behind the refused batch"
