"""Ray and the Serve app, started once per session on the real Redis, Kafka and NTP.

Ray runs as a `ray.cluster_utils.Cluster` (a head node, more nodes added by tests that remove
one). Tests isolate by creating their own events; the session's topics carry their own prefix.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis

from domain.settings import Settings
from domain.tokens import ADMISSION, Claims, sign

_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
HTTP_PORT = 8100 + _OFFSET
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
    "RAY_SERVE_HAPROXY_MAXCONN": "6000",
    "RAY_SERVE_HAPROXY_STATS_PORT": str(8414 + _OFFSET),
    "RAY_SERVE_HAPROXY_METRICS_PORT": str(9114 + _OFFSET),
    "RAY_DEDUP_LOGS": "0",
}


@pytest.fixture(scope="session")
def app_settings(redis_url: str, redis_replica_url: str, kafka_bootstrap: str,
                 ntp_server: str) -> Settings:
    return Settings.from_env(
        environ={}, redis_url=redis_url.rsplit("/", 1)[0] + "/1", kafka_bootstrap=kafka_bootstrap,
        redis_replica_urls=(redis_replica_url.rsplit("/", 1)[0] + "/1",),
        ntp_servers=(ntp_server,), kafka_topic_prefix=f"it{int(time.time())}",
        http_port=HTTP_PORT, sweep_interval_s=0.1, proxy_location="HeadOnly", ingest_actors=1,
        join_rate_per_s=20.0, status_rate_per_s=20.0, trust_forwarded_for=True,
        admission_rate_per_s=1000.0, stream_tick_s=0.25, ingest_lag_ms=100,
        partition_idle_ms=300, ingress_resource="ingress",
        block_max_seats=10_000)  # a 60,000-seat test venue is 12 seat-block actors, not 30


@pytest.fixture(scope="session")
def ray_cluster(app_settings: Settings) -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    os.environ.update(SERVE_ENV)
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
        return {"Authorization": f"Bearer {sign(app_settings.token_secret, claims)}"}

    return mint


@pytest.fixture
async def new_event(http: httpx.AsyncClient, admin: dict[str, str],
                    app_settings: Settings) -> AsyncIterator[Any]:
    """Creates events through the API; their actors are stopped when the test ends, so a
    session of many tests does not accumulate idle owners (each one a process)."""
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
    import ray

    for name in ray.util.list_named_actors():  # this driver's namespace: the app's
        if any(f":{event_id}" in name for event_id in event_ids):
            ray.kill(ray.get_actor(name, namespace=settings.ray_namespace), no_restart=True)
