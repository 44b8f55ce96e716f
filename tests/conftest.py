"""Session fixtures for the real services, on ports distinct from `make up`'s stack.

Services start lazily: only a test that asks for `redis_url`, `kafka_bootstrap`, `ntp_server`
(or a fixture built on them) starts that service, once per session; it stops at session end.
A unit-only run (`pytest tests/unit`) starts nothing. Ray and Serve are not started here.

    Redis 6391 (replica 6392), Kafka 19092 (controller 19093), NTP 11124, Redis HA 6401-6403
    with Sentinels 26401-26403 (`up --ha` in test_stack.py: 6411-6413, 26411-26413);
    state in /tmp/ticketing-test-<pid>
    HA mode's three-node Kafka (`kafka_ha_bootstrap`): 29092..29097
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from domain.settings import Settings
from infra import credentials, sentinel, stack

# TICKETING_TEST_PORT_OFFSET shifts every test port, so two suites can run side by side.
_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
TEST_REDIS_PORT = 6391 + _OFFSET
TEST_KAFKA_PORT = 19092 + _OFFSET
TEST_KAFKA_CONTROLLER_PORT = 19093 + _OFFSET
TEST_NTP_PORT = 11124 + _OFFSET
TEST_REDIS_REPLICA_PORT = 6392 + _OFFSET
# Redis HA (infra/sentinel.py): a primary and two replicas, three Sentinels
TEST_REDIS_HA_PORTS = (6401 + _OFFSET, 6402 + _OFFSET, 6403 + _OFFSET)
TEST_SENTINEL_PORTS = (26401 + _OFFSET, 26402 + _OFFSET, 26403 + _OFFSET)
# `up --ha` in test_stack.py: primary here, replicas on the next two, Sentinels 20000 above
TEST_UP_HA_PORT = 6411 + _OFFSET
TEST_KAFKA_HA_BASE_PORT = 29092 + _OFFSET  # three nodes: broker ports +0, +2, +4
TEST_KAFKA_HA_HEAP = "384m"


@pytest.fixture(scope="session")
def stack_state_dir() -> Iterator[Path]:
    """State dir of the test services (short path under /tmp: Unix sockets have length limits)."""
    d = Path(f"/tmp/ticketing-test-{os.getpid()}")
    d.mkdir(parents=True, exist_ok=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(stack_state_dir: Path) -> Iterator[str]:
    url = stack.start_redis(TEST_REDIS_PORT, stack_state_dir)
    yield url
    stack.stop_redis(TEST_REDIS_PORT, stack_state_dir)


@pytest.fixture(scope="session")
def redis_replica_url(redis_url: str, stack_state_dir: Path) -> Iterator[str]:
    """A read replica of the test Redis (returns once it has synced)."""
    url = stack.start_redis_replica(TEST_REDIS_REPLICA_PORT, TEST_REDIS_PORT, stack_state_dir)
    yield url
    stack.stop_redis(TEST_REDIS_REPLICA_PORT, stack_state_dir)


@pytest.fixture(scope="session")
def redis_ha(stack_state_dir: Path) -> Iterator[dict[str, str]]:
    """Redis HA: a primary, two replicas and three Sentinels, as `make up HA=1` starts them
    (on the test ports); yields the settings env its clients need (REDIS_SENTINELS ...)."""
    sentinel.start(TEST_REDIS_HA_PORTS[0], TEST_REDIS_HA_PORTS[1:], TEST_SENTINEL_PORTS,
                   stack_state_dir)
    yield sentinel.settings_env(TEST_SENTINEL_PORTS)
    sentinel.stop(stack_state_dir)
    for port in TEST_REDIS_HA_PORTS:
        stack.stop_redis(port, stack_state_dir)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on an emptied database (each test starts from a clean Redis)."""
    client = redis.Redis.from_url(redis_url, decode_responses=False)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_state_dir: Path) -> Iterator[str]:
    bootstrap = stack.start_kafka(TEST_KAFKA_PORT, TEST_KAFKA_CONTROLLER_PORT, stack_state_dir)
    yield bootstrap
    stack.stop_kafka(TEST_KAFKA_PORT, stack_state_dir)


@pytest.fixture
def kafka_restart(kafka_bootstrap: str, stack_state_dir: Path) -> Callable[[], str]:
    """Call to stop the broker and start it again on the same data; returns the bootstrap."""

    def restart() -> str:
        stack.stop_kafka(TEST_KAFKA_PORT, stack_state_dir)
        return stack.start_kafka(TEST_KAFKA_PORT, TEST_KAFKA_CONTROLLER_PORT, stack_state_dir)

    return restart


@pytest.fixture(scope="session")
def kafka_ha_bootstrap(stack_state_dir: Path) -> Iterator[str]:
    """HA mode's Kafka: three KRaft nodes (`infra.kafka_cluster`), started once per session."""
    from infra import kafka_cluster

    bootstrap = kafka_cluster.start_cluster(TEST_KAFKA_HA_BASE_PORT, stack_state_dir,
                                            heap=TEST_KAFKA_HA_HEAP)
    yield bootstrap
    kafka_cluster.stop_cluster(TEST_KAFKA_HA_BASE_PORT, stack_state_dir)


@pytest.fixture(scope="session")
def ntp_server(stack_state_dir: Path) -> Iterator[str]:
    server = stack.start_ntp(TEST_NTP_PORT, stack_state_dir)
    yield server
    stack.stop_ntp(TEST_NTP_PORT, stack_state_dir)


@pytest.fixture
def settings(redis_url: str, kafka_bootstrap: str, ntp_server: str) -> Settings:
    """Settings on the test services, ignoring the environment; own Kafka topics per test."""
    return Settings.from_env(
        environ={},
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        ntp_servers=(ntp_server,),
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:12]}",
        **credentials.random_settings_secrets(),
    )
