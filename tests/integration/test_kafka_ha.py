"""HA mode's Kafka (infra/kafka_cluster.py): a broker killed during checkouts loses no booking.

Three KRaft nodes (session fixture `kafka_ha_bootstrap`), the ledger topic with three replicas
and `min.insync.replicas=2`, the ledger's producer acks=all and idempotent. A seat block (the
entity a pool host runs, here in the test's own event loop on the real Redis and the real
cluster, so the test needs no Ray) sells a small event to buyers who hold a seat and check
out, retrying with their idempotency key while the checkout answers `Unavailable`, as a
client does on a 503. Mid-way the leader of the event's ledger partition is killed with
SIGKILL. Afterwards an independent consumer reads the ledger: every checkout that was
answered with a booking is in it, no seat is in two bookings, Redis and the ledger agree,
and the time from the kill until a checkout begun after it is confirmed (the RTO) is printed.
The killed node is started again and rejoins the partition's in-sync replicas.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from actors.host import Shared
from actors.seat_block import SeatBlock
from domain.errors import Unavailable
from domain.event import Event
from domain.holds import Hold
from domain.ids import HoldRef
from domain.inventory import HoldRequest
from domain.settings import Settings
from domain.venue import Section
from infra import credentials, kafka_cluster
from store import catalog, keys
from store.ledger import partition_of, read_bookings
from tests.conftest import TEST_KAFKA_HA_BASE_PORT, TEST_KAFKA_HA_HEAP

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ROWS, SEATS_PER_ROW = 6, 20  # 120 seats, one block, one buyer each
BUYERS_AT_ONCE = 8
KILL_AFTER_CONFIRMED = 30
RTO_LIMIT_S = 30.0
CHECKOUT_DEADLINE_S = 90.0


@pytest.fixture
def ha_settings(redis_url: str, kafka_ha_bootstrap: str, ntp_server: str) -> Settings:
    return Settings.from_env(
        environ={}, redis_url=redis_url.rsplit("/", 1)[0] + "/6",
        kafka_bootstrap=kafka_ha_bootstrap, ntp_servers=(ntp_server,),
        kafka_topic_prefix=f"ha{uuid.uuid4().hex[:10]}", kafka_replication_factor=3,
        kafka_min_insync_replicas=2, **credentials.random_settings_secrets())


async def test_a_ledger_leader_killed_during_checkouts_loses_no_confirmed_booking(
        ha_settings: Settings, stack_state_dir: Path) -> None:
    s = ha_settings
    store = redis_sync.Redis.from_url(s.redis_url)
    store.flushdb()
    event = Event(f"ev{int(time.time() * 1000):012x}", "Kafka HA", time.time(), 600, 6,
                  (Section("A", ROWS, SEATS_PER_ROW, 1000),), ROWS * SEATS_PER_ROW)
    redis = Redis.from_url(s.redis_url)
    await catalog.save_event(redis, event, time.time())
    shared = Shared(s)
    block = SeatBlock(s, event.event_id, 0, shared)
    await block.activate()

    parts = await (await shared.ledger()).partitions()
    partition = partition_of(event.event_id, parts)
    leader, isr = kafka_cluster.partition_state(s.kafka_bootstrap, s.ledger_topic, partition)
    assert len(isr) == 3, "the ledger partition is not on three in-sync replicas"

    seats = [f"A-{r}-{n}" for r in range(1, ROWS + 1) for n in range(1, SEATS_PER_ROW + 1)]
    confirmed: dict[str, dict[str, Any]] = {}  # hold id -> the booking the buyer was told
    attempts: list[tuple[float, float, bool]] = []  # (began, ended, confirmed) per call
    killed_at: list[float] = []
    kill_now = asyncio.Event()

    async def buy(n: int) -> None:
        hold_id = HoldRef(event.event_id, 0, f"{n + 1:016x}").hold_id
        [hold] = await block.hold([(hold_id, HoldRequest(f"buyer{n}", (seats[n],)))])
        assert isinstance(hold, Hold), hold
        deadline = time.monotonic() + CHECKOUT_DEADLINE_S
        while True:
            began = time.monotonic()
            try:
                booking = await block.checkout(hold.hold_id, hold.user_id, f"key{n}",
                                               f"tok_visa_{n}")
            except Unavailable:
                attempts.append((began, time.monotonic(), False))
                assert time.monotonic() < deadline, "checkouts never came back"
                await asyncio.sleep(0.2)
                continue
            attempts.append((began, time.monotonic(), True))
            confirmed[hold.hold_id] = booking
            if len(confirmed) >= KILL_AFTER_CONFIRMED:
                kill_now.set()
            return

    async def buyers() -> None:
        todo = iter(range(len(seats)))

        async def lane() -> None:
            for n in todo:
                await buy(n)

        await asyncio.gather(*(lane() for _ in range(BUYERS_AT_ONCE)))

    async def killer() -> None:
        await kill_now.wait()
        node = next(n for n in kafka_cluster.nodes_at(TEST_KAFKA_HA_BASE_PORT)
                    if n.node_id == leader)
        killed_at.append(time.monotonic())
        await asyncio.to_thread(kafka_cluster.kill_node, node, stack_state_dir)

    try:
        await asyncio.gather(buyers(), killer())
    finally:
        await block.deactivate()
        await (await shared.ledger()).close()
        await shared.redis.aclose()
        await redis.aclose()
    assert killed_at, "the broker was never killed"
    after = [ended for began, ended, ok in attempts if ok and began >= killed_at[0]]
    rto_s = min(after) - killed_at[0]
    failed = sum(1 for _, _, ok in attempts if not ok)
    print(f"\nkafka HA: leader node {leader} of partition {partition} killed after "
          f"{KILL_AFTER_CONFIRMED} bookings; RTO {rto_s:.2f} s; {failed} checkout calls "
          f"answered Unavailable meanwhile; {len(confirmed)} bookings confirmed")
    assert rto_s < RTO_LIMIT_S

    ledger = await asyncio.to_thread(read_bookings, s.kafka_bootstrap, s.ledger_topic,
                                     event.event_id)  # a new consumer, the two live brokers
    in_ledger = {b["booking_id"]: b for b in ledger}
    lost = [b["booking_id"] for b in confirmed.values() if b["booking_id"] not in in_ledger]
    assert lost == [], f"{len(lost)} confirmed bookings are not in the ledger"
    sold = [seat for b in ledger for seat in b["seat_ids"]]
    assert len(sold) == len(set(sold)), "a seat was sold twice"
    assert sorted(sold) == sorted(seats)
    assert len(store.hgetall(keys.bookings(event.event_id))) == len(ledger)
    assert store.bitcount(keys.block_sold(event.event_id, 0)) == len(sold)

    node = next(n for n in kafka_cluster.nodes_at(TEST_KAFKA_HA_BASE_PORT) if n.node_id == leader)
    await asyncio.to_thread(kafka_cluster.start_node, node,
                            kafka_cluster.nodes_at(TEST_KAFKA_HA_BASE_PORT), stack_state_dir,
                            TEST_KAFKA_HA_HEAP)
    deadline = time.monotonic() + 60
    while len(kafka_cluster.partition_state(s.kafka_bootstrap, s.ledger_topic, partition)[1]) < 3:
        assert time.monotonic() < deadline, "the restarted node never caught up"
        await asyncio.sleep(0.5)
    store.close()


def offsets_partition(group: str) -> int:
    """The `__consumer_offsets` partition of a group (Kafka: abs(String.hashCode) % count)."""
    h = 0
    for char in group:
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % kafka_cluster.OFFSETS_PARTITIONS


def test_a_consumer_group_resumes_from_its_committed_offset_after_its_coordinator_is_killed(
        ha_settings: Settings, stack_state_dir: Path) -> None:
    """The join consumer's client (librdkafka) commits to its group; the broker leading the
    group's `__consumer_offsets` partition (its coordinator) is killed; the group's next
    consumer starts exactly after the committed record, none skipped, none read twice."""
    from confluent_kafka import Consumer, Producer

    from store.kafka_io import ensure_topic

    bootstrap, topic, group = ha_settings.kafka_bootstrap, f"{ha_settings.joins_group}.t", \
        f"{ha_settings.joins_group}-resume"
    ensure_topic(bootstrap, topic, 1, 3, 2)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2})

    def produce(first: int, count: int) -> None:
        for n in range(first, first + count):
            producer.produce(topic, key=str(n), value=str(n))
        assert producer.flush(60) == 0, "records not acknowledged"

    def consumer() -> Consumer:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        return c

    def read(c: Consumer, count: int) -> list[int]:
        values: list[int] = []
        deadline = time.monotonic() + 60
        while len(values) < count:
            assert time.monotonic() < deadline, f"read {values}"
            message = c.poll(0.5)
            if message is not None and message.error() is None:
                values.append(int(cast(bytes, message.value())))
        return values

    produce(0, 20)
    first = consumer()
    assert read(first, 10) == list(range(10))
    first.commit(asynchronous=False)
    first.close()

    coordinator, _ = kafka_cluster.partition_state(bootstrap, "__consumer_offsets",
                                                   offsets_partition(group))
    nodes = kafka_cluster.nodes_at(TEST_KAFKA_HA_BASE_PORT)
    node = next(n for n in nodes if n.node_id == coordinator)
    kafka_cluster.kill_node(node, stack_state_dir)
    try:
        produce(20, 10)  # acknowledged by the two that are left
        second = consumer()
        assert read(second, 20) == list(range(10, 30))
        second.close()
    finally:
        kafka_cluster.start_node(node, nodes, stack_state_dir, TEST_KAFKA_HA_HEAP)
