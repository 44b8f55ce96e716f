"""Owners crash; bookings, seats and holds do not.

After each crash the block comes back by itself (Ray restarts it; it recovers from Redis and
replays the Kafka ledger), no confirmed booking is lost, no seat is sold twice, and holds that
were active before the crash are still active after it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import ray
import redis as redis_sync
from redis.asyncio import Redis

from actors import directory
from domain import placement
from domain.event import Event
from domain.ids import HoldRef
from domain.inventory import HoldRequest
from domain.settings import Settings
from domain.venue import Section
from store import catalog, keys
from store.ledger import read_bookings
from tests.integration.conftest import kill_owner, on_db, stop_event_actors

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def kill_block(settings: Settings, event_id: str, block: int = 0) -> None:
    kill_owner(settings, placement.block_entity(event_id, block))


async def retrying(call: Any, attempts: int = 60) -> Any:
    """A client that retries 503s (an owner restarting), as a browser would."""
    for _ in range(attempts):
        response = await call()
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.5)
    raise AssertionError("the owner never came back")


def audit(app_redis: Any, settings: Settings, event_id: str, block: int = 0) -> list[str]:
    """Ledger and Redis agree, and no seat is in two bookings; returns the sold seats."""
    ledger = read_bookings(settings.kafka_bootstrap, settings.ledger_topic, event_id)
    sold = [seat for booking in ledger for seat in booking["seat_ids"]]
    assert len(sold) == len(set(sold)), "a seat was sold twice"
    stored = app_redis.hgetall(keys.bookings(event_id))
    assert len(stored) == len(ledger), "Redis and the ledger disagree on bookings"
    sold_bits = app_redis.bitcount(keys.block_sold(event_id, block))
    assert sold_bits == len(sold)
    return sold


async def test_block_killed_mid_run_loses_no_booking_and_keeps_active_holds(
        api, http, new_event, admission, app_settings, app_redis) -> None:
    event = await new_event(rows=10, seats_per_row=20)
    event_id = event["event_id"]
    keepers = []
    for n in range(5):  # holds that stay active across the crash
        auth = admission(f"keeper{n}", event_id)
        held = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": [f"A-10-{n + 1}"]},
                               headers=auth)
        keepers.append((held.json()["hold_id"], auth))

    async def buyer(n: int) -> dict[str, Any] | None:
        auth = admission(f"buyer{n}", event_id)
        held = await retrying(lambda: http.post(f"/v1/events/{event_id}/holds",
                                                json={"section": "A", "quantity": 1}, headers=auth))
        if held.status_code != 201:
            return None
        booked = await retrying(lambda: http.post(
            f"/v1/holds/{held.json()['hold_id']}/checkout",
            json={"payment_token": f"tok_visa_{n}"},  # one card per buyer
            headers=auth | {"Idempotency-Key": f"buy-{n}"}))
        assert booked.status_code == 201, booked.text
        body: dict[str, Any] = booked.json()
        return body

    async def crash_soon() -> None:
        await asyncio.sleep(0.4)
        kill_block(app_settings, event_id)

    results = await asyncio.gather(*[buyer(n) for n in range(120)], crash_soon())
    confirmed = [r for r in results if r]
    sold = audit(app_redis, app_settings, event_id)
    assert {b["booking_id"] for b in confirmed} <= {
        b["booking_id"] for b in read_bookings(app_settings.kafka_bootstrap,
                                               app_settings.ledger_topic, event_id)}
    assert len(sold) == sum(len(b["seat_ids"]) for b in confirmed)
    for hold_id, auth in keepers:
        status = (await http.get(f"/v1/holds/{hold_id}", headers=auth)).json()
        assert status["status"] == "active"
    seats = (await http.get(f"/v1/events/{event_id}/seats")).json()["seats"]
    assert sum(s["status"] == "held" for s in seats) == len(keepers)
    assert sum(s["status"] == "sold" for s in seats) == len(sold)


async def test_crash_between_ledger_write_and_confirm_still_confirms(
        api, http, new_event, admission, app_settings, app_redis) -> None:
    event = await new_event()
    event_id = event["event_id"]
    auth = admission("pat", event_id)
    held = (await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": ["A-1-1"]},
                            headers=auth)).json()
    block = directory.seat_block(app_settings, event_id, 0)
    await block.set_delay.remote("after_ledger", 5.0)
    checkout = asyncio.create_task(http.post(
        f"/v1/holds/{held['hold_id']}/checkout", json={"payment_token": "tok_visa"},
        headers=auth | {"Idempotency-Key": "crash"}))
    deadline = time.time() + 10
    while not read_bookings(app_settings.kafka_bootstrap, app_settings.ledger_topic, event_id):
        assert time.time() < deadline, "the booking never reached the ledger"
        await asyncio.sleep(0.1)
    kill_block(app_settings, event_id)
    first = await checkout
    again = await retrying(lambda: http.post(
        f"/v1/holds/{held['hold_id']}/checkout", json={"payment_token": "tok_visa"},
        headers=auth | {"Idempotency-Key": "crash"}))
    assert first.status_code in (201, 503)
    assert again.status_code == 201 and again.json()["hold_id"] == held["hold_id"]
    assert audit(app_redis, app_settings, event_id) == ["A-1-1"]
    assert (await http.get(f"/v1/holds/{held['hold_id']}", headers=auth)).json()[
        "status"] == "confirmed"


async def test_an_old_incarnation_can_no_longer_write_and_its_host_drops_it(
        api, http, new_event, admission, app_settings, app_redis) -> None:
    event = await new_event()
    event_id = event["event_id"]
    auth = admission("zed", event_id)
    assert (await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": ["A-1-1"]},
                            headers=auth)).status_code == 201
    app_redis.incr(keys.block_epoch(event_id, 0))  # a newer incarnation took the block
    refused = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": ["A-1-2"]},
                              headers=auth)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "stale_owner"
    assert not app_redis.getbit(keys.block_held(event_id, 0), 1)
    # the fenced incarnation is dropped, not kept refusing every call for ever: the next call
    # activates a new one (above the newer epoch), which holds
    again = await retrying(lambda: http.post(f"/v1/events/{event_id}/holds",
                                             json={"seat_ids": ["A-1-2"]}, headers=auth))
    assert again.status_code == 201
    assert app_redis.getbit(keys.block_held(event_id, 0), 1)


async def test_node_removed_block_restarts_elsewhere_and_keeps_its_state(
        ray_cluster, api, http, app_settings) -> None:
    # A pool of its own (namespace, Redis database), whose hosts need the "blocknode" resource:
    # all of them live on the node this test removes.
    settings = on_db(
        app_settings, 2, host_resource="blocknode", ray_namespace="nodeloss")
    app_redis = redis_sync.Redis.from_url(settings.redis_url)
    app_redis.flushdb()
    first = ray_cluster.add_node(num_cpus=1, resources={"blocknode": 1})
    ray_cluster.wait_for_nodes()
    event = Event(f"ev{int(time.time() * 1000):012x}", "Node loss", time.time(), 600, 6,
                  (Section("A", 5, 10, 1000),), 2000)
    redis = Redis.from_url(settings.redis_url)
    await catalog.save_event(redis, event, time.time())
    block = directory.seat_block(settings, event.event_id, 0)
    requests = [(HoldRef(event.event_id, 0, f"{n:016x}").hold_id,
                 HoldRequest(f"user{n}", (f"A-1-{n + 1}",))) for n in range(8)]
    holds = await block.hold.remote(requests)
    assert all(h.status == "active" for h in holds)
    for n in range(4):
        await block.checkout.remote(holds[n].hold_id, f"user{n}", f"key{n}", f"tok_visa_{n}")
    ray_cluster.add_node(num_cpus=1, resources={"blocknode": 1})
    ray_cluster.wait_for_nodes()
    ray_cluster.remove_node(first)

    for _ in range(120):
        try:
            await asyncio.wait_for(block.ping.remote(), 10)
            break
        except (ray.exceptions.RayError, TimeoutError):
            await asyncio.sleep(0.5)
    else:
        raise AssertionError("the block never came back")
    for n in range(4, 8):  # holds made before the node died can still be bought
        await block.checkout.remote(holds[n].hold_id, f"user{n}", f"key{n}", f"tok_visa_{n}")
    replay = await block.checkout.remote(holds[0].hold_id, "user0", "key0", "tok_visa_0")
    assert replay["booking_id"] == holds[0].hold_id.replace("hd.", "bk.", 1)
    assert sorted(audit(app_redis, settings, event.event_id)) == sorted(
        f"A-1-{n + 1}" for n in range(8))
    await redis.aclose()
    stop_event_actors(settings, [event.event_id])
    for index in directory.of(settings).members():
        ray.kill(directory.of(settings).host(index), no_restart=True)
    app_redis.close()
    for _ in range(60):  # Serve survives the node loss too
        try:
            if (await http.get("/healthz")).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    else:
        raise AssertionError("the app did not recover from the node loss")
