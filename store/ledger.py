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
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from domain.errors import Unavailable
from store.metrics import LEDGER_APPEND
from store.producer import Producer

MAX_BATCH_BYTES = 512 * 1024  # below the broker's default message.max.bytes (1 MiB)


class Ledger:
    """Appends checkout batches to the ledger topic through the process's `store.producer`
    (started again after a failed write)."""

    def __init__(self, kafka: Producer, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self._partitions: list[int] = []
        self._acked = LEDGER_APPEND.bind("ok")
        self._failed = LEDGER_APPEND.bind("failed")

    @classmethod
    async def start(cls, bootstrap: str, topic: str, timeout_s: float) -> Ledger:
        """Connect in the running loop; raises Unavailable when the broker cannot be reached."""
        return cls(await Producer.start(bootstrap, timeout_s, max_batch_size=MAX_BATCH_BYTES),
                   topic)

    @property
    def restarts(self) -> int:
        return self._kafka.restarts

    async def append(self, booking: dict[str, Any]) -> None:
        await self.append_batch([booking])

    async def append_batch(self, bookings: list[dict[str, Any]]) -> None:
        """Returns once every booking is acknowledged; raises Unavailable otherwise (then some
        may still have been written: the caller treats them as not confirmed, and a re-send or
        a replay of the same booking id is harmless). Its time goes to LEDGER_APPEND by outcome:
        the ledger's lag as the checkouts see it."""
        started = time.perf_counter()
        try:
            producer = await self._kafka.current()
        except Unavailable:
            self._failed.observe(time.perf_counter() - started)
            raise
        try:
            await asyncio.wait_for(self._send(producer, bookings), self._kafka.timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            self._failed.observe(time.perf_counter() - started)
            self._kafka.failed(producer)
            raise Unavailable(f"kafka write failed: {exc!r}") from exc
        self._acked.observe(time.perf_counter() - started)

    async def partitions(self, producer: AIOKafkaProducer | None = None) -> list[int]:
        """The ledger topic's partitions (fixed at creation, so read once)."""
        if not self._partitions:
            producer = producer or await self._kafka.current()
            self._partitions = sorted(await producer.partitions_for(self._topic))
        return self._partitions

    async def _send(self, producer: AIOKafkaProducer, bookings: list[dict[str, Any]]) -> None:
        partitions = await self.partitions(producer)
        by_event: dict[str, list[dict[str, Any]]] = {}
        for booking in bookings:
            by_event.setdefault(booking["event_id"], []).append(booking)
        acks = []
        for event_id, group in by_event.items():
            partition = partition_of(event_id, partitions)
            for builder in _builders(producer, event_id, group):
                acks.append(await producer.send_batch(builder, self._topic, partition=partition))
        await asyncio.gather(*acks)

    async def close(self) -> None:
        await self._kafka.stop()


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
