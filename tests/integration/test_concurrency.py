"""Thousands of clients race for a few hundred seats: no seat is ever held or sold twice."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

CLIENTS = 2000
ROWS, PER_ROW = 20, 25  # 500 seats


async def post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """A POST sent again, as a browser would, when the ingress closed (or reset) the
    connection without answering: seen a few times in full-suite runs, as "Server disconnected
    without sending a response" and as a read reset, under 2,000 keep-alive connections; the
    cause is not yet known (an HAProxy reload's soft stop is suspected: infra/haproxy_harden.py).
    Safe for what this test checks: a checkout carries its Idempotency-Key, and a hold made by
    a lost first attempt is only a hold nobody reported (counted in the final seat totals)."""
    try:
        return await http.post(url, **kwargs)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return await http.post(url, **kwargs)


async def test_2000_clients_racing_for_500_seats_never_share_a_seat(
        api: str, new_event, admission) -> None:
    event = await new_event(rows=ROWS, seats_per_row=PER_ROW, max_seats_per_user=4)
    event_id, total = event["event_id"], event["seats_total"]
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as http:
        snapshots: list[Counter[str]] = []
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                seats = (await http.get(f"/v1/events/{event_id}/seats")).json()["seats"]
                snapshots.append(Counter(s["status"] for s in seats))
                await asyncio.sleep(0.05)

        # Minted before the race (ES256 signing is ~70 us each): a client that signs between
        # opening its connection and sending its headers would be a slow client to HAProxy.
        auths = [admission(f"racer{n}", event_id) for n in range(CLIENTS)]

        async def client(n: int) -> tuple[int, dict[str, Any], dict[str, str]]:
            auth = auths[n]
            if n % 2:
                row, first = rng.randint(1, ROWS), rng.randint(1, PER_ROW - 1)
                body: dict[str, Any] = {"seat_ids": [f"A-{row}-{first}", f"A-{row}-{first + 1}"]}
            else:
                body = {"section": "A", "quantity": rng.randint(1, 3)}
            response = await post(http, f"/v1/events/{event_id}/holds", json=body, headers=auth)
            return response.status_code, response.json(), auth

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(*[client(n) for n in range(CLIENTS)])
        buyers = [(body, auth) for status, body, auth in results if status == 201][::2]
        bought = await asyncio.gather(*[post(  # one card per buyer (the cap is per card)
            http, f"/v1/holds/{body['hold_id']}/checkout", json={"payment_token": f"tok_visa_{i}"},
            headers=auth | {"Idempotency-Key": "once"}) for i, (body, auth) in enumerate(buyers)])
        done.set()
        await watcher
        final = (await http.get(f"/v1/events/{event_id}/seats")).json()["seats"]

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, statuses
    assert all(body["error"]["code"] in ("seats_unavailable",) for status, body, _ in results
               if status == 409)
    held_seats = [seat for status, body, _ in results if status == 201 for seat in body["seat_ids"]]
    assert len(held_seats) == len(set(held_seats)), "a seat was held twice"
    assert 0 < len(held_seats) <= total
    assert all(b.status_code == 201 for b in bought)
    sold = [seat for b in bought for seat in b.json()["seat_ids"]]
    assert len(sold) == len(set(sold))
    for snapshot in snapshots:
        assert sum(snapshot.values()) == total
    final_count = Counter(s["status"] for s in final)
    assert final_count["sold"] == len(sold)
    assert final_count["sold"] + final_count["held"] + final_count["available"] == total
