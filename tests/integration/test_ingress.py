"""Limits that hold behind the ingress: shared budgets, the address HAProxy writes, hardening.

The session's Serve app runs behind Ray's HAProxy with the hardening wrapper
(infra/haproxy_harden.py, RAY_SERVE_HAPROXY_BINARY_PATH), as `make up` does.
"""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

import serve_app
from domain.errors import RateLimited
from domain.settings import Settings
from store import ratelimit
from tests.integration.conftest import HTTP_PORT, SERVE_ENV

pytestmark = pytest.mark.integration


async def test_two_replicas_share_one_clients_budget_and_a_spoofed_forwarded_for_resets_nothing(
        app_settings: Settings, redis_url: str) -> None:
    """Two app instances (two replicas' memories) on one Redis: one client's sign-ins alternate
    between them, each with a new made-up X-Forwarded-For; the budget (burst 1) is spent once."""
    settings = Settings.from_env(environ={}, redis_url=app_settings.redis_url,
                                 token_secret=app_settings.token_secret,
                                 admin_token=app_settings.admin_token,
                                 signin_rate_per_s=0.5, client_addr_header="")
    replicas = [serve_app.build_asgi_app(settings) for _ in range(2)]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(
        "203.0.113.50", 40000 + n)), base_url="http://replica") for n, app in enumerate(replicas)]
    try:
        statuses = [(await clients[n % 2].post(
            "/v1/dev/token", json={"user_id": f"u{n}"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code for n in range(8)]
    finally:
        for c in clients:
            await c.aclose()
    assert statuses == [200] + [429] * 7, statuses


async def test_a_join_budget_charges_the_address_and_the_user_across_replicas(
        app_settings: Settings) -> None:
    first, second = (Redis.from_url(app_settings.redis_url) for _ in range(2))
    try:
        a, b = ratelimit.RateLimits(first), ratelimit.RateLimits(second)
        event = f"evrl{time.time_ns() % 10**10:010d}"

        def budgets(address: str, user: str) -> list[ratelimit.Budget]:
            return [ratelimit.address(event, "join", address, 1.0),
                    ratelimit.user(event, "join", user, 0.5)]

        await a.spend(*budgets("192.0.2.1", "ann"))
        with pytest.raises(RateLimited):  # the address, on the other replica
            await b.spend(*budgets("192.0.2.1", "bea"))
        await b.spend(*budgets("192.0.2.2", "ann"))  # the user has a burst of 3
        await a.spend(*budgets("192.0.2.3", "ann"))
        with pytest.raises(RateLimited) as limited:  # the user, from a fourth address
            await b.spend(*budgets("192.0.2.4", "ann"))
        assert 0 < limited.value.retry_after_s <= 2.0
        await a.spend(*budgets("192.0.2.4", "bea"))  # refused requests charged nothing
    finally:
        await first.aclose()
        await second.aclose()


async def test_behind_haproxy_a_spoofed_forwarded_for_or_address_header_does_not_reset_it(
        http: httpx.AsyncClient) -> None:
    await asyncio.sleep(1.2)  # this client's sign-in budget (5/s, burst 5) is full again
    statuses = []
    for n in range(15):
        response = await http.post("/v1/dev/token", json={"user_id": f"spoof{n}"}, headers={
            "X-Forwarded-For": f"198.51.100.{n}", "X-Ticketing-Client-Addr": f"192.0.2.{n}",
            "Forwarded": f"for=192.0.2.{n}"})
        statuses.append(response.status_code)
    assert set(statuses) == {200, 429} and statuses.count(200) <= 7, statuses
    await asyncio.sleep(1.2)  # leave the budget full for the next test


async def test_a_connection_that_has_not_finished_its_headers_in_time_is_closed(
        api: str, app_settings: Settings) -> None:
    timeout_s = app_settings.ingress_http_request_timeout_s

    def slow_client() -> tuple[float, bytes]:
        with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=timeout_s + 20) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
            return time.monotonic() - started, received

    elapsed, received = await asyncio.to_thread(slow_client)
    assert timeout_s - 0.5 <= elapsed <= timeout_s + 5, elapsed
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:80]


def _listening(port: int) -> set[str]:
    """Local addresses with a TCP listener on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def _hardened_config() -> str:
    configs = sorted(Path("/tmp/haproxy-serve").glob("*/haproxy.cfg.hardened"),
                     key=lambda p: p.stat().st_mtime, reverse=True)  # this session's is newest
    for path in configs:
        text = path.read_text()
        if re.search(rf"bind 127\.0\.0\.1:{HTTP_PORT}\n", text):
            return text
    raise AssertionError("no hardened HAProxy config for this session's ingress")


async def test_haproxy_stats_and_metrics_listen_on_loopback_only_and_its_socket_is_mode_600(
        api: str) -> None:
    config = _hardened_config()
    for env in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        port = int(SERVE_ENV[env])
        assert f"bind 127.0.0.1:{port}" in config
        if _listening(port):  # the prometheus frontend binds even with Ray's metrics off
            assert _listening(port) == {"0100007F"}, (env, _listening(port))
    assert _listening(int(SERVE_ENV["RAY_SERVE_HAPROXY_STATS_PORT"])) == {"0100007F"}
    socket_path = re.search(r"stats socket (\S+) mode 600", config)
    assert socket_path is not None
    assert stat.S_IMODE(Path(socket_path.group(1)).stat().st_mode) == 0o600

