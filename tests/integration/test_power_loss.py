"""Whole-stack power loss (issue 12): a stack started with the project's own `infra.stack`
(Redis and its replica, Kafka, chronyd, Ray and Serve, on this test's ports and state dir) has
every process `kill -9`'d mid on-sale and is started again the same way. Every confirmed
booking, every sold seat and every user's place (or admission) is still there, and the event
sells on.

A process kill loses nothing Redis wrote (its AOF is in the page cache, `appendfsync
everysec`); what a real power loss of the Redis machine can lose, the last second, is covered
by the Redis-restart tests and docs/design.md ("Losing Redis").
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from domain.settings import Settings
from infra import credentials, stack
from replica.identity import Identity
from store import keys
from store.ledger import read_bookings

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
# (Ray's client port outside its worker ports, 10002-19999)
PORTS = {"redis": 6395 + _OFFSET, "replica": 6396 + _OFFSET, "kafka": 19096 + _OFFSET,
         "ntp": 11126 + _OFFSET, "gcs": 6387 + _OFFSET, "client": 20011 + _OFFSET,
         "http": 8102 + _OFFSET, "stats": 8416 + _OFFSET, "metrics": 9116 + _OFFSET,
         "agent": 52375 + _OFFSET, "agent_grpc": 52385 + _OFFSET, "ray_metrics": 52395 + _OFFSET,
         "runtime_env": 52405 + _OFFSET, "fallback_http": 8142 + _OFFSET,
         "fallback_grpc": 9142 + _OFFSET}
USERS = 24
BUYERS = 8


def stack_env(state: Path) -> dict[str, str]:
    p = PORTS
    return {
        "TICKETING_STATE_DIR": str(state),
        "REDIS_URL": f"redis://127.0.0.1:{p['redis']}/0",
        "REDIS_REPLICA_URLS": f"redis://127.0.0.1:{p['replica']}/0",
        "KAFKA_BOOTSTRAP": f"127.0.0.1:{p['kafka']}", "NTP_SERVERS": f"127.0.0.1:{p['ntp']}",
        "HTTP_PORT": str(p["http"]), "KAFKA_TOPIC_PREFIX": "powerloss",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(p["stats"]),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(p["metrics"]),
        # Serve's fallback proxy (default 8500/9500, what `make up`'s stack binds)
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(p["fallback_http"]),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(p["fallback_grpc"]),
        "JOIN_RATE_PER_S": "100000", "STATUS_RATE_PER_S": "100000", "USER_RATE_PER_S": "1000",
        "SIGNIN_RATE_PER_S": "100000", "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
    }


def up(state: Path) -> dict[str, str]:
    """What `make up` does (infra.stack.up), on this test's ports: each service by its own
    infra.stack function, into one state dir."""
    p = PORTS
    credentials.ensure(state)  # the stack's secrets, made on the first start as `make up` does
    stack.start_redis(p["redis"], state)
    stack.start_redis_replica(p["replica"], p["redis"], state)
    stack.start_kafka(p["kafka"], p["kafka"] + 1, state)
    stack.start_ntp(p["ntp"], state)
    env = credentials.stack_env(stack_env(state), state)
    address = stack.start_ray(state, gcs_port=p["gcs"], env=env, client_port=p["client"],
                              metrics_export_port=p["ray_metrics"],
                              extra_args=(f"--dashboard-agent-listen-port={p['agent']}",
                                          f"--dashboard-agent-grpc-port={p['agent_grpc']}",
                                          f"--runtime-env-agent-port={p['runtime_env']}"))
    if not stack.healthz_ok("127.0.0.1", p["http"]):
        stack.deploy_serve(address, state, env=env, timeout_s=240)
    return env


def down(state: Path) -> None:
    stack.stop_ray(state)
    p = PORTS
    stack.stop_kafka(p["kafka"], state)
    stack.stop_ntp(p["ntp"], state)
    stack.stop_redis(p["replica"], state)
    stack.stop_redis(p["redis"], state)


@pytest.fixture
def powered_stack() -> Iterator[tuple[Path, dict[str, str]]]:
    state = Path(f"/tmp/ticketing-power-{os.getpid()}")
    state.mkdir(exist_ok=True)
    try:
        yield state, up(state)
    finally:
        down(state)
        shutil.rmtree(state, ignore_errors=True)


def test_whole_stack_power_loss_keeps_every_booking_sold_seat_and_place(powered_stack) -> None:
    state, env = powered_stack
    settings = Settings.from_env(env)
    identity = Identity(settings)
    base = f"http://127.0.0.1:{PORTS['http']}"
    admin = {"Authorization": f"Bearer {settings.admin_token}"}

    def user(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {identity.dev_token(name)}"}

    with httpx.Client(base_url=base, timeout=60) as http:
        created = http.post("/v1/events", headers=admin, json={
            "name": "Power loss", "admission_rate_per_s": 2, "sections": [
                {"name": "A", "rows": 2, "seats_per_row": 10, "price_cents": 5000}]})
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        tickets = {}
        for n in range(USERS):
            joined = http.post(f"/v1/events/{event_id}/queue", json={}, headers=user(f"p{n}"))
            assert joined.status_code == 202, joined.text
            tickets[f"p{n}"] = joined.json()

        def status(name: str) -> dict[str, Any]:
            t = tickets[name]
            answer = http.get(f"/v1/events/{event_id}/queue/{t['ticket_id']}",
                              headers={"Authorization": f"Bearer {t['ticket_token']}"})
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        bookings = []
        for n in range(BUYERS):  # the first in line buy as they are admitted (2/s)
            deadline = time.monotonic() + 60
            while (body := status(f"p{n}"))["state"] != "admitted":
                assert time.monotonic() < deadline, body
                time.sleep(0.2)
            auth = {"Authorization": f"Bearer {body['admission_token']}"}
            held = http.post(f"/v1/events/{event_id}/holds", headers=auth,
                             json={"section": "A", "quantity": 1})
            assert held.status_code == 201, held.text
            paid = http.post(f"/v1/holds/{held.json()['hold_id']}/checkout", headers=auth | {
                "Idempotency-Key": "k"}, json={"payment_token": f"tok_visa_{n}"})
            assert paid.status_code == 201, paid.text
            bookings.append((paid.json(), auth))

    store = redis.Redis.from_url(settings.redis_url)
    places = {name: store.hget(keys.queue_places(event_id), t["ticket_id"])
              for name, t in tickets.items()}
    admitted = {name for name, t in tickets.items()
                if store.hexists(keys.queue_admitted(event_id), t["ticket_id"])}
    store.close()
    assert any(places.values()), "someone should still be waiting at the power loss"

    killed = stack.power_loss(state)
    started = time.monotonic()
    up(state)
    print(f"\nkilled {killed} processes; the stack answered again {time.monotonic() - started:.1f}"
          " s after `up`")

    store = redis.Redis.from_url(settings.redis_url)
    try:
        for name, place in places.items():  # every place, or the admission that followed it
            ticket = tickets[name]["ticket_id"]
            if name in admitted:
                assert store.hexists(keys.queue_admitted(event_id), ticket), name
            elif place is not None:
                now = store.hget(keys.queue_places(event_id), ticket)
                assert now == place or store.hexists(keys.queue_admitted(event_id), ticket), name
        ledger = read_bookings(settings.kafka_bootstrap, settings.ledger_topic, event_id)
        assert {b["booking_id"] for b, _ in bookings} <= {b["booking_id"] for b in ledger}
        sold = [s for b in ledger for s in b["seat_ids"]]
        assert len(sold) == len(set(sold)) == BUYERS
        assert store.bitcount(keys.block_sold(event_id, 0)) == BUYERS
    finally:
        store.close()

    with httpx.Client(base_url=base, timeout=60) as http:  # and it sells on, in line
        for booking, auth in bookings:
            seen = http.get(f"/v1/bookings/{booking['booking_id']}", headers=auth)
            assert seen.status_code == 200, seen.text
        name = f"p{BUYERS}"
        t = tickets[name]
        deadline = time.monotonic() + 60
        while True:
            body = http.get(f"/v1/events/{event_id}/queue/{t['ticket_id']}",
                            headers={"Authorization": f"Bearer {t['ticket_token']}"}).json()
            if body.get("state") == "admitted":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.25)
        auth = {"Authorization": f"Bearer {body['admission_token']}"}
        held = http.post(f"/v1/events/{event_id}/holds", headers=auth,
                         json={"section": "A", "quantity": 1})
        assert held.status_code == 201, held.text
        assert held.json()["seat_ids"][0] not in sold
