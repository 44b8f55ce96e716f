"""The durable ledger of confirmed bookings: a Kafka topic, acks=all, idempotent producer.

A booking is reported confirmed only after `append` returns, i.e. the broker has it on every
in-sync replica. Records are keyed by event id; the booking id is derived from the hold, so a
re-sent record (after a crash or by a zombie) is a duplicate readers drop, never a second sale.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from domain.errors import Unavailable
from store.kafka_io import durable_producer, send_acked


class Ledger:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._producer = durable_producer(bootstrap)

    async def append(self, booking: dict[str, Any]) -> None:
        await send_acked(self._producer, self._topic, booking["event_id"], booking,
                         self._timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=5)


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
