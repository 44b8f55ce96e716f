"""The availability stream and cached reads, end to end on the real Redis (with a replica),
Kafka, Ray and Serve."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from infra import stack
from store import keys
from store.metrics import REPLICA_STALENESS
from store.replicas import ReadRouter
from tests.conftest import TEST_REDIS_PORT, TEST_REDIS_REPLICA_PORT
from tests.integration import ray_metrics

pytestmark = pytest.mark.integration


class Stream:
    """An open availability stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout_s: float = 10.0) -> tuple[str, int | None, dict[str, Any]]:
        return await asyncio.wait_for(self._next(), timeout_s)

    async def _next(self) -> tuple[str, int | None, dict[str, Any]]:
        name, event_id, data = "message", None, ""
        async for line in self._lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and data:
                return name, event_id, json.loads(data)
        raise AssertionError("the stream ended")

    async def delta_with(self, seat: str, status: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            name, _, data = await self.next(max(0.1, deadline - time.monotonic()))
            if name == "delta" and data["seats"].get(seat) == status:
                return data


@asynccontextmanager
async def stream(http: httpx.AsyncClient, event_id: str, last_seen: int | None = None,
                 fmt: str = "") -> AsyncIterator[Stream]:
    headers = {"Last-Event-ID": str(last_seen)} if last_seen is not None else {}
    query = f"?format={fmt}" if fmt else ""
    async with http.stream("GET", f"/v1/events/{event_id}/availability/stream{query}",
                           headers=headers, timeout=httpx.Timeout(30, read=30)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def hold(http: httpx.AsyncClient, event_id: str, auth: dict[str, str],
               *seats: str) -> dict[str, Any]:
    response = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": list(seats)},
                               headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_stream_starts_with_a_snapshot_then_sends_held_released_and_sold_deltas(
        http, new_event, admission) -> None:
    event = await new_event(rows=2, seats_per_row=5)
    auth = admission("ann", event["event_id"])
    async with stream(http, event["event_id"]) as live:
        name, version, snapshot = await live.next()
        assert name == "snapshot" and version == snapshot["version"]
        assert len(snapshot["seats"]) == 10
        assert set(snapshot["seats"].values()) == {"available"}
        first = await hold(http, event["event_id"], auth, "A-1-1")
        held = await live.delta_with("A-1-1", "held")
        assert held["version"] > snapshot["version"]
        released = await http.delete(f"/v1/holds/{first['hold_id']}", headers=auth)
        assert released.status_code == 204
        await live.delta_with("A-1-1", "available")
        second = await hold(http, event["event_id"], auth, "A-2-5")
        paid = await http.post(f"/v1/holds/{second['hold_id']}/checkout",
                               json={"payment_token": "tok_visa"},
                               headers=auth | {"Idempotency-Key": "k"})
        assert paid.status_code == 201
        await live.delta_with("A-2-5", "sold")


async def test_an_expired_hold_is_streamed_as_available_again(http, new_event, admission) -> None:
    event = await new_event(rows=1, seats_per_row=4, hold_ttl_s=1)
    async with stream(http, event["event_id"]) as live:
        await live.next()
        await hold(http, event["event_id"], admission("bo", event["event_id"]), "A-1-2")
        await live.delta_with("A-1-2", "held")
        await live.delta_with("A-1-2", "available", timeout_s=5)


async def test_each_seat_change_is_published_once_with_its_own_version(
        http, new_event, admission, app_redis) -> None:
    event = await new_event(rows=1, seats_per_row=6)
    auth = admission("cy", event["event_id"])
    made = await hold(http, event["event_id"], auth, "A-1-1", "A-1-2")
    await hold(http, event["event_id"], auth, "A-1-3")
    await http.delete(f"/v1/holds/{made['hold_id']}", headers=auth)
    log = app_redis.xrange(keys.seat_changes(event["event_id"]))
    assert [int(fields[b"v"]) for _, fields in log] == [1, 2, 3]
    assert [fields[b"s"] for _, fields in log] == [b"held", b"held", b"available"]
    assert int(app_redis.get(keys.seat_version(event["event_id"]))) == 3


async def test_a_reconnect_with_last_event_id_resumes_with_what_it_missed(
        http, new_event, admission) -> None:
    event = await new_event(rows=1, seats_per_row=6)
    auth = admission("di", event["event_id"])
    async with stream(http, event["event_id"]) as live:
        _, seen, _ = await live.next()
    await hold(http, event["event_id"], auth, "A-1-4")
    await hold(http, event["event_id"], auth, "A-1-5")
    async with stream(http, event["event_id"], last_seen=seen) as live:
        deadline = time.monotonic() + 5
        missed: dict[str, str] = {}
        while missed != {"A-1-4": "held", "A-1-5": "held"} and time.monotonic() < deadline:
            name, _, data = await live.next()
            assert name == "delta"  # resumed: no snapshot
            missed |= data["seats"]
        assert missed == {"A-1-4": "held", "A-1-5": "held"}


async def test_a_reconnect_too_old_or_unknown_gets_a_fresh_snapshot(
        http, new_event, admission) -> None:
    event = await new_event(rows=1, seats_per_row=3)
    await hold(http, event["event_id"], admission("ed", event["event_id"]), "A-1-1")
    await hold(http, event["event_id"], admission("fi", event["event_id"]), "A-1-2")
    for last_seen in (0, 10**9):
        async with stream(http, event["event_id"], last_seen=last_seen) as live:
            name, version, data = await live.next()
            assert name == "snapshot" and version == 2
            assert data["seats"] == {"A-1-1": "held", "A-1-2": "held", "A-1-3": "available"}


async def test_the_seat_map_reflects_a_change_as_soon_as_it_is_made(
        http, new_event, admission) -> None:
    event = await new_event(rows=1, seats_per_row=3)
    for seat in ("A-1-1", "A-1-2"):
        await hold(http, event["event_id"], admission(f"u{seat}", event["event_id"]), seat)
        seats = (await http.get(f"/v1/events/{event['event_id']}/seats")).json()["seats"]
        assert next(s for s in seats if s["seat_id"] == seat)["status"] == "held"


async def _from_replica(http: httpx.AsyncClient, path: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = await http.get(path)
        if response.headers.get("x-read-from") == "replica" or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_a_read_served_from_the_replica_reports_its_staleness(http, new_event) -> None:
    event = await new_event()
    response = await _from_replica(http, f"/v1/events/{event['event_id']}")
    assert response.status_code == 200
    assert response.headers["x-read-from"] == "replica"
    staleness_ms = float(response.headers["x-replica-staleness-ms"])
    assert 0 <= staleness_ms < 1000
    name = REPLICA_STALENESS.exported()[0]
    samples = await asyncio.to_thread(ray_metrics.wait_until,
                                      lambda found: any(s.name == name for s in found))
    gauge = [s.value for s in samples if s.name == name]
    assert any(0 <= value < 1 for value in gauge), gauge


async def test_with_the_replica_stopped_reads_fall_back_to_the_primary_without_failing(
        http, new_event, admission, stack_state_dir, redis_replica_url) -> None:
    event = await new_event(rows=1, seats_per_row=4)
    path = f"/v1/events/{event['event_id']}"
    assert (await _from_replica(http, path)).headers["x-read-from"] == "replica"
    stack.stop_redis(TEST_REDIS_REPLICA_PORT, stack_state_dir)
    try:
        await hold(http, event["event_id"], admission("gu", event["event_id"]), "A-1-3")
        for _ in range(10):
            details = await http.get(path)
            seats = await http.get(f"{path}/seats")
            assert details.status_code == seats.status_code == 200
            assert details.headers["x-read-from"] == "primary"
            assert details.json()["seats_available"] == 3
            assert next(s for s in seats.json()["seats"] if s["seat_id"] == "A-1-3")[
                "status"] == "held"
        async with stream(http, event["event_id"]) as live:
            name, _, data = await live.next()
            assert name == "snapshot" and data["seats"]["A-1-3"] == "held"
    finally:
        stack.start_redis_replica(TEST_REDIS_REPLICA_PORT, TEST_REDIS_PORT, stack_state_dir)
    assert (await _from_replica(http, path)).headers["x-read-from"] == "replica"


async def test_a_replica_url_that_mirrors_another_database_is_never_read_from(
        app_settings) -> None:
    """A replica URL on the wrong db (or of another Redis) would answer "no such event" for
    events that exist. Each router times a heartbeat key of its own, so a router whose replica
    mirrors another keyspace never sees its heartbeat there, however busy the other keyspace's
    routers are (they once shared the key: a test on db 7 read a replica of db 1 as fresh)."""
    fast = dataclasses.replace(app_settings, replica_max_staleness_s=0.5)
    wrong = dataclasses.replace(fast, redis_url=fast.redis_url.rsplit("/", 1)[0] + "/7")
    # the wrong one probes first: the right one's write lands on db 1 after it began to wait
    routers = [ReadRouter(Redis.from_url(s.redis_url), s) for s in (wrong, fast)]
    try:
        for _ in range(3):
            await asyncio.gather(*(router.probe() for router in routers))
            wrong_pick, right_pick = (router.pick() for router in routers)
            assert right_pick is not None and right_pick.staleness_s is not None
            assert wrong_pick is None
    finally:
        for router in routers:
            await router.close()
            await router.primary.aclose()
