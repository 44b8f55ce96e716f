"""A real browser's EventSource (headless Debian Chromium) follows the waiting-room stream."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import user_header
from tests.integration.test_web import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


async def test_a_browser_eventsource_receives_positions_then_admitted(
        api, http, new_event, admin) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    event = await new_event(admission_rate_per_s=0)
    event_id = event["event_id"]
    tickets = []
    for n in range(3):
        joined = await http.post(f"/v1/events/{event_id}/queue", json={}, headers=user_header(
            f"eventsource{n}") | {"X-Forwarded-For": f"198.51.100.{n}"})
        tickets.append(joined.json())
    me = tickets[-1]
    url = f"/v1/events/{event_id}/queue/{me['ticket_id']}/stream?token={me['ticket_token']}"
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(base_url=api)
        await page.goto("/healthz")  # same origin as the stream
        await page.evaluate("""url => {
            window.received = [];
            const source = new EventSource(url);
            for (const name of ['position', 'admitted', 'sold_out']) {
                source.addEventListener(name, e => {
                    window.received.push({name, id: e.lastEventId, data: JSON.parse(e.data)});
                    if (name !== 'position') source.close();
                });
            }
        }""", url)
        await page.wait_for_function(
            "window.received.some(e => e.name === 'position' && e.data.position === 3)",
            timeout=30_000)
        await http.patch(f"/v1/events/{event_id}", json={"admission_rate_per_s": 2},
                         headers=admin)
        await page.wait_for_function("window.received.some(e => e.name === 'admitted')",
                                     timeout=30_000)
        received: list[dict[str, Any]] = await page.evaluate("window.received")
        await browser.close()
    positions = [e["data"]["position"] for e in received if e["name"] == "position"]
    placed = positions.index(3)  # before the join is merged its position is null (not yet known)
    assert all(p is None for p in positions[:placed])
    known = positions[placed:]
    assert None not in known and known == sorted(known, reverse=True)
    admitted = next(e for e in received if e["name"] == "admitted")
    assert admitted["data"]["admission_token"] and admitted["id"]
