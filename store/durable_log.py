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
import contextlib
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from kafka import KafkaConsumer, TopicPartition

from domain.errors import Unavailable
from store.ledger import partition_of
from store.records import compact_json


class DurableLog:
    """One producer for every small log of a process (one connection, many topics).

    A write that failed leaves the producer suspect: an idempotent producer whose broker
    restarted can be stuck for good on its sequence numbers (`OutOfOrderSequenceNumber`, seen
    when the test broker restarted under a room), so the next write starts a new producer
    first. A record written again that way may be in the log twice, which no reader minds:
    admissions are read once per ticket, event definitions as the last record per event."""

    def __init__(self, producer: AIOKafkaProducer, timeout_s: float,
                 bootstrap: str = "") -> None:
        self._producer = producer
        self._timeout_s = timeout_s
        self._bootstrap = bootstrap
        self._partitions: dict[str, list[int]] = {}
        self._suspect = False
        self._lock = asyncio.Lock()
        self.restarts = 0  # producers started again after a failed write (tests, operators)

    @classmethod
    async def start(cls, bootstrap: str, timeout_s: float) -> DurableLog:
        return cls(await _producer(bootstrap, timeout_s), timeout_s, bootstrap)

    async def append(self, topic: str, key: str, value: dict[str, Any]) -> None:
        """Returns once the broker acknowledged the record; raises Unavailable otherwise."""
        if self._suspect:
            await self._restart()
        try:
            await asyncio.wait_for(self._send(topic, key, value), self._timeout_s)
        except TimeoutError as exc:
            self._suspect = True
            raise Unavailable("kafka write timed out") from exc
        except (KafkaError, OSError) as exc:
            self._suspect = True
            raise Unavailable(f"kafka write failed: {exc!r}") from exc

    async def _restart(self) -> None:
        async with self._lock:
            if not self._suspect:
                return  # another write restarted it meanwhile
            fresh = await _producer(self._bootstrap, self._timeout_s)  # raises Unavailable
            old, self._producer = self._producer, fresh
            self._suspect = False
            self.restarts += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), self._timeout_s)

    async def _send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        partition = partition_of(key, self._partitions[topic])
        await self._producer.send_and_wait(topic, value, key=key, partition=partition)

    async def close(self) -> None:
        await self._producer.stop()


async def _producer(bootstrap: str, timeout_s: float) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        request_timeout_ms=int(timeout_s * 1000), key_serializer=str.encode,
        value_serializer=lambda v: compact_json(v).encode())
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await producer.stop()
        raise Unavailable(f"kafka unreachable: {exc!r}") from exc
    return producer


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
