"""The operator console (/app/admin/) in a real browser, and its stream over plain HTTP.

An operator signs in with the admin token, opens an on-sale and watches its numbers change
while fans join, hold and buy through the API; then uses the controls (admission rate, a
section's price, closing the event) and sees their effect. Screenshots of every step go to
test-artifacts/web/admin-*.png (gitignored), as test_web.py keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import httpx
import pytest

from tests.integration.conftest import user_header
from tests.integration.test_web import DESKTOP, browser, shot  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

FANS = 6


async def join(http: httpx.AsyncClient, event_id: str, n: int) -> dict[str, Any]:
    joined = await http.post(f"/v1/events/{event_id}/queue", json={},
                             headers=user_header(f"console-fan{n}"))
    assert joined.status_code == 202, joined.text
    ticket: dict[str, Any] = joined.json()
    return ticket


async def follow_ticket(api: str, event_id: str, ticket: dict[str, Any]) -> None:
    """A fan's waiting-room stream, held open until admitted: the replica then measures the
    position-update lag the console shows."""
    url = f"{api}/v1/events/{event_id}/queue/{ticket['ticket_id']}/stream"
    async with httpx.AsyncClient(timeout=None) as client, client.stream(
            "GET", url, params={"token": ticket["ticket_token"]}) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: admitted"):
                return


async def stream_events(api: str, event_id: str, headers: dict[str, str],
                        count: int) -> list[tuple[str, Any]]:
    """The first `count` events of the console stream, as (name, data)."""
    got: list[tuple[str, Any]] = []
    async with httpx.AsyncClient(timeout=30) as client, client.stream(
            "GET", f"{api}/v1/events/{event_id}/admin/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                got.append((name, json.loads(line[6:])))
                if len(got) == count:
                    return got
    return got


async def test_the_console_stream_needs_the_admin_token_and_sends_history_then_snapshots(
        api, http, new_event, admin) -> None:
    event = await new_event(rows=2, seats_per_row=5)
    path = f"/v1/events/{event['event_id']}/admin/stream"
    refused = await http.get(path, headers={"Authorization": "Bearer not-the-token"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert (await http.get(path)).status_code == 401
    unknown = await http.get("/v1/events/ev000000000000/admin/stream", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"

    (first, history), (second, snap), (_, later) = await stream_events(
        api, event["event_id"], admin, 3)
    assert (first, second) == ("history", "snapshot")
    assert history["snapshots"] and history["snapshots"][-1]["event_id"] == event["event_id"]
    assert snap["seats_total"] == 10 and snap["seats_available"] == 10 and snap["waiting"] == 0
    assert snap["sections"] == [{"name": "A", "price_cents": 5000, "seats_total": 10}]
    assert 0.5 <= later["at"] - snap["at"] <= 3.0  # about one a second


async def test_an_operator_watches_an_on_sale_live_and_its_controls_take_effect(
        browser, api, http, new_event, admin, admission, app_settings) -> None:  # noqa: F811
    from playwright.async_api import expect

    event = await new_event(rows=4, seats_per_row=10, admission_rate_per_s=0)
    eid = event["event_id"]
    context = await browser.new_context(base_url=api, viewport=DESKTOP)
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

    # Sign in, find the event in the list, open its console.
    await page.goto("/app/admin/")
    await page.get_by_label("Admin token").fill(app_settings.admin_token)
    await shot(page, "admin-1-signin")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name=event["name"]).first.wait_for()
    await page.goto(f"/app/admin/?event={eid}")
    await expect(page.locator("#event-state")).to_have_text("open")
    await expect(page.locator("#n-sold")).to_have_text("0 / 40")
    await shot(page, "admin-2-empty")

    # Fans join while admissions are paused: the queue grows on the page.
    tickets = [await join(http, eid, n) for n in range(FANS)]
    await expect(page.locator("#n-waiting")).to_have_text(str(FANS), timeout=20_000)
    await expect(page.locator("#n-rate")).to_have_text("0 (0)")

    # Holds and a sale through the API: held seats, sold seats and revenue follow.
    buyer, holder = admission("console-buyer", eid), admission("console-holder", eid)
    held = await http.post(f"/v1/events/{eid}/holds", headers=holder,
                           json={"section": "A", "quantity": 3})
    paid = await http.post(f"/v1/events/{eid}/holds", headers=buyer,
                           json={"section": "A", "quantity": 2})
    assert held.status_code == paid.status_code == 201, (held.text, paid.text)
    await expect(page.locator("#n-held")).to_have_text("5", timeout=10_000)
    booked = await http.post(f"/v1/holds/{paid.json()['hold_id']}/checkout", headers=buyer | {
        "Idempotency-Key": "console-1"}, json={"payment_token": "tok_visa"})
    assert booked.status_code == 201, booked.text
    await expect(page.locator("#n-sold")).to_have_text("2 / 40", timeout=10_000)
    await expect(page.locator("#n-held")).to_have_text("3")
    await expect(page.locator("#n-revenue")).to_have_text("100.00")
    await expect(page.locator("#n-sellout")).to_have_text(re.compile(r"\d+ (s|m)"))
    await shot(page, "admin-3-holds-and-a-sale")

    # A refused hold (more seats than a user may hold) is counted as a 4xx of the event.
    refused = await http.post(f"/v1/events/{eid}/holds", headers=holder,
                              json={"section": "A", "quantity": 40})
    assert 400 <= refused.status_code < 500
    await expect(page.locator("#n-errors")).to_have_text(re.compile(r"^0 · 0 · [1-9]"))

    # The admission-rate control: the paused queue drains and the measured rate shows it,
    # while a fan's stream on this replica gives the position-update lag.
    watcher = asyncio.ensure_future(follow_ticket(api, eid, tickets[-1]))
    await asyncio.sleep(1.0)
    await page.get_by_label("Admission rate (per second)").fill("3")
    await page.get_by_role("button", name="Set rate").click()
    await expect(page.locator("#status")).to_have_text("Admission rate set to 3/s.")
    await expect(page.locator("#n-rate")).to_have_text(re.compile(r"\(3\)$"))
    await expect(page.locator("#n-admitted")).to_have_text(str(FANS), timeout=30_000)
    await expect(page.locator("#n-waiting")).to_have_text("0")
    await asyncio.wait_for(watcher, 30)
    await expect(page.locator("#n-lag")).to_have_text(re.compile(r"^\d+ ms$"), timeout=10_000)
    points = await page.locator("#c-rate polyline[data-series=measured]").get_attribute(
        "data-points")
    assert points is not None and int(points) >= 5  # the chart has the history behind it
    await shot(page, "admin-4-admitting")

    # The price control: a new price for section A, seen by the event's readers.
    await page.get_by_label("Section price").select_option("A")
    await page.get_by_label("Price", exact=True).fill("62.50")
    await page.get_by_role("button", name="Set price").click()
    await expect(page.locator("#status")).to_contain_text("Section A now costs 62.50")
    after = (await http.get(f"/v1/events/{eid}")).json()
    assert after["sections"][0]["price_cents"] == 6250
    await expect(page.locator("#price-section")).to_contain_text("now 62.50", timeout=10_000)

    # Closing, after a confirm: the event refuses holds and the console says closed.
    await page.get_by_role("button", name="Close event…").click()
    await expect(page.locator("#status")).to_have_text("The event is closed.")
    await expect(page.locator("#event-state")).to_have_text("closed", timeout=10_000)
    late = await http.post(f"/v1/events/{eid}/holds", headers=buyer,
                           json={"section": "A", "quantity": 1})
    assert late.status_code == 409 and late.json()["error"]["code"] == "event_closed"
    await shot(page, "admin-5-closed")

    assert not [url for url in requested if app_settings.admin_token in url]
    with contextlib.suppress(Exception):
        await context.close()


async def test_a_refused_admin_token_sends_the_operator_back_to_sign_in(
        browser, api, new_event) -> None:  # noqa: F811
    from playwright.async_api import expect

    event = await new_event(rows=1, seats_per_row=5)
    context = await browser.new_context(base_url=api, viewport=DESKTOP)
    await context.add_init_script("sessionStorage.setItem('tk.admin', 'wrong')")
    page = await context.new_page()
    await page.goto(f"/app/admin/?event={event['event_id']}")
    await expect(page.locator("#status")).to_have_text(
        "The admin token was refused; sign in again.")
    await expect(page.get_by_label("Admin token")).to_be_visible()
    await shot(page, "admin-6-refused")
    await context.close()
