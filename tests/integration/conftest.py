"""Ray and the Serve app, started once per session on the real Redis, Kafka and NTP.

Ray runs as a `ray.cluster_utils.Cluster` (a head node, more nodes added by tests that remove
one). Tests isolate by creating their own events; the session's topics carry their own prefix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from domain.settings import Settings
from domain.tokens import ADMISSION, Claims
from infra import credentials, stack
from replica.identity import Identity

_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
HTTP_PORT = 8100 + _OFFSET
PASSIVATE_AFTER_S = 3.0
EVENT_CLOSE_AFTER_S = 2.0
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
    "RAY_SERVE_HAPROXY_MAXCONN": "6000",
    # Serve's fallback proxy defaults to 8500/9500: HTTP_PORT itself at offset 400, and what
    # every other session binds; derived from the offset like the rest.
    **stack.serve_ports_env(8414 + _OFFSET, 9114 + _OFFSET, 8140 + _OFFSET, 9140 + _OFFSET),
    "RAY_DEDUP_LOGS": "0",
}


@pytest.fixture(scope="session")
def app_settings(redis_url: str, redis_replica_url: str, kafka_bootstrap: str,
                 ntp_server: str, stack_state_dir: Path) -> Settings:
    """The app's settings; its secrets are made as `make up` makes them (infra.credentials)."""
    credentials.ensure(stack_state_dir)
    return Settings.from_env(
        environ=credentials.stack_env({}, stack_state_dir),
        redis_url=redis_url.rsplit("/", 1)[0] + "/1", kafka_bootstrap=kafka_bootstrap,
        redis_replica_urls=(redis_replica_url.rsplit("/", 1)[0] + "/1",),
        ntp_servers=(ntp_server,), kafka_topic_prefix=f"it{int(time.time())}",
        http_port=HTTP_PORT, sweep_interval_s=0.1, proxy_location="HeadOnly", ingest_actors=1,
        # Every test client is 127.0.0.1 (the address HAProxy writes): address budgets are
        # generous here, the per-user and sign-in ones are not.
        join_rate_per_s=2000.0, status_rate_per_s=2000.0, user_rate_per_s=20.0,
        signin_rate_per_s=5.0, client_addr_header="x-ticketing-client-addr",
        ingress_conn_per_addr_max=20_000,
        admission_rate_per_s=1000.0, stream_tick_s=0.25, ingest_lag_ms=100,
        partition_idle_ms=300, ingress_resource="ingress",
        # entities passivate between the steps of many tests: the suite runs them through it
        passivate_after_s=PASSIVATE_AFTER_S, event_close_after_s=EVENT_CLOSE_AFTER_S,
        block_max_seats=10_000)  # a 60,000-seat test venue is 12 seat blocks, not 30


def on_db(settings: Settings, db: int, **changes: Any) -> Settings:
    """`settings` on Redis database `db` (with `changes`): the primary's URL and every read
    replica's move together, as a replica left on another db would answer for another keyspace;
    and topics of its own, as a keyspace and its durable logs are one deployment (a pool's hosts
    on an empty keyspace restore every event its events log has)."""
    def moved(url: str) -> str:
        return f"{url.rsplit('/', 1)[0]}/{db}"

    return dataclasses.replace(
        settings, redis_url=moved(settings.redis_url),
        redis_replica_urls=tuple(moved(url) for url in settings.redis_replica_urls),
        kafka_topic_prefix=f"{settings.kafka_topic_prefix}db{db}", **changes)


_IDENTITY: list[Identity] = []  # the app's identity, as the driver can rebuild it


def identity_of(settings: Settings) -> Identity:
    """The app's key ring and dev issuer, rebuilt from its settings (the same derived key)."""
    if not _IDENTITY or _IDENTITY[0].settings != settings:
        _IDENTITY[:] = [Identity(settings)]
    return _IDENTITY[0]


def user_header(user_id: str) -> dict[str, str]:
    """The Authorization header of a signed-in user (a dev user token, minted locally)."""
    assert _IDENTITY, "needs the app_settings fixture first"
    return {"Authorization": f"Bearer {_IDENTITY[0].dev_token(user_id)}"}


@pytest.fixture(scope="session")
def ray_cluster(app_settings: Settings, stack_state_dir: Any) -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    from infra import haproxy_harden

    os.environ.update(SERVE_ENV | haproxy_harden.ray_env(app_settings, stack_state_dir))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False, "resources": {"ingress": 1}})
    ray.init(address=cluster.address, namespace=app_settings.ray_namespace)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def api(ray_cluster: Any, app_settings: Settings) -> Iterator[str]:
    """Base URL of the Serve app, once /healthz answers."""

    import serve_app

    identity_of(app_settings)
    serve_app.deploy(app_settings)
    base = f"http://127.0.0.1:{HTTP_PORT}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise RuntimeError("the Serve app never became healthy")
    yield base  # the cluster's shutdown ends Serve too (serve.shutdown() waits 30 s here)


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        yield client


@pytest.fixture
def app_redis(app_settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(app_settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def admin(app_settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {app_settings.admin_token}"}


@pytest.fixture
def admission(app_settings: Settings) -> Any:
    """Mints an admission token header for (user, event): the queue's output, made directly."""

    def mint(user_id: str, event_id: str, ttl_s: float = 600) -> dict[str, str]:
        claims = Claims(ADMISSION, user_id, event_id, time.time() + ttl_s, "")
        return {"Authorization": f"Bearer {identity_of(app_settings).sign(claims)}"}

    return mint


@pytest.fixture
def user_auth(app_settings: Settings) -> Any:
    """Makes the Authorization header of a signed-in user: `user_auth("alice")`."""
    identity_of(app_settings)
    return user_header


@pytest.fixture
async def new_event(http: httpx.AsyncClient, admin: dict[str, str],
                    app_settings: Settings) -> AsyncIterator[Any]:
    """Creates events through the API; they are closed when the test ends, so a session of
    many tests does not keep their entities active on the pool's hosts."""
    created: list[str] = []

    async def create(rows: int = 5, seats_per_row: int = 10, **extra: Any) -> dict[str, Any]:
        body = {"name": "Test on-sale", "sections": extra.pop("sections", [
            {"name": "A", "rows": rows, "seats_per_row": seats_per_row, "price_cents": 5000}])}
        response = await http.post("/v1/events", json=body | extra, headers=admin)
        assert response.status_code == 201, response.text
        event: dict[str, Any] = response.json()
        created.append(event["event_id"])
        return event

    yield create
    stop_event_actors(app_settings, created)


def stop_event_actors(settings: Settings, event_ids: list[str]) -> None:
    """Close the events: their entities stop on every host (bookings stay readable)."""
    import ray

    from actors import directory

    for event_id in event_ids:  # a test that already broke its event leaves nothing to stop
        with contextlib.suppress(Exception):
            ray.get(directory.event_owner(settings, event_id).close.remote(), timeout=60)


def kill_owner(settings: Settings, entity_id: str) -> int:
    """Kill (Ray restarts it) the host that owns the entity, with all it hosts; its index."""
    import ray

    from actors import directory

    d = directory.of(settings)
    d.refresh()
    index = d.owner(entity_id)
    ray.kill(d.host(index), no_restart=False)
    return index


def active_entities(settings: Settings) -> set[str]:
    """Every entity active on a live host of the pool."""
    import ray

    from actors import directory

    d = directory.of(settings)
    d.refresh()
    return {e for host in directory.hosts(settings)
            for e in cast(list[str], ray.get(host.active.remote(), timeout=30))}


def stop_pool(settings: Settings, ray_cluster: Any, event_ids: list[str], nodes: list[Any]) -> None:
    """End a test's own pool: close its events, stop its hosts for good, remove its nodes."""
    import ray

    from actors import directory

    stop_event_actors(settings, event_ids)
    for index in range(settings.host_pool_max):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(directory.host_name(index), namespace=settings.ray_namespace),
                     no_restart=True)
    for node in nodes:
        ray_cluster.remove_node(node)
