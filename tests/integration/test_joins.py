"""The join log (store/joins.py) against the real broker: batched, keyed, acknowledged."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from domain.errors import Unavailable
from domain.settings import Settings
from store import joins
from store.kafka_io import ensure_topic

pytestmark = pytest.mark.integration


def _read_all(bootstrap: str, topic: str, partitions: int, count: int) -> list[tuple[int, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got: list[tuple[int, bytes]] = []
    try:
        for _ in range(60):
            for m in consumer.consume(num_messages=count, timeout=0.5):
                if m.error() is None:
                    got.append((cast(int, m.partition()), cast(bytes, m.key())))
            if len(got) >= count:
                break
    finally:
        consumer.close()
    return got


def _record(n: int) -> dict[str, object]:
    return joins.encode(f"tk{n:05d}", "ev", f"u{n}", 1_000 + n, 3, True, None)


async def test_every_acknowledged_join_is_in_the_topic_on_its_tickets_partition(
        settings: Settings) -> None:
    topic = settings.joins_topic("ev")
    ensure_topic(settings.kafka_bootstrap, topic, 4)
    log = joins.JoinLog(settings.kafka_bootstrap, 30, batch_max=64, batch_wait_ms=2)
    try:
        await asyncio.gather(*(log.append(topic, _record(n)) for n in range(1_000)))
    finally:
        await log.close()
    got = _read_all(settings.kafka_bootstrap, topic, 4, 1_000)
    assert sorted(key for _, key in got) == [f"tk{n:05d}".encode() for n in range(1_000)]
    assert all(p == joins.partition_of(key.decode(), 4) for p, key in got)
    assert len({p for p, _ in got}) == 4  # spread over every partition


async def test_a_lone_join_is_sent_when_its_batch_wait_ends(settings: Settings) -> None:
    topic = settings.joins_topic("lone")
    ensure_topic(settings.kafka_bootstrap, topic, 4)
    log = joins.JoinLog(settings.kafka_bootstrap, 30, batch_max=10_000, batch_wait_ms=5)
    try:
        await asyncio.wait_for(log.append(topic, _record(1)), 30)
    finally:
        await log.close()
    assert [key for _, key in _read_all(settings.kafka_bootstrap, topic, 4, 1)] == [b"tk00001"]


async def test_an_unreachable_broker_is_unavailable_not_a_hang() -> None:
    log = joins.JoinLog("127.0.0.1:1", timeout_s=2)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(log.append("nowhere", _record(1)), 30)
    await log.close()
