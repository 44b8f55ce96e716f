"""Redis HA: the primary is killed (`kill -9`) in the middle of an on-sale; Sentinel promotes a
replica and the platform sells on (issue 12).

The app here is a second Serve application (under /ha, its own Ray namespace, hosts and Kafka
topics) whose every Redis client finds the primary through the session's Sentinels; the
session's usual app and Redis are not touched. Buyers join the waiting room, wait for their
admission, hold a seat and check out, retrying a 503 as a browser would; when a sixth of the
seats are sold the primary is killed and a second wave of buyers joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from domain.settings import Settings
from infra import sentinel
from store import redis_clients
from store.ledger import read_bookings
from tests.conftest import TEST_REDIS_HA_PORTS, TEST_SENTINEL_PORTS
from tests.integration.conftest import HTTP_PORT, identity_of, stop_event_actors, user_header

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ROWS, SEATS_PER_ROW = 6, 10  # 60 seats
# Buyers before and after the kill: half the seats are left for the second wave, so holds,
# joins and checkouts are still to be made after the kill however fast the first wave buys.
FIRST_WAVE, SECOND_WAVE = 30, 60
ARRIVAL_GAP_S = 0.1  # the first wave arrives over 3 s
KILL_AFTER_BOOKINGS = 10  # the kill lands while the first wave holds and checks out
RTO_LIMIT_S = 30.0
DEADLINE_S = 75.0  # every buyer must have an answer by then
APP_NAME, PREFIX = "ticketing-ha", "/ha"


@dataclass
class Run:
    killed_at: float | None = None
    booked_at_kill = 0
    bookings: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, str] = field(default_factory=dict)  # user -> final state
    # (sent, answered) of every hold and join that succeeded (after its retries)
    holds_ok: list[tuple[float, float]] = field(default_factory=list)
    joins_ok: list[tuple[float, float]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def ha_settings(app_settings: Settings, redis_ha: dict[str, str]) -> Settings:
    """The app's settings with Redis through the Sentinels; its own namespace and topics."""
    settings = replace(
        app_settings, redis_url="redis://127.0.0.1:1/0", redis_replica_urls=(),
        redis_sentinels=tuple(redis_ha["REDIS_SENTINELS"].split(",")),
        redis_master_name=redis_ha["REDIS_MASTER_NAME"],
        redis_wait_replicas=int(redis_ha["REDIS_WAIT_REPLICAS"]),
        ray_namespace=app_settings.ray_namespace + "-ha", host_cpus=0.0,
        kafka_topic_prefix=app_settings.kafka_topic_prefix + "ha", ingress_resource="")
    settings.validate()
    return settings


@pytest.fixture(scope="module")
def ha_api(ray_cluster: Any, ha_settings: Settings) -> Any:
    import ray
    from ray import serve

    import serve_app
    from actors import directory

    identity_of(ha_settings)  # the same secrets as the session's app: its user tokens work
    serve_app.deploy(ha_settings, name=APP_NAME, route_prefix=PREFIX)
    base = f"http://127.0.0.1:{HTTP_PORT}{PREFIX}"
    deadline = time.monotonic() + 120
    while httpx.get(base + "/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the HA app never became healthy"
        time.sleep(0.5)
    yield base
    serve.delete(APP_NAME)
    for index in range(ha_settings.host_pool_max):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(directory.host_name(index),
                                   namespace=ha_settings.ray_namespace), no_restart=True)


async def _retrying(run: Run, send: Any, give_up: float) -> httpx.Response:
    """Send until the answer is not a 503 (or a dropped connection), as a browser retries."""
    while True:
        try:
            response: httpx.Response = await send()
        except httpx.TransportError:
            await asyncio.sleep(0.3)
            continue
        run.statuses[response.status_code] += 1
        if response.status_code >= 500:
            run.bodies.append(f"{response.status_code} {response.headers.get('retry-after')} "
                              f"{response.text[:200]}")
        if response.status_code not in (429, 503) or time.monotonic() > give_up:
            return response
        await asyncio.sleep(float(response.headers.get("retry-after", "1")) * 0.3)


async def _buyer(http: httpx.AsyncClient, run: Run, event_id: str, n: int,
                 give_up: float, after_s: float = 0.0) -> None:
    await asyncio.sleep(after_s)
    user = f"ha-buyer-{n}"
    auth = user_header(user)
    sent = time.monotonic()
    joined = await _retrying(run, lambda: http.post(
        f"/v1/events/{event_id}/queue", json={}, headers=auth), give_up)
    assert joined.status_code == 202, joined.text
    run.joins_ok.append((sent, time.monotonic()))
    ticket = joined.json()
    run.outcome[user] = "waiting"
    ticket_auth = {"Authorization": f"Bearer {ticket['ticket_token']}"}
    while time.monotonic() < give_up:
        status = await _retrying(run, lambda: http.get(
            f"/v1/events/{event_id}/queue/{ticket['ticket_id']}", headers=ticket_auth),
            give_up)
        state = status.json().get("state") if status.status_code == 200 else None
        if state == "sold_out":
            run.outcome[user] = "sold_out"
            return
        if state == "admitted":
            run.outcome[user] = "admitted"
            await _buy(http, run, event_id, status.json()["admission_token"], n, give_up)
            return
        await asyncio.sleep(0.3)


async def _buy(http: httpx.AsyncClient, run: Run, event_id: str, token: str, n: int,
               give_up: float) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    for attempt in range(3):  # a hold lost with the primary is refused at checkout: hold again
        sent = time.monotonic()
        held = await _retrying(run, lambda: http.post(
            f"/v1/events/{event_id}/holds", json={"section": "A", "quantity": 1},
            headers=auth), give_up)
        if held.status_code != 201:
            run.outcome[f"ha-buyer-{n}"] = f"admitted, hold {held.json()['error']['code']}"
            return
        run.holds_ok.append((sent, time.monotonic()))
        hold_id, key = held.json()["hold_id"], f"ha-{n}-{attempt}"
        paid = await _retrying(run, lambda h=hold_id, k=key: http.post(
            f"/v1/holds/{h}/checkout", json={"payment_token": f"tok_visa_{n}"},
            headers=auth | {"Idempotency-Key": k}), give_up)
        if paid.status_code == 201:
            run.bookings.append(paid.json())
            run.outcome[f"ha-buyer-{n}"] = "bought"
            return
        run.outcome[f"ha-buyer-{n}"] = f"admitted, checkout {paid.text[:80]}"


async def _kill_when_sold(run: Run, state: Path) -> int:
    while len(run.bookings) < KILL_AFTER_BOOKINGS:
        await asyncio.sleep(0.05)
    run.booked_at_kill = len(run.bookings)
    port = await asyncio.to_thread(sentinel.kill_primary, state, TEST_SENTINEL_PORTS)
    run.killed_at = time.monotonic()
    return port


async def test_a_killed_primary_is_replaced_and_the_onsale_sells_on_without_a_double_sale(
        ha_api: str, ha_settings: Settings, stack_state_dir: Path) -> None:
    admin = {"Authorization": f"Bearer {ha_settings.admin_token}"}
    async with httpx.AsyncClient(base_url=ha_api, timeout=60,
                                 limits=httpx.Limits(max_connections=200)) as http:
        created = await http.post("/v1/events", headers=admin, json={
            "name": "HA on-sale", "admission_rate_per_s": 200, "sections": [
                {"name": "A", "rows": ROWS, "seats_per_row": SEATS_PER_ROW,
                 "price_cents": 5000}]})
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        try:
            run = Run()
            started = time.monotonic()
            give_up = started + DEADLINE_S
            killer = asyncio.ensure_future(_kill_when_sold(run, stack_state_dir))
            first = [asyncio.ensure_future(_buyer(http, run, event_id, n, give_up,
                                                  n * ARRIVAL_GAP_S))
                     for n in range(FIRST_WAVE)]
            killed_port = await asyncio.wait_for(killer, DEADLINE_S)
            second = [asyncio.ensure_future(_buyer(http, run, event_id, FIRST_WAVE + n, give_up))
                      for n in range(SECOND_WAVE)]
            await asyncio.gather(*first, *second)
        finally:
            stop_event_actors(ha_settings, [event_id])

    # a replica was promoted
    primary = sentinel.current_primary(stack_state_dir, TEST_SENTINEL_PORTS, -1)
    assert primary != killed_port and primary in TEST_REDIS_HA_PORTS
    client = redis.Redis(port=primary, socket_timeout=2)
    assert client.info("replication")["role"] == "master"
    client.close()

    # holds and joins succeed again within 30 s
    assert run.killed_at is not None
    # RTO: from the kill to the first success of a hold (join) first sent after the kill
    hold_rto = min((done for sent, done in run.holds_ok if sent > run.killed_at),
                   default=1e9) - run.killed_at
    join_rto = min((done for sent, done in run.joins_ok if sent > run.killed_at),
                   default=1e9) - run.killed_at
    print(f"\nRedis primary {killed_port} killed after {run.booked_at_kill} bookings "
          f"({run.killed_at - started:.1f} s in, {len(run.bookings)} at the end); new primary "
          f"{primary}; first hold after "
          f"{hold_rto:.2f} s, first join after {join_rto:.2f} s; answers {dict(run.statuses)}; "
          f"outcomes {Counter(run.outcome.values())}; 5xx {Counter(run.bodies).most_common(4)}")
    assert hold_rto < RTO_LIMIT_S and join_rto < RTO_LIMIT_S
    assert not [b for b in run.bodies if not b.startswith("503 1 ")], run.bodies[:5]  # no 500

    # 0 bookings lost: every confirmed checkout is in the ledger (an independent consumer)
    ledger = read_bookings(ha_settings.kafka_bootstrap, ha_settings.ledger_topic, event_id)
    ledger_ids = {b["booking_id"] for b in ledger}
    assert {b["booking_id"] for b in run.bookings} <= ledger_ids
    # ... and every booking in the ledger was confirmed to its buyer (none paid and told no)
    assert ledger_ids == {b["booking_id"] for b in run.bookings}
    # 0 seats sold twice, in the ledger and in what the buyers were told
    ledger_seats = [s for b in ledger for s in b["seat_ids"]]
    assert len(ledger_seats) == len(set(ledger_seats))
    told = [s for b in run.bookings for s in b["seat_ids"]]
    assert len(told) == len(set(told))

    # 0 users lost or stuck: everyone who joined was admitted or told sold out, and the
    # on-sale sold out
    assert len(run.outcome) == FIRST_WAVE + SECOND_WAVE
    stuck = {u: s for u, s in run.outcome.items() if s not in ("bought", "sold_out")
             and not s.startswith("admitted")}
    assert not stuck
    assert len(ledger_seats) == ROWS * SEATS_PER_ROW


def test_a_restart_brings_the_killed_node_back_as_a_replica_of_the_new_primary(
        ha_api: str, stack_state_dir: Path) -> None:
    """After the failover above, starting the topology again (`up --ha` does) asks the
    Sentinels who is primary and starts the killed node as its replica."""
    before = sentinel.current_primary(stack_state_dir, TEST_SENTINEL_PORTS, -1)
    sentinel.start(TEST_REDIS_HA_PORTS[0], TEST_REDIS_HA_PORTS[1:], TEST_SENTINEL_PORTS,
                   stack_state_dir)
    master = sentinel.sentinel_master(TEST_SENTINEL_PORTS[0])
    assert master is not None and int(master["port"]) == before
    assert master["num-slaves"] == "2" and master["num-other-sentinels"] == "2"
    for port in TEST_REDIS_HA_PORTS:
        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        info = client.info("replication")
        client.close()
        assert info["role"] == ("master" if port == before else "slave")
        if port != before:
            assert info["master_port"] == before and info["master_link_status"] == "up"


def test_primary_url_finds_the_primary_through_the_sentinels(
        ha_settings: Settings, stack_state_dir: Path) -> None:
    """Backup and restore take a URL: with Sentinel it is the primary's now (after the
    failover above, not the first primary's)."""
    port = sentinel.current_primary(stack_state_dir, TEST_SENTINEL_PORTS, -1)
    url = redis_clients.primary_url(ha_settings)
    assert url == f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=2, decode_responses=True)
    try:
        assert client.info("replication")["role"] == "master"
    finally:
        client.close()
