"""The pool grows onto a new node in the middle of an on-sale; its entities move, nothing is lost.

A pool of its own (Ray namespace, Redis database) whose hosts need the "rebalance" resource,
so they live only on the nodes this test adds: first one with room for two hosts, then, while
buyers hold and check out, a second one, and an event more, so the pool wants a third host and
starts it there. Rendezvous placement then moves to the new host the entities it wins; the
events' ids are chosen so that it wins the on-sale's seat block and the short-hold event's
block (what moves is decided by the ids, not by chance). After the move no seat is sold
twice, every confirmed booking is in the ledger, holds made before it are still active (and
can be bought), and the short holds expire at their new host without any request.

And when the pool shrinks before a host it started ever answered, that host is stopped too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import ray
import redis as redis_sync

from actors import directory
from domain import placement
from domain.errors import CheckoutInProgress, StaleOwner, TicketingError, Unavailable
from domain.event import Event
from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef
from domain.inventory import HoldRequest
from domain.settings import Settings
from domain.venue import Section
from store import keys
from store.ledger import read_bookings
from store.records import decode_hold
from tests.integration.conftest import on_db, stop_event_actors
from tests.integration.test_crash import audit

pytestmark = pytest.mark.integration

RESOURCE = "rebalance"
HOST_CPUS = 0.5
NEW_HOST = 2  # the pool grows from hosts {0, 1} to {0, 1, 2}
SHORT_TTL_S = 25  # outlives the move (node and host start) on a loaded 2-core box
RETRIED = (StaleOwner, Unavailable, CheckoutInProgress)
RETRIES: Counter[str] = Counter()  # what the clients retried, printed for the record


def room_for(hosts: int) -> dict[str, Any]:
    """add_node arguments of a node where exactly `hosts` hosts fit: the resource lets them
    run there (and nowhere else), its CPUs are what they need (see HOST_RESOURCE_SHARE)."""
    return {"num_cpus": hosts * HOST_CPUS, "resources": {RESOURCE: 1}}


def moving_event(serial: int, name: str, ttl_s: int, rows: int) -> Event:
    """An event whose block 0 is on host 0 or 1 in the pool {0, 1} and on NEW_HOST after it
    grows: the first such id from a per-run base (so ledger records of other runs never mix)."""
    before, after = {0, 1}, {0, 1, NEW_HOST}
    base = ((int(time.time() * 1000) & 0xFFFFFFFF) << 16) + serial * 1000  # 12 hex digits
    for n in range(base, base + 1000):
        event_id = f"ev{n:012x}"
        block = placement.block_entity(event_id, 0)
        if placement.owner(block, after) == NEW_HOST != placement.owner(block, before):
            return Event(event_id, name, time.time(), ttl_s, 6, (Section("A", rows, 20, 1000),),
                         2000)
    raise LookupError("no such event id")


async def retrying(call: Callable[[], Awaitable[Any]], attempts: int = 100) -> Any:
    """A client that retries what a moving entity answers (a stale owner, a checkout the old
    host left in progress, a host starting): the same hold id and idempotency key each time."""
    for _ in range(attempts):
        try:
            return await call()
        except RETRIED as error:
            RETRIES[type(error).__name__] += 1
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, TicketingError) and not isinstance(cause, RETRIED):
                raise cause from None
        await asyncio.sleep(0.2)
    raise AssertionError("the entity never answered")


async def where(settings: Settings, entities: set[str]) -> dict[str, int]:
    """Entity -> the host it is active on, asked of every host of the pool."""
    found: dict[str, int] = {}
    for index in range(settings.host_pool_max):
        try:
            host = ray.get_actor(directory.host_name(index), namespace=settings.ray_namespace)
            active: list[str] = await asyncio.wait_for(host.active.remote(), 30)
        except (ValueError, ray.exceptions.RayError, TimeoutError):
            continue  # not started yet
        for entity in set(active) & entities:
            assert entity not in found, f"{entity} is active on two hosts"
            found[entity] = index
    return found


async def wait_for(what: str, check: Callable[[], Awaitable[Any]], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := await check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f}s"
        await asyncio.sleep(0.5)
    return value


def hold_in_store(store: Any, ref: HoldRef, event: Event) -> Hold | None:
    record = store.hget(keys.block_holds(ref.event_id, ref.block), ref.token)
    return None if record is None else decode_hold(record, ref, event.venue.blocks[ref.block])


async def test_entities_move_to_a_new_node_mid_onsale_and_lose_nothing(
        ray_cluster: Any, app_settings: Settings) -> None:
    # The blocks stay active until they move (the suite's 3 s passivation would otherwise race
    # the pool's growth: a short-hold block passivated before the move reaches the new host
    # only at its holds' expiry, and the test is about active entities being handed off).
    settings = on_db(
        app_settings, 4, host_resource=RESOURCE, ray_namespace="rebalance", host_cpus=HOST_CPUS,
        host_pool_min=2, host_pool_max=3, events_per_host=1, passivate_after_s=120.0)
    store = redis_sync.Redis.from_url(settings.redis_url)
    store.flushdb()
    added = [ray_cluster.add_node(**room_for(2))]
    ray_cluster.wait_for_nodes()
    onsale = moving_event(0, "Rebalance on-sale", 600, 100)
    short = moving_event(1, "Rebalance short holds", SHORT_TTL_S, 1)
    filler = moving_event(2, "Rebalance filler", 600, 1)  # one more event: a third host
    events = [onsale, short]
    try:
        for event in events:
            await directory.event_owner(settings, event).create.remote(event)

        async def members_are(wanted: set[int]) -> bool:
            return {int(m) for m in store.smembers(keys.pool_members())} == wanted

        await wait_for("the pool of two starts", lambda: members_are({0, 1}), 120)
        block = directory.seat_block(settings, onsale.event_id, 0)
        short_block = directory.seat_block(settings, short.event_id, 0)
        await retrying(lambda: block.ping.remote())
        await retrying(lambda: short_block.ping.remote())
        entity, short_entity = (placement.block_entity(e.event_id, 0) for e in events)
        moving = {entity, short_entity}

        async def placed_on(hosts: set[int]) -> dict[str, int] | None:
            found = await where(settings, moving)
            return found if found.keys() == moving and set(found.values()) <= hosts else None

        before = await wait_for("both blocks active on the pool of two",
                                lambda: placed_on({0, 1}), 30)

        keepers = [(HoldRef(onsale.event_id, 0, f"{n:016x}").hold_id,
                    HoldRequest(f"keeper{n}", (f"A-10-{n + 1}",))) for n in range(5)]
        kept = await retrying(lambda: block.hold.remote(keepers))
        assert all(isinstance(h, Hold) and h.status is HoldStatus.ACTIVE for h in kept)

        stop = asyncio.Event()
        bought: list[dict[str, Any]] = []
        confirmed_at: list[float] = []

        async def buyer(n: int) -> None:
            """Hold one best seat, then pay for it; again, until told to stop or sold out."""
            for k in range(10_000):
                if stop.is_set():
                    return
                hold_id = HoldRef(onsale.event_id, 0, f"b{n:03x}{k:012x}").hold_id  # not a keeper
                user = f"buyer{n}-{k}"
                request = [(hold_id, HoldRequest(user, quantity=1))]
                [result] = await retrying(partial(block.hold.remote, request))
                if isinstance(result, TicketingError):
                    return  # sold out
                bought.append(await retrying(partial(
                    block.checkout.remote, hold_id, user, f"key-{hold_id}", f"tok_visa_{user}")))
                confirmed_at.append(time.time())
                await asyncio.sleep(0.2)  # paced: the seats outlast the move

        buyers = [asyncio.create_task(buyer(n)) for n in range(8)]
        await asyncio.sleep(1.0)  # the on-sale is under way on the pool of two
        added.append(ray_cluster.add_node(**room_for(2)))
        await asyncio.to_thread(ray_cluster.wait_for_nodes)
        shorts = [(HoldRef(short.event_id, 0, f"{n:016x}").hold_id,
                   HoldRequest(f"short{n}", (f"A-1-{n + 1}",))) for n in range(4)]
        made = await retrying(lambda: short_block.hold.remote(shorts))
        assert all(isinstance(h, Hold) and h.status is HoldStatus.ACTIVE for h in made)
        await directory.event_owner(settings, filler).create.remote(filler)
        events.append(filler)
        await wait_for("the pool grows onto the new node", lambda: members_are({0, 1, 2}), 120)
        await wait_for("both blocks move to the new host", lambda: placed_on({NEW_HOST}), 60)
        moved_at = time.time()
        new_node = await directory.of(settings).host(NEW_HOST).node.remote()
        assert new_node == added[1].node_id, "the new host runs on the new node"
        assert NEW_HOST not in before.values()
        await asyncio.sleep(1.0)  # the on-sale goes on at the new host
        stop.set()
        await asyncio.gather(*buyers)
        assert any(t > moved_at for t in confirmed_at), "checkouts went on after the move"

        # Holds made before the move are still active at the new host, and can be bought.
        again = await retrying(lambda: block.hold.remote(keepers))
        assert [h.status for h in again] == [HoldStatus.ACTIVE] * len(keepers)
        for hold_id, request in keepers[:2]:
            bought.append(await retrying(partial(
                block.checkout.remote, hold_id, request.user_id, f"key-{hold_id}",
                f"tok_visa_{request.user_id}")))

        # The short holds, made before the move, expire at the new host with no request.
        assert all(h.expires_at > moved_at for h in made), "they outlived the move"
        refs = [HoldRef(short.event_id, 0, f"{n:016x}") for n in range(len(shorts))]
        async def expired() -> bool:
            return all(
            (h := hold_in_store(store, r, short)) is not None and h.status is HoldStatus.EXPIRED
                for r in refs)

        await wait_for("the short holds expire", expired, SHORT_TTL_S + 30)
        assert store.bitcount(keys.block_held(short.event_id, 0)) == 0
        assert int(store.hget(keys.available(short.event_id), "0") or 0) == 20

        # The audit: ledger and Redis agree, no seat sold twice, every confirmation recorded.
        sold = audit(store, settings, onsale.event_id)
        ledger = {b["booking_id"] for b in read_bookings(
            settings.kafka_bootstrap, settings.ledger_topic, onsale.event_id)}
        assert {b["booking_id"] for b in bought} <= ledger
        assert len(sold) == len(bought) == len(ledger)
        for hold_id, _ in keepers[2:]:
            held = hold_in_store(store, HoldRef(onsale.event_id, 0, hold_id.rsplit(".", 1)[1]),
                                 onsale)
            assert held is not None and held.status is HoldStatus.ACTIVE
        print(f"sold {len(sold)} seats, {sum(t > moved_at for t in confirmed_at)} after the "
              f"move; retried: {dict(RETRIES)}")
    finally:
        stop_event_actors(settings, [e.event_id for e in events])
        for index in range(settings.host_pool_max):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(directory.host_name(index),
                                       namespace=settings.ray_namespace), no_restart=True)
        for node in added:
            ray_cluster.remove_node(node)
        store.close()


async def test_a_host_started_for_a_pool_that_shrank_before_it_answered_is_stopped(
        ray_cluster: Any, app_settings: Settings) -> None:
    # Its own pool again; its one node has room for host 0 only, so host 1, wanted once a
    # second event opens, stays pending (the demand an autoscaler would answer with a node).
    settings = on_db(
        app_settings, 5, host_resource="pendingpool", ray_namespace="pendingpool", host_cpus=1,
        host_pool_min=1, host_pool_max=2, events_per_host=1)
    store = redis_sync.Redis.from_url(settings.redis_url)
    store.flushdb()
    node = ray_cluster.add_node(num_cpus=1, resources={"pendingpool": 1})
    ray_cluster.wait_for_nodes()
    events = [moving_event(3 + n, "Pending host", 600, 1) for n in range(2)]

    async def host_1_exists() -> bool:
        try:
            ray.get_actor(directory.host_name(1), namespace=settings.ray_namespace)
            return True
        except ValueError:
            return False

    try:
        for event in events:
            await directory.event_owner(settings, event).create.remote(event)
        await wait_for("host 0 starts host 1", host_1_exists, 60)
        await asyncio.sleep(3 * settings.pool_check_interval_s)
        assert {int(m) for m in store.smembers(keys.pool_members())} == {0}, "host 1 is pending"
        stop_event_actors(settings, [e.event_id for e in events])  # the pool wants 1 again

        async def host_1_stopped() -> bool:
            return not await host_1_exists()

        await wait_for("host 1, never a member, is stopped", host_1_stopped, 30)
    finally:
        stop_event_actors(settings, [e.event_id for e in events])
        for index in range(settings.host_pool_max):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(directory.host_name(index),
                                       namespace=settings.ray_namespace), no_restart=True)
        ray_cluster.remove_node(node)
        store.close()


# A hand-off waits for the old host's checkout in flight only up to CHECKOUT_DRAIN_S (the next
# test); one slower than that goes on, and its payment and ledger write are not fenced by the
# epoch: the new host settles the checkout as interrupted (not charged yet: back to active),
# then the old one charges and writes the booking, and only its confirm is refused. The new
# host's sweep must then finish that paid hold at its expiry, never free its seat
# (seat_block._sweep): this test pins it, with a drain far shorter than the payment.
async def test_a_checkout_paid_across_a_move_is_finished_at_expiry_and_never_sold_twice(
        ray_cluster: Any, app_settings: Settings) -> None:
    settings = on_db(
        app_settings, 6, host_resource="zombie", ray_namespace="zombie", host_cpus=HOST_CPUS,
        host_pool_min=2, host_pool_max=3, events_per_host=1, checkout_drain_s=1.0)
    store = redis_sync.Redis.from_url(settings.redis_url)
    store.flushdb()
    node = ray_cluster.add_node(num_cpus=2, resources={"zombie": 1})  # room for 4 hosts
    ray_cluster.wait_for_nodes()
    event = moving_event(5, "Zombie checkout", 30, 1)  # its block moves to host 2
    early, late = (moving_event(6 + n, "Zombie filler", 600, 1) for n in range(2))
    events = [event, early]  # a pool of two; `late` makes it three
    block = directory.seat_block(settings, event.event_id, 0)
    entity = placement.block_entity(event.event_id, 0)

    async def members_are(wanted: set[int]) -> bool:
        return {int(m) for m in store.smembers(keys.pool_members())} == wanted

    try:
        for created in events:
            await directory.event_owner(settings, created).create.remote(created)
        await wait_for("the pool of two starts", lambda: members_are({0, 1}), 120)
        first = HoldRef(event.event_id, 0, f"{1:016x}").hold_id
        [held] = await retrying(lambda: block.hold.remote([(first, HoldRequest("first",
                                                                               ("A-1-1",)))]))
        assert isinstance(held, Hold)
        await block.set_delay.remote("before_charge", 20.0)  # on the old host only
        checkout = asyncio.ensure_future(block.checkout.remote(first, "first", "k1", "tok_visa"))
        await asyncio.sleep(0.5)
        await directory.event_owner(settings, late).create.remote(late)
        events.append(late)

        async def moved() -> bool:
            return (await where(settings, {entity})).get(entity) == NEW_HOST

        await wait_for("the block moves to the new host", moved, 19)
        with contextlib.suppress(Exception):  # the old host's confirm is refused: no retry
            await checkout

        def first_in_store() -> Hold | None:
            return hold_in_store(store, HoldRef(event.event_id, 0, f"{1:016x}"), event)

        async def first_settled() -> bool:
            hold = first_in_store()
            return hold is not None and hold.status in (HoldStatus.CONFIRMED, HoldStatus.EXPIRED)

        await wait_for("the first hold is settled at its expiry", first_settled, 60)
        settled = first_in_store()
        assert settled is not None and settled.status is HoldStatus.CONFIRMED, (
            "a paid hold was expired")
        second = HoldRef(event.event_id, 0, f"{2:016x}").hold_id
        [again] = await retrying(lambda: block.hold.remote([(second, HoldRequest("second",
                                                                                ("A-1-1",)))]))
        assert not isinstance(again, Hold), "the paid seat was held again"
        assert audit(store, settings, event.event_id) == ["A-1-1"]  # one booking, in the ledger
    finally:
        stop_event_actors(settings, [e.event_id for e in events])
        for index in range(settings.host_pool_max):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(directory.host_name(index),
                                       namespace=settings.ray_namespace), no_restart=True)
        ray_cluster.remove_node(node)
        store.close()


PAYMENT_S = 20.0  # the old host's payment: longer than the pool takes to grow


async def test_a_checkout_in_flight_at_a_move_is_answered_before_the_new_host_takes_over(
        ray_cluster: Any, app_settings: Settings) -> None:
    """The hand-off drains (CHECKOUT_DRAIN_S, longer than the payment here): the old host
    finishes the checkout it is paying for under its own epoch and its buyer hears the
    booking; only then does the new host activate the block, and finds the hold confirmed."""
    settings = on_db(
        app_settings, 9, host_resource="drain", ray_namespace="drain", host_cpus=HOST_CPUS,
        host_pool_min=2, host_pool_max=3, events_per_host=1, checkout_drain_s=3 * PAYMENT_S)
    store = redis_sync.Redis.from_url(settings.redis_url)
    store.flushdb()
    node = ray_cluster.add_node(num_cpus=2, resources={"drain": 1})  # room for 4 hosts
    ray_cluster.wait_for_nodes()
    event = moving_event(8, "Drained checkout", 600, 1)  # its block moves to host 2
    early, late = (moving_event(9 + n, "Drain filler", 600, 1) for n in range(2))
    events = [event, early]  # a pool of two; `late` makes it three
    block = directory.seat_block(settings, event.event_id, 0)
    entity = placement.block_entity(event.event_id, 0)

    async def members_are(wanted: set[int]) -> bool:
        return {int(m) for m in store.smembers(keys.pool_members())} == wanted

    try:
        for created in events:
            await directory.event_owner(settings, created).create.remote(created)
        await wait_for("the pool of two starts", lambda: members_are({0, 1}), 120)
        ref = HoldRef(event.event_id, 0, f"{1:016x}")
        [held] = await retrying(lambda: block.hold.remote([(ref.hold_id,
                                                            HoldRequest("first", ("A-1-1",)))]))
        assert isinstance(held, Hold)
        old_host = (await where(settings, {entity}))[entity]
        assert old_host != NEW_HOST
        await block.set_delay.remote("before_charge", PAYMENT_S)  # on the old host only
        checkout = asyncio.ensure_future(block.checkout.remote(ref.hold_id, "first", "k1",
                                                               "tok_visa"))
        await asyncio.sleep(0.5)
        await directory.event_owner(settings, late).create.remote(late)
        events.append(late)
        await wait_for("the pool grows", lambda: members_are({0, 1, NEW_HOST}), PAYMENT_S - 2)
        assert not checkout.done(), "the move must start while the checkout is in flight"
        booking = await checkout  # answered by the old host, not refused as stale
        assert booking["hold_id"] == ref.hold_id and booking["seat_ids"] == ["A-1-1"]
        answered_at = time.time()

        async def moved() -> bool:
            return (await where(settings, {entity})).get(entity) == NEW_HOST

        await wait_for("the block moves to the new host", moved, 60)
        activated_at = store.get(keys.block_epoch(event.event_id, 0))
        assert activated_at is not None and int(activated_at) >= int(answered_at * 1000) - 1000, (
            "the new host took the block over before the old one answered")
        hold = hold_in_store(store, ref, event)
        assert hold is not None and hold.status is HoldStatus.CONFIRMED
        assert audit(store, settings, event.event_id) == ["A-1-1"]  # one booking, in the ledger
    finally:
        stop_event_actors(settings, [e.event_id for e in events])
        for index in range(settings.host_pool_max):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(directory.host_name(index),
                                       namespace=settings.ray_namespace), no_restart=True)
        ray_cluster.remove_node(node)
        store.close()
