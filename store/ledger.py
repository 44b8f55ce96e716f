"""The durable ledger of confirmed bookings: a Kafka topic, acks=all, idempotent producer.

A booking is reported confirmed only after `append` returns, i.e. the broker has it on every
in-sync replica. Records are keyed by event id; the booking id is derived from the hold, so a
re-sent record (after a crash or by a zombie) is a duplicate readers drop, never a second sale.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from domain.errors import Unavailable

LEDGER_PARTITIONS = 4


def ensure_topic(bootstrap: str, topic: str, partitions: int = LEDGER_PARTITIONS) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketing-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


class Ledger:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1,
            key_serializer=str.encode,
            value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode())

    async def append(self, booking: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(Unavailable(f"ledger write failed: {error}"))

        sent = self._producer.send(self._topic, key=booking["event_id"], value=booking)
        sent.add_callback(lambda _meta: loop.call_soon_threadsafe(settle, None))
        sent.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc))
        try:
            await asyncio.wait_for(done, self._timeout_s)
        except TimeoutError as exc:
            raise Unavailable("ledger write timed out") from exc

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
