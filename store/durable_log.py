"""Small durable logs beside the ledger: Kafka topics keyed by event id, acks=all, idempotent.

Redis is the platform's working memory; what it cannot lose without breaking a promise is
also written here first: event definitions (with the lottery seed, `store.catalog_log`) and
admissions (`store.admissions`). After a Redis that lost writes, or an empty one, the owners
read them back (docs/design.md, "Losing Redis"). Records are keyed by event id and sent to
the partition the ledger's partitioner picks for it, so one event's records stay in order and
reading one event reads one partition.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from kafka import KafkaConsumer, TopicPartition

from domain.errors import Unavailable
from store.ledger import partition_of
from store.producer import Producer


class DurableLog:
    """The small logs' writes, through the process's `store.producer` (one connection, many
    topics; started again after a failed write)."""

    def __init__(self, kafka: Producer) -> None:
        self._kafka = kafka
        self._partitions: dict[str, list[int]] = {}

    @classmethod
    async def start(cls, bootstrap: str, timeout_s: float) -> DurableLog:
        return cls(await Producer.start(bootstrap, timeout_s))

    @property
    def restarts(self) -> int:
        return self._kafka.restarts

    async def append(self, topic: str, key: str, value: dict[str, Any]) -> None:
        """Returns once the broker acknowledged the record; raises Unavailable otherwise."""
        producer = await self._kafka.current()
        try:
            await asyncio.wait_for(self._send(producer, topic, key, value), self._kafka.timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            self._kafka.failed(producer)
            raise Unavailable(f"kafka write failed: {exc!r}") from exc

    async def _send(self, producer: AIOKafkaProducer, topic: str, key: str,
                    value: dict[str, Any]) -> None:
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await producer.partitions_for(topic))
        partition = partition_of(key, self._partitions[topic])
        await producer.send_and_wait(topic, value, key=key, partition=partition)

    async def close(self) -> None:
        await self._kafka.stop()


def read_log(bootstrap: str, topic: str, key: str | None = None,
             timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every record of `topic` (only `key`'s, from its partition, when given), in log order,
    up to the end offsets found at the start. Blocking: owners call it through a thread."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             value_deserializer=json.loads, key_deserializer=bytes.decode)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or set())
        if not parts:
            return []
        chosen = [partition_of(key, parts)] if key is not None else parts
        partitions = [TopicPartition(topic, p) for p in chosen]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[tuple[int, int, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(p) < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise Unavailable(f"reading {topic} timed out")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if key is None or record.key == key:
                        found.append((record.partition, record.offset, record.value))
        return [value for _, _, value in sorted(found, key=lambda f: (f[0], f[1]))]
    finally:
        consumer.close()
