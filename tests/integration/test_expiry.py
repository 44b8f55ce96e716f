"""Holds expire by themselves: no request needed to free the seats."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.integration


async def test_expired_hold_frees_seats_without_a_request(
        http, new_event, admission, app_redis) -> None:
    event = await new_event(hold_ttl_s=2)
    auth = admission("kim", event["event_id"])
    held = await http.post(f"/v1/events/{event['event_id']}/holds",
                           json={"seat_ids": ["A-1-1", "A-1-2"]}, headers=auth)
    assert held.status_code == 201
    expires_at = time.time() + 2
    from store import keys

    avail_key = keys.available(event["event_id"])
    while time.time() < expires_at + 3:  # watch Redis only: no request reaches the app
        if int(app_redis.hget(avail_key, "0")) == event["seats_total"]:
            break
        await asyncio.sleep(0.05)
    freed_after_s = time.time() - expires_at
    assert -0.1 < freed_after_s < 1.0, f"freed {freed_after_s:.2f}s after expiry"
    seats = (await http.get(f"/v1/events/{event['event_id']}/seats")).json()["seats"]
    assert all(s["status"] == "available" for s in seats)
    status = await http.get(f"/v1/holds/{held.json()['hold_id']}", headers=auth)
    assert status.json()["status"] == "expired"


async def test_checkout_after_expiry_gets_410(http, new_event, admission) -> None:
    event = await new_event(hold_ttl_s=1)
    auth = admission("lee", event["event_id"])
    held = (await http.post(f"/v1/events/{event['event_id']}/holds",
                            json={"seat_ids": ["A-2-2"]}, headers=auth)).json()
    await asyncio.sleep(1.3)
    response = await http.post(f"/v1/holds/{held['hold_id']}/checkout",
                               json={"payment_token": "tok_visa"},
                               headers=auth | {"Idempotency-Key": "late"})
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "hold_expired"


async def test_an_expired_hold_gives_back_the_users_allowance(
        http, new_event, admission) -> None:
    event = await new_event(hold_ttl_s=1, max_seats_per_user=2)
    auth = admission("max", event["event_id"])
    first = await http.post(f"/v1/events/{event['event_id']}/holds",
                            json={"seat_ids": ["A-1-1", "A-1-2"]}, headers=auth)
    assert first.status_code == 201
    await asyncio.sleep(1.6)
    again = await http.post(f"/v1/events/{event['event_id']}/holds",
                            json={"seat_ids": ["A-3-1", "A-3-2"]}, headers=auth)
    assert again.status_code == 201, again.text
