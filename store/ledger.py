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

    Blocking: owners call it through a thread at recovery; tests call it to audit.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             value_deserializer=json.loads)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in parts]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return _drain(consumer, partitions, event_id, block, time.monotonic() + timeout_s)
    finally:
        consumer.close()


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
