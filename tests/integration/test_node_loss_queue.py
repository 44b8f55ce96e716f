"""A node hosting the waiting room, its ingest and its seat block is lost mid-on-sale while fans
join (issue 9, "node loss under load"): nobody who joined is lost, stuck or admitted twice,
and no seat is sold twice.

A pool of its own (Ray namespace, Redis database) whose hosts need the "roomnode" resource, so
they all live on the node this test adds. Fans join through the joins topic as the ingress
writes it (stamped now, a few per 100 ms); buyers take each admission, hold a seat and pay.
In the middle of the on-sale a second node is added and the first removed: Ray restarts the
hosts there, and the busy room and ingest come back through their heartbeats in the due index
(no request wakes them: the joins go on reaching Kafka while they are gone). At the end every
fan is either admitted exactly once (and bought, or was refused a seat) or waits in a room
that says sold out; the ledger and Redis agree and no seat is in two bookings.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from typing import Any, cast

import pytest
import ray
import redis as redis_sync
from confluent_kafka import Producer

from actors import directory
from domain.errors import CheckoutInProgress, StaleOwner, TicketingError, Unavailable
from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef, ticket_id_for
from domain.inventory import HoldRequest
from domain.settings import Settings
from domain.venue import Section
from store import joins, keys
from store.kafka_io import ensure_topic
from store.queue import decode_admission
from tests.integration.conftest import on_db, stop_pool
from tests.integration.test_crash import audit

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

RESOURCE = "roomnode"
FANS = 90
SEATS = 40  # fewer than the fans: the room ends sold out
JOIN_EVERY_S = 0.1
RETRIED = (StaleOwner, Unavailable, CheckoutInProgress)


async def retrying(call: Any, attempts: int = 400) -> Any:
    """A client that retries what a host restarting answers (the same ids each time)."""
    for _ in range(attempts):
        try:
            return await asyncio.wait_for(call(), 30)
        except RETRIED:
            pass
        except (ray.exceptions.RayError, TimeoutError) as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, TicketingError) and not isinstance(cause, RETRIED):
                raise cause from None
        await asyncio.sleep(0.25)
    raise AssertionError("the entity never answered")


def fans_join(settings: Settings, event_id: str, tickets: list[str], stop_at: list[float]) -> None:
    """FANS joins, one every JOIN_EVERY_S, as the ingress writes them (acknowledged)."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2})
    for n in range(FANS):
        user = f"fan{n:03d}"
        ticket = ticket_id_for(settings.token_secret, event_id, user)
        record = joins.encode(ticket, event_id, user, int(time.time() * 1000), 3, True, None)
        producer.produce(settings.joins_topic(event_id),
                         json.dumps(record, separators=(",", ":")).encode(), ticket.encode(),
                         partition=joins.partition_of(ticket, settings.join_partitions))
        assert producer.flush(30) == 0
        tickets.append(ticket)
        time.sleep(JOIN_EVERY_S)
    stop_at.append(time.time())


async def test_losing_the_node_of_the_room_mid_onsale_loses_and_doubles_nobody(
        ray_cluster: Any, app_settings: Settings) -> None:
    settings = on_db(
        app_settings, 8, host_resource=RESOURCE, ray_namespace="roomloss", host_cpus=0.5,
        host_pool_min=2, host_pool_max=2, passivate_after_s=30, admission_ttl_s=600)
    store = redis_sync.Redis.from_url(settings.redis_url)
    store.flushdb()
    nodes = [ray_cluster.add_node(num_cpus=1, resources={RESOURCE: 1})]
    ray_cluster.wait_for_nodes()
    event = Event(f"ev{int(time.time() * 1000) + 11:012x}", "Node loss queue", time.time() - 5,
                  600, 6, (Section("A", 2, SEATS // 2, 1000),), 2000, admission_rate_per_s=6)
    eid = event.event_id
    tickets: list[str] = []
    joined_until: list[float] = []
    bought: dict[str, str] = {}  # ticket -> booking id
    refused: set[str] = set()  # admitted, but no seat was left
    handled: set[str] = set()
    block = directory.seat_block(settings, eid, 0)
    try:
        await directory.event_owner(settings, event).create.remote(event)
        ensure_topic(settings.kafka_bootstrap, settings.joins_topic(eid), settings.join_partitions)
        await retrying(lambda: asyncio.gather(*[h.ping.remote() for h in [
            directory.waiting_room(settings, eid), block] + [
            directory.ingest(settings, eid, i) for i in range(settings.ingest_actors)]]))
        joining = asyncio.ensure_future(asyncio.to_thread(fans_join, settings, eid, tickets,
                                                          joined_until))

        async def buy(ticket: str, user: str) -> None:
            hold_id = HoldRef(eid, 0, f"{tickets.index(ticket):016x}").hold_id
            request = [(hold_id, HoldRequest(user, quantity=1))]
            [result] = await retrying(partial(block.hold.remote, request))
            if not isinstance(result, Hold):
                refused.add(ticket)
                return
            booking = await retrying(partial(block.checkout.remote, hold_id, user,
                                             f"key-{hold_id}", f"tok_visa_{user}"))
            bought[ticket] = booking["booking_id"]

        async def buyers() -> None:
            """Each admission is used once: hold one best seat and pay for it."""
            while not (joining.done() and sold_out_or_all_admitted()):
                admitted = cast(dict[bytes, bytes], store.hgetall(keys.queue_admitted(eid)))
                fresh = {t.decode(): decode_admission(a).user_id for t, a in admitted.items()
                         if t.decode() not in handled}
                handled.update(fresh)
                await asyncio.gather(*[buy(t, u) for t, u in fresh.items()])
                await asyncio.sleep(0.2)

        def sold_out_or_all_admitted() -> bool:
            room = store.hgetall(keys.room(eid))
            admitted = store.hlen(keys.queue_admitted(eid))
            queued = int(room.get(b"tail", 0))  # everyone ever placed in the line
            return queued >= FANS and (admitted >= FANS or (
                room.get(b"sold_out") == b"1" and len(handled) == admitted))

        buying = asyncio.ensure_future(buyers())
        while len(tickets) < FANS // 3:  # the on-sale is under way
            await asyncio.sleep(0.2)
        nodes.append(ray_cluster.add_node(num_cpus=1, resources={RESOURCE: 1}))
        await asyncio.to_thread(ray_cluster.wait_for_nodes)
        ray_cluster.remove_node(nodes.pop(0))  # the room, its ingest and its block go with it
        lost_at = time.time()
        await asyncio.wait_for(joining, 120)
        await asyncio.wait_for(buying, 300)
        await asyncio.sleep(1.5)  # anything admitted twice would show by now

        log = [json.loads(raw)["ticket_id"] for raw in store.lrange(keys.queue_log(eid), 0, -1)]
        assert len(log) == len(set(log)), "someone was admitted twice"
        places = cast(list[bytes], store.hkeys(keys.queue_places(eid)))  # admitted leave it
        waiting = {t.decode() for t in places}
        assert waiting | set(log) == set(tickets) and not waiting & set(log), (
            "someone who joined was lost, or is both waiting and admitted")
        assert int(store.hget(keys.room(eid), "tail") or 0) == FANS, "someone queued twice"
        assert set(log) == handled and set(bought) | refused == handled, "an admission unused"
        assert not waiting or store.hget(keys.room(eid), "sold_out") == b"1", (
            "fans wait in a room that is not sold out: stuck")
        sold = audit(store, settings, eid)
        assert len(sold) == len(bought) == SEATS, "every seat sold once, each to one buyer"
        assert joined_until and joined_until[0] > lost_at, "fans joined after the node was lost"
        print(f"{len(tickets)} joined, {len(log)} admitted, {len(bought)} bought, "
              f"{len(refused)} refused, {len(waiting)} told sold out")
    finally:
        stop_pool(settings, ray_cluster, [eid], nodes)
        store.close()
