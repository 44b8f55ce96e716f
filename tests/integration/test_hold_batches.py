"""Hold batches (replica/client.py): one seat block that is slow to answer holds up only its
own holds, never another block's or another event's on the same replica.

`set_delay("after_plan")` parks a block's hold batch after it planned it, as a block that is
busy, restarting or on a loaded host would; the test session runs one Serve replica, so both
holds below go through the same one."""

from __future__ import annotations

import asyncio
import time

import pytest

from actors import directory
from tests.integration.test_checkout_batch import settled_pool

pytestmark = pytest.mark.integration

SLOW_S = 4.0


async def test_a_slow_block_of_one_event_does_not_hold_up_another_events_holds(
        api, http, new_event, admission, app_settings, app_redis) -> None:
    await settled_pool(app_redis, app_settings)
    slow = (await new_event(rows=1, seats_per_row=4))["event_id"]
    other = (await new_event(rows=1, seats_per_row=4))["event_id"]
    await directory.seat_block(app_settings, slow, 0).set_delay.remote("after_plan", SLOW_S)

    async def hold(event_id: str, user: str) -> tuple[int, float]:
        started = time.monotonic()
        response = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": ["A-1-1"]},
                                   headers=admission(user, event_id))
        return response.status_code, time.monotonic() - started

    parked = asyncio.create_task(hold(slow, "fan-slow"))
    await asyncio.sleep(0.5)  # its batch is parked at the slow block now
    status, took_s = await hold(other, "fan-other")
    assert status == 201
    assert took_s < SLOW_S / 2, f"the other event's hold waited {took_s:.1f} s behind the slow block"
    assert (await parked)[0] == 201
