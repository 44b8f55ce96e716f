"""The events a fan can browse: GET /v1/events, open events only, with their sale state."""

from __future__ import annotations

import time

import pytest

from domain.event import iso

pytestmark = pytest.mark.integration

SECTIONS = [{"name": "Floor", "rows": 2, "seats_per_row": 5, "price_cents": 12000},
            {"name": "Balcony", "rows": 2, "seats_per_row": 5, "price_cents": 4000}]


async def listed(http, **params) -> dict[str, dict]:
    response = await http.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return {e["event_id"]: e for e in response.json()["events"]}


async def test_open_events_are_listed_with_prices_seats_left_and_sale_state(
        http, new_event, admin) -> None:
    now_on = await new_event(sections=SECTIONS)
    later = await new_event(onsale_at=iso(time.time() + 3600))
    events = await listed(http)
    on = events[now_on["event_id"]]
    assert (on["state"], on["price_min_cents"], on["price_max_cents"]) == ("on_sale", 4000, 12000)
    assert on["seats_available"] == 20 and [s["name"] for s in on["sections"]] == [
        "Floor", "Balcony"]
    assert events[later["event_id"]]["state"] == "upcoming"
    assert "presale_codes" not in on

    closed = await http.post(f"/v1/events/{later['event_id']}/close", headers=admin)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert later["event_id"] not in await listed(http)
    assert len(await listed(http, limit="1")) == 1


@pytest.mark.parametrize("limit", ["0", "101", "x", "²", "9" * 50])
async def test_a_bad_limit_is_a_400_with_the_error_shape(http, limit) -> None:
    response = await http.get("/v1/events", params={"limit": limit})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}
