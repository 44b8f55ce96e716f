"""The web client in a real browser: Playwright (Python) driving Debian's Chromium, headless.

Kept few and quick (one browser per module). Screenshots of every step go to
test-artifacts/web/ (gitignored) so a failure can be looked at afterwards.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 800}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (infra/install.sh installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def buyer(browser: Any, api: str, viewport: dict[str, int],
                admission: dict[str, str] | None = None) -> Any:
    """A page in its own browser context (its own session storage: one buyer)."""
    context = await browser.new_context(base_url=api, viewport=viewport)
    if admission:  # the queue's output, as the waiting-room page stores it
        script = "".join(f"sessionStorage.setItem('tk.admission.{event_id}', "
                         f"{json.dumps(json.dumps(token))});"
                         for event_id, token in admission.items())
        await context.add_init_script(script)
    return await context.new_page()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def token_of(header: dict[str, str]) -> str:
    return header["Authorization"].split(" ", 1)[1]


async def pick(page: Any, section: str, row: int, number: int) -> None:
    """Pick a seat the keyboard way: open its section from the overview, focus the seat
    canvas, move the announced cursor with the arrow keys, press Enter."""
    from playwright.async_api import expect

    if not await page.locator("#zoom").is_visible():
        await page.get_by_role("button", name=re.compile(rf"^Section {section}, ")).click()
    await page.get_by_role("application", name=re.compile(rf"^Seats of section {section}:")).focus()
    cursor = page.locator("#seat-cursor")
    await expect(cursor).to_have_text(re.compile(r"^Row \d+, seat \d+"))
    at_row, at_number = map(int, re.findall(r"\d+", await cursor.text_content() or "")[:2])
    for key, count in (("ArrowDown", row - at_row), ("ArrowUp", at_row - row),
                       ("ArrowRight", number - at_number), ("ArrowLeft", at_number - number)):
        for _ in range(max(0, count)):
            await page.keyboard.press(key)
    await expect(cursor).to_have_text(re.compile(rf"^Row {row}, seat {number}, available"))
    await page.keyboard.press("Enter")


async def seat_status_is(page: Any, seat: str, status: str, timeout_ms: int) -> None:
    """Wait until the map the page decoded from the stream shows `seat` as `status`."""
    await page.wait_for_function(
        "([seat, status]) => window.ticketingSeats && window.ticketingSeats.board &&"
        " window.ticketingSeats.board.status(seat) === status", arg=[seat, status],
        timeout=timeout_ms)


async def test_a_buyer_goes_from_the_queue_to_a_confirmed_booking_on_a_phone(
        browser, api, new_event) -> None:
    from playwright.async_api import expect

    event = await new_event(rows=3, seats_per_row=8)
    page = await buyer(browser, api, PHONE)
    await page.goto(f"/app/queue.html?event={event['event_id']}")
    await page.get_by_label("Your name or e-mail").fill("web-ann")
    await shot(page, "flow-1-queue")
    await page.get_by_role("button", name="Join the queue").click()
    await page.wait_for_url(re.compile(r"/app/seats\.html\?"), timeout=30_000)
    await expect(page.locator("#live-state")).to_have_text("live")
    await pick(page, "A", 2, 3)  # keyboard-usable: pick a seat without the mouse
    await expect(page.locator("#selection")).to_have_text("A-2-3 \N{EN DASH} $50.00")
    await page.get_by_role("button", name="Hold selected seats").click()
    await expect(page.locator("#held-price")).to_have_text("$50.00")
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await shot(page, "flow-2-held")
    await page.get_by_role("link", name="Continue to checkout").click()
    await expect(page.locator("#total")).to_have_text("$50.00")
    await shot(page, "flow-3-checkout")
    await page.get_by_role("button", name="Pay $50.00").click()
    await page.wait_for_url(re.compile(r"/app/confirmation\.html\?"), timeout=30_000)
    await expect(page.locator("#title")).to_have_text("Booking confirmed")
    await expect(page.locator("#seats")).to_have_text("A-2-3")
    await shot(page, "flow-4-confirmed")
    await page.context.close()


async def test_a_seat_held_in_one_browser_turns_held_in_another_within_a_second(
        browser, api, new_event, admission) -> None:
    from playwright.async_api import expect

    event = await new_event(rows=2, seats_per_row=6)
    eid = event["event_id"]
    first = await buyer(browser, api, DESKTOP, {eid: token_of(admission("web-bo", eid))})
    second = await buyer(browser, api, DESKTOP, {eid: token_of(admission("web-cy", eid))})
    for page in (first, second):
        await page.goto(f"/app/seats.html?event={eid}")
        await expect(page.locator("#live-state")).to_have_text("live")
    await pick(first, "A", 1, 4)
    async with first.expect_response(re.compile(r"/holds$")) as held:
        await first.get_by_role("button", name="Hold selected seats").click()
    assert (await held.value).status == 201
    changed_at = time.monotonic()  # the seat is held by now
    await seat_status_is(second, "A-1-4", "held", timeout_ms=1000)
    lag_s = time.monotonic() - changed_at
    await shot(first, "two-browsers-1-holder")
    await shot(second, "two-browsers-2-other")
    assert lag_s < 1.0
    await first.context.close()
    await second.context.close()


async def test_the_hold_countdown_runs_and_its_expiry_is_shown_to_the_user(
        browser, api, new_event, admission) -> None:
    from playwright.async_api import expect

    event = await new_event(rows=1, seats_per_row=5, hold_ttl_s=3)
    eid = event["event_id"]
    page = await buyer(browser, api, DESKTOP, {eid: token_of(admission("web-di", eid))})
    await page.goto(f"/app/seats.html?event={eid}")
    await expect(page.locator("#live-state")).to_have_text("live")
    await pick(page, "A", 1, 2)
    await page.get_by_role("button", name="Hold selected seats").click()
    countdown = page.locator("#countdown")
    await expect(countdown).to_have_text(re.compile(r"^0:0[1-3]$"))
    await shot(page, "expiry-1-counting")
    await expect(page.locator("#status")).to_have_text(
        "Your hold expired and the seats were released.", timeout=10_000)
    await expect(countdown).to_be_hidden()
    await seat_status_is(page, "A-1-2", "available", timeout_ms=5000)
    await shot(page, "expiry-2-expired")
    await page.context.close()


async def test_a_fan_finds_an_event_on_the_home_page_and_enters_its_waiting_room_on_a_phone(
        browser, api, new_event) -> None:
    from playwright.async_api import expect

    name = "<img src=x onerror=alert(1)> Stadium Night"  # a name is text, never markup
    event = await new_event(name=name, sections=[
        {"name": "Floor", "rows": 2, "seats_per_row": 5, "price_cents": 12000},
        {"name": "Balcony", "rows": 2, "seats_per_row": 5, "price_cents": 4000}])
    page = await buyer(browser, api, PHONE)
    await page.goto("/")
    card = page.get_by_role("link", name=re.compile(re.escape(name)))
    await expect(card).to_contain_text("$40.00 \N{EN DASH} $120.00")
    await expect(card).to_contain_text("On sale now")
    await expect(card).to_contain_text("20 seats left")
    assert await page.locator("#events img").count() == 0
    await shot(page, "events-1-home")
    await card.click()
    await page.wait_for_url(re.compile(r"/app/event\.html\?event=" + event["event_id"]))
    await expect(page.locator("#event-name")).to_have_text(name)
    await expect(page.get_by_role("row", name=re.compile(r"^Floor"))).to_contain_text("$120.00")
    await expect(page.get_by_role("row", name=re.compile(r"^Balcony"))).to_contain_text("10")
    await shot(page, "events-2-event")
    await page.get_by_role("link", name="Join the waiting room").click()
    await page.wait_for_url(re.compile(r"/app/queue\.html\?event=" + event["event_id"]))
    await expect(page.get_by_label("Your name or e-mail")).to_be_visible()
    await page.context.close()
