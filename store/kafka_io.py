"""Kafka plumbing shared by the ledger and the join log: topics, acked sends from asyncio."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from domain.errors import Unavailable


def ensure_topic(bootstrap: str, topic: str, partitions: int, replication_factor: int = 1,
                 min_insync_replicas: int = 1) -> None:
    """Create `topic` with the cluster's replication settings (KAFKA_REPLICATION_FACTOR,
    KAFKA_MIN_INSYNC_REPLICAS); an existing topic is left as it is."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketing-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, replication_factor, topic_configs={
            "min.insync.replicas": str(min_insync_replicas)})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def durable_producer(bootstrap: str, linger_ms: int = 1) -> KafkaProducer:
    """acks=all and idempotent: an acknowledged record is on every in-sync replica, once."""
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms,
        key_serializer=str.encode,
        value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode())


async def send_acked(producer: KafkaProducer, topic: str, key: str, value: Any,
                     timeout_s: float) -> None:
    """Send and wait for the broker's ack without blocking the event loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(Unavailable(f"kafka write failed: {error}"))

    sent = producer.send(topic, key=key, value=value)
    sent.add_callback(lambda _meta: loop.call_soon_threadsafe(settle, None))
    sent.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc))
    try:
        await asyncio.wait_for(done, timeout_s)
    except TimeoutError as exc:
        raise Unavailable("kafka write timed out") from exc
