"""An event's optional proof of work at join: the server's challenge, solved, for this user."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from domain.pow import solve, solves
from tests.integration.conftest import user_header
from tests.integration.test_web import PHONE, browser, buyer, shot  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


async def challenge(http: httpx.AsyncClient, event_id: str, user: str) -> dict[str, Any]:
    response = await http.get(f"/v1/events/{event_id}/queue/challenge", headers=user_header(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def join(http: httpx.AsyncClient, event_id: str, user: str, body: dict[str, Any]) -> Any:
    return await http.post(f"/v1/events/{event_id}/queue", json=body, headers=user_header(user))


async def test_a_join_needs_a_solution_of_a_challenge_issued_to_that_user(
        http, new_event) -> None:
    event = await new_event(pow_difficulty=10)
    eid = event["event_id"]
    assert event["pow_difficulty"] == 10
    missing = await join(http, eid, "pow-ann", {})
    assert missing.status_code == 428 and missing.json()["error"]["code"] == "challenge_required"
    issued = await challenge(http, eid, "pow-ann")
    assert issued["difficulty"] == 10
    wrong = next(str(n) for n in range(10_000) if not solves(issued["challenge"], str(n), 10))
    unsolved = await join(http, eid, "pow-ann", {"pow": {"challenge": issued["challenge"],
                                                         "nonce": wrong}})
    assert unsolved.status_code == 428
    made_up = await join(http, eid, "pow-ann", {"pow": {"challenge": "x.y.z", "nonce": "1"}})
    assert made_up.status_code == 401
    solution = {"pow": {"challenge": issued["challenge"], "nonce": solve(issued["challenge"], 10)}}
    stolen = await join(http, eid, "pow-bot", solution)  # another account reusing ann's work
    assert stolen.status_code == 403
    assert (await join(http, eid, "pow-ann", solution)).status_code == 202
    other = await new_event(pow_difficulty=10)  # a challenge is for its event only
    assert (await join(http, other["event_id"], "pow-ann", solution)).status_code == 403


async def test_an_event_without_a_difficulty_takes_joins_without_work(http, new_event) -> None:
    event = await new_event()
    assert event["pow_difficulty"] == 0
    assert (await join(http, event["event_id"], "pow-free", {})).status_code == 202


async def test_the_web_client_solves_the_challenge_in_a_worker_and_joins(
        browser, api, new_event) -> None:  # noqa: F811 (the fixture imported above)
    event = await new_event(pow_difficulty=12)
    page = await buyer(browser, api, PHONE)
    workers: list[Any] = []
    page.on("worker", lambda worker: workers.append(worker))
    await page.goto(f"/app/queue.html?event={event['event_id']}")
    await page.get_by_label("Your name or e-mail").fill("pow-web")
    await page.get_by_role("button", name="Join the queue").click()
    await page.wait_for_url(re.compile(r"/app/seats\.html\?"), timeout=60_000)
    assert any(w.url.endswith("/app/pow-worker.js") for w in workers)
    await shot(page, "pow-joined")
    await page.context.close()
