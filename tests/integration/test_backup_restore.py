"""A backup (`python -m infra.backup`) restored into empty services: the event serves, its sold
seats stay sold, the rest sells, and who was admitted is still admitted (issue 12)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import ray
import redis as redis_sync
from redis.asyncio import Redis

from actors import directory
from domain.errors import SeatsUnavailable, Unavailable
from domain.ids import HoldRef
from domain.inventory import HoldRequest, SeatStatus
from domain.settings import Settings
from infra import backup, stack
from store import catalog, keys
from store.ledger import read_bookings
from tests.integration.conftest import stop_event_actors, user_header

pytestmark = pytest.mark.integration

_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
FRESH_REDIS_PORT = 6393 + _OFFSET
FRESH_KAFKA_PORT, FRESH_KAFKA_CONTROLLER_PORT = 19094 + _OFFSET, 19095 + _OFFSET


@pytest.fixture
def fresh_services() -> Any:
    """An empty Redis and an empty Kafka of their own (the restore's target)."""
    state = Path(f"/tmp/ticketing-restore-{os.getpid()}")
    state.mkdir(exist_ok=True)
    try:
        url = stack.start_redis(FRESH_REDIS_PORT, state)
        bootstrap = stack.start_kafka(FRESH_KAFKA_PORT, FRESH_KAFKA_CONTROLLER_PORT, state)
        yield url, bootstrap
    finally:
        stack.stop_kafka(FRESH_KAFKA_PORT, state)
        stack.stop_redis(FRESH_REDIS_PORT, state)
        shutil.rmtree(state, ignore_errors=True)


async def admitted_ticket(http: Any, event_id: str, user: str) -> dict[str, Any]:
    joined = await http.post(f"/v1/events/{event_id}/queue", json={}, headers=user_header(user))
    assert joined.status_code == 202, joined.text
    ticket: dict[str, Any] = joined.json()
    auth = {"Authorization": f"Bearer {ticket['ticket_token']}"}
    for _ in range(120):
        status = (await http.get(f"/v1/events/{event_id}/queue/{ticket['ticket_id']}",
                                 headers=auth)).json()
        if status["state"] == "admitted":
            return ticket
        await asyncio.sleep(0.25)
    raise AssertionError(f"{user} was never admitted")


async def retry_unavailable(call: Any, attempts: int = 60) -> Any:
    for _ in range(attempts - 1):
        try:
            return await call()
        except Unavailable:
            await asyncio.sleep(0.5)
    return await call()


async def test_a_backup_restored_into_empty_services_serves_and_sells_on(
        http, new_event, admission, app_settings: Settings, tmp_path: Path,
        fresh_services: Any) -> None:
    event = await new_event(rows=2, seats_per_row=10)
    event_id = event["event_id"]
    sold = ["A-1-1", "A-1-2", "A-2-5"]
    for n, seat in enumerate(sold):
        auth = admission(f"bk{n}", event_id)
        held = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": [seat]},
                               headers=auth)
        assert held.status_code == 201, held.text
        paid = await http.post(f"/v1/holds/{held.json()['hold_id']}/checkout",
                               json={"payment_token": f"tok_visa_{n}"},
                               headers=auth | {"Idempotency-Key": "k"})
        assert paid.status_code == 201, paid.text
    tickets = [await admitted_ticket(http, event_id, f"q{n}") for n in range(3)]

    folder = tmp_path / "backup"
    started = time.monotonic()
    manifest = await asyncio.to_thread(backup.backup, app_settings, folder)
    took_s = time.monotonic() - started
    assert {"redis.rdb", "ledger.jsonl", "events.jsonl", "admissions.jsonl", "events.json",
            "manifest.json"} <= {p.name for p in folder.iterdir()}
    assert manifest["topics"]["ledger"]["records"] >= len(sold)
    assert any(e["event_id"] == event_id for e in json.loads((folder / "events.json").read_text()))

    url, bootstrap = fresh_services
    restored = dataclasses.replace(
        app_settings, redis_url=url.rsplit("/", 1)[0] + "/1", kafka_bootstrap=bootstrap,
        redis_replica_urls=(), ray_namespace="restored", host_cpus=0, host_pool_min=1,
        host_pool_max=1)
    started = time.monotonic()
    done = await asyncio.to_thread(backup.restore, restored, folder)
    print(f"\nbackup {took_s:.2f} s ({manifest['files']['redis.rdb']['bytes']} B of RDB, "
          f"{manifest['topics']}); restore {time.monotonic() - started:.2f} s: {done}")
    with pytest.raises(backup.BackupError, match="not empty"):  # never over live data
        await asyncio.to_thread(backup.restore, restored, folder)

    store = redis_sync.Redis.from_url(restored.redis_url)
    try:
        # the restored stack serves the event, and its pool (one host) forgets the old hosts
        # (the restored members are the old stack's: a call to one not running here is
        # Unavailable, and starts host 0, which publishes the members that run)
        assert await retry_unavailable(
            lambda: directory.event_owner(restored, event_id).ping.remote()) == event_id
        for _ in range(60):
            if store.smembers(keys.pool_members()) == {b"0"}:
                break
            await asyncio.sleep(0.5)
        directory.of(restored).refresh()
        block = directory.seat_block(restored, event_id, 0)
        again = await block.hold.remote([(HoldRef(event_id, 0, f"{n:016x}").hold_id,
                                          HoldRequest(f"thief{n}", (seat,)))
                                         for n, seat in enumerate(sold)])
        assert all(isinstance(h, SeatsUnavailable) for h in again), "a sold seat sold again"
        fresh = await block.hold.remote([(HoldRef(event_id, 0, "ab" * 8).hold_id,
                                          HoldRequest("late", ("A-1-3", "A-1-4")))])
        assert fresh[0].status == "active", fresh
        booking = await block.checkout.remote(fresh[0].hold_id, "late", "k", "tok_visa_late")
        assert booking["seat_ids"] == ["A-1-3", "A-1-4"]

        ledger = read_bookings(bootstrap, restored.ledger_topic, event_id)
        seats = [s for b in ledger for s in b["seat_ids"]]
        assert sorted(seats) == sorted([*sold, "A-1-3", "A-1-4"])
        assert len(seats) == len(set(seats))
        reader = Redis.from_url(restored.redis_url)
        ev = await catalog.load_event(reader, event_id)
        assert ev is not None
        statuses = await catalog.seat_statuses(reader, ev)
        await reader.aclose()
        assert {s for s, st in statuses.items() if st is SeatStatus.SOLD} == set(seats)
        for ticket in tickets:  # admitted before the backup: still admitted, once
            assert store.hexists(keys.queue_admitted(event_id), ticket["ticket_id"])
        log = [json.loads(r)["ticket_id"] for r in store.lrange(keys.queue_log(event_id), 0, -1)]
        assert sorted(log) == sorted(t["ticket_id"] for t in tickets)
    finally:
        store.close()
        stop_event_actors(restored, [event_id])
        for index in range(restored.host_pool_max):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(directory.host_name(index),
                                       namespace=restored.ray_namespace), no_restart=True)
