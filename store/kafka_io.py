"""Kafka plumbing: topics with the cluster's replication settings, and kafka-python's durable
producer (kept as the baseline `bench_waiting_room` measures the app's producers against)."""

from __future__ import annotations

import json

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError


def ensure_topic(bootstrap: str, topic: str, partitions: int, replication_factor: int = 1,
                 min_insync_replicas: int = 1, configs: dict[str, str] | None = None) -> None:
    """Create `topic` with the cluster's replication settings (KAFKA_REPLICATION_FACTOR,
    KAFKA_MIN_INSYNC_REPLICAS) and any other `configs`; an existing topic is left as it is."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketing-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, replication_factor, topic_configs={
            "min.insync.replicas": str(min_insync_replicas)} | (configs or {}))])
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
