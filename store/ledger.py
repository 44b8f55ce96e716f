"""The durable ledger of confirmed bookings: a Kafka topic, acks=all, idempotent producer.

A booking is reported confirmed only after `append_batch` returns, i.e. the broker has it on
every in-sync replica. A seat block's checkout batch goes out as one record batch (one produce
request, written to its partition all or nothing) and is answered as a whole: either every
booking of it is acknowledged, or the call raises and the caller confirms none of them.
Records are keyed by event id (the partition is the Java client's murmur2 of it, which
`read_bookings` reads back); the booking id is derived from the hold, so a re-sent record
(after a failed produce that did land, a crash, or a zombie) is a duplicate readers drop,
never a second sale.

The producer is aiokafka on the owner's event loop, as the join log's: appending a batch is a
builder call per booking and one send, with no sender thread and no per-record future.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from domain.errors import Unavailable
from store.metrics import LEDGER_APPEND
from store.records import compact_json

MAX_BATCH_BYTES = 512 * 1024  # below the broker's default message.max.bytes (1 MiB)


class Ledger:
    """The ledger's producer, started again after a failed write: an idempotent producer whose
    broker restarted can stay stuck on its sequence numbers and time out every write after
    (the 100,000-user on-sale with `restart-kafka@10` confirmed nothing more once the broker
    was back, and every held seat stayed held)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float,
                 bootstrap: str = "") -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s
        self._bootstrap = bootstrap
        self._partitions: list[int] = []
        self._acked = LEDGER_APPEND.bind("ok")
        self._failed = LEDGER_APPEND.bind("failed")
        self._suspect: AIOKafkaProducer | None = None  # the producer a write failed on
        self._restarting = asyncio.Lock()
        self.restarts = 0  # producers started again after a failed write (tests, operators)

    @classmethod
    async def start(cls, bootstrap: str, topic: str, timeout_s: float) -> Ledger:
        """Connect in the running loop; raises Unavailable when the broker cannot be reached."""
        return cls(await _producer(bootstrap, timeout_s), topic, timeout_s, bootstrap)

    async def append(self, booking: dict[str, Any]) -> None:
        await self.append_batch([booking])

    async def append_batch(self, bookings: list[dict[str, Any]]) -> None:
        """Returns once every booking is acknowledged; raises Unavailable otherwise (then some
        may still have been written: the caller treats them as not confirmed, and a re-send or
        a replay of the same booking id is harmless). Its time goes to LEDGER_APPEND by outcome:
        the ledger's lag as the checkouts see it."""
        started = time.perf_counter()
        producer = self._producer
        try:
            if self._suspect is producer:
                producer = await self._restart(producer)
            await asyncio.wait_for(self._send(producer, bookings), self._timeout_s)
        except TimeoutError as exc:
            self._failed_on(producer, started)
            raise Unavailable("kafka write timed out") from exc
        except (KafkaError, OSError) as exc:
            self._failed_on(producer, started)
            raise Unavailable(f"kafka write failed: {exc!r}") from exc
        self._acked.observe(time.perf_counter() - started)

    def _failed_on(self, producer: AIOKafkaProducer, started: float) -> None:
        self._failed.observe(time.perf_counter() - started)
        if producer is self._producer:
            self._suspect = producer

    async def _restart(self, suspect: AIOKafkaProducer) -> AIOKafkaProducer:
        """A new producer in place of `suspect` (once, however many writes ask at the same
        time); raises Unavailable while the broker is still away."""
        async with self._restarting:
            if self._producer is suspect and self._bootstrap:
                self._producer = await _producer(self._bootstrap, self._timeout_s)
                self._partitions = []
                self.restarts += 1
                asyncio.get_running_loop().create_task(_stop(suspect, self._timeout_s))
            return self._producer

    async def _send(self, producer: AIOKafkaProducer, bookings: list[dict[str, Any]]) -> None:
        if not self._partitions:
            self._partitions = sorted(await producer.partitions_for(self._topic))
        by_event: dict[str, list[dict[str, Any]]] = {}
        for booking in bookings:
            by_event.setdefault(booking["event_id"], []).append(booking)
        acks = []
        for event_id, group in by_event.items():
            partition = partition_of(event_id, self._partitions)
            for builder in _builders(producer, event_id, group):
                acks.append(await producer.send_batch(builder, self._topic, partition=partition))
        await asyncio.gather(*acks)

    async def close(self) -> None:
        await self._producer.stop()


async def _producer(bootstrap: str, timeout_s: float) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        max_batch_size=MAX_BATCH_BYTES, request_timeout_ms=int(timeout_s * 1000),
        key_serializer=str.encode, value_serializer=lambda v: compact_json(v).encode())
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await producer.stop()
        raise Unavailable(f"kafka unreachable: {exc!r}") from exc
    return producer


async def _stop(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop a replaced producer without waiting on it (what it still held failed already)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout_s)


def _builders(producer: AIOKafkaProducer, key: str, group: list[dict[str, Any]]) -> list[Any]:
    """The group's records in as few record batches as fit (one for any checkout batch
    within CHECKOUT_BATCH_MAX_LIMIT)."""
    builders = [producer.create_batch()]
    for booking in group:
        if builders[-1].append(key=key, value=booking, timestamp=None) is None:
            builders.append(producer.create_batch())
            builders[-1].append(key=key, value=booking, timestamp=None)
    return builders


def read_bookings(bootstrap: str, topic: str, event_id: str, block: int | None = None,
                  timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every booking of `event_id` (and `block`) in the ledger, deduplicated by booking id.

    Blocking: owners call it through a thread at every activation; tests call it to audit.
    Only the event's own partition is read (records are keyed by event id and the topic's
    partition count is fixed at creation), so an activation costs the event's bookings, not
    the whole platform's.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             value_deserializer=json.loads)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or set())
        if not parts:
            return []
        partitions = [TopicPartition(topic, partition_of(event_id, parts))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return _drain(consumer, partitions, event_id, block, time.monotonic() + timeout_s)
    finally:
        consumer.close()


def partition_of(event_id: str, partitions: list[int]) -> int:
    """The partition the producer's default (murmur2, Java-compatible) partitioner picks."""
    return partitions[(murmur2(event_id.encode()) & 0x7FFFFFFF) % len(partitions)]


def _drain(consumer: KafkaConsumer, partitions: list[TopicPartition], event_id: str,
           block: int | None, deadline: float) -> list[dict[str, Any]]:
    ends = consumer.end_offsets(partitions)
    found: dict[str, dict[str, Any]] = {}
    while any(consumer.position(p) < ends[p] for p in partitions):
        if time.monotonic() > deadline:
            raise Unavailable("ledger replay timed out")
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                booking = record.value
                if booking.get("event_id") == event_id and block in (None, booking.get("block")):
                    found.setdefault(booking["booking_id"], booking)
    return list(found.values())
