"""Each real service started by the session fixtures answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import ntplib
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from domain.settings import Settings

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             retries=5, request_timeout_ms=10_000)
    try:
        producer.send(topic, value).get(timeout=30)
    finally:
        producer.close()


def _consume_one(bootstrap: str, topic: str) -> bytes:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=30_000)
    try:
        for message in consumer:
            return bytes(message.value)
    finally:
        consumer.close()
    raise AssertionError(f"no message on {topic}")


def test_redis_set_get(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0
    redis_client.set("greeting", b"hello")
    assert redis_client.get("greeting") == b"hello"
    assert redis_client.config_get("appendonly")["appendonly"] == "yes"


def test_redis_is_flushed_between_tests(redis_client: redis.Redis) -> None:
    assert redis_client.get("greeting") is None


def test_kafka_produce_consume(kafka_bootstrap: str, settings: Settings) -> None:
    value = uuid.uuid4().bytes
    _produce(kafka_bootstrap, settings.ledger_topic, value)
    assert _consume_one(kafka_bootstrap, settings.ledger_topic) == value


def test_settings_are_isolated_per_test(settings: Settings) -> None:
    assert settings.kafka_topic_prefix.startswith("t")
    assert settings.ledger_topic == f"{settings.kafka_topic_prefix}.bookings"
    from tests.conftest import TEST_REDIS_PORT

    assert settings.redis_url.endswith(f":{TEST_REDIS_PORT}/0")


def test_ntp_offset_is_small(ntp_server: str) -> None:
    host, port = ntp_server.rsplit(":", 1)
    response = ntplib.NTPClient().request(host, port=int(port), version=3, timeout=2)
    # chronyd serves this host's own clock (local stratum 8), so the offset is only jitter.
    assert response.stratum == 8
    assert abs(response.offset) < 0.05


def test_kafka_restart_keeps_messages(kafka_bootstrap: str, settings: Settings,
                                      kafka_restart: Callable[[], str]) -> None:
    value = uuid.uuid4().bytes
    _produce(kafka_bootstrap, settings.ledger_topic, value)
    assert kafka_restart() == kafka_bootstrap
    assert _consume_one(kafka_bootstrap, settings.ledger_topic) == value


def test_up_ha_starts_a_primary_two_replicas_and_three_sentinels_and_down_stops_them(
        kafka_bootstrap: str, ntp_server: str) -> None:
    """`make up HA=1` (here on test ports: the primary's port comes from REDIS_URL, Kafka and
    NTP are the session's, so up() only checks them)."""
    import os
    import shutil
    from pathlib import Path

    from infra import sentinel, stack
    from store import redis_clients
    from tests.conftest import TEST_UP_HA_PORT

    state = Path(f"/tmp/tk-upha-{os.getpid()}")
    replicas, sentinels = sentinel.topology_ports(TEST_UP_HA_PORT)
    env = {"REDIS_URL": f"redis://127.0.0.1:{TEST_UP_HA_PORT}/0",
           "KAFKA_BOOTSTRAP": kafka_bootstrap, "NTP_SERVERS": ntp_server}
    try:
        started = stack.up(env=env, state=state, with_ray=False, ha=True)
        assert {f"sentinel-{p}" for p in sentinels} | {f"redis-replica-{p}" for p in replicas} \
            <= set(started)
        client_env = stack.client_env(state, base={})
        assert client_env["REDIS_SENTINELS"] == ",".join(f"127.0.0.1:{p}" for p in sentinels)
        settings = Settings.from_env(client_env)
        client = redis_clients.primary_sync(settings)
        assert client.set("up-ha", "1") and client.info("replication")["connected_slaves"] == 2
        client.close()
        with pytest.raises(stack.StackError, match="runs Redis HA"):
            stack.up(env=env, state=state, with_ray=False)
    finally:
        stopped = stack.down(state)
        shutil.rmtree(state, ignore_errors=True)
    assert {f"sentinel-{p}" for p in sentinels} | {f"redis-{p}" for p in
                                                    (TEST_UP_HA_PORT, *replicas)} <= set(stopped)
    assert not (state / sentinel.ENV_FILE).exists()
