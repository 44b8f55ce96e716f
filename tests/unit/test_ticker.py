"""A ticker runs only while someone waits, wakes every waiter once a tick, and its `after`
hook's scheduled work runs after the woken waiters took their step."""

from __future__ import annotations

import asyncio

from store.ticker import Ticker


async def test_every_waiter_of_a_tick_is_woken_and_after_work_runs_after_them() -> None:
    order: list[str] = []

    async def step() -> None:
        order.append("step")

    def after() -> None:
        asyncio.get_running_loop().call_soon(order.append, "after")

    ticker = Ticker(step, 0.01, after=after)

    async def waiter(name: str) -> None:
        await ticker.next()
        order.append(name)

    await asyncio.gather(waiter("a"), waiter("b"))
    await asyncio.sleep(0)
    assert order[:4] == ["step", "a", "b", "after"]


async def test_the_loop_stops_when_nobody_waits_and_starts_again_with_the_next_waiter() -> None:
    steps, starts = [], []

    async def step() -> None:
        steps.append(1)

    ticker = Ticker(step, 0.01, on_start=lambda: starts.append(1))
    await ticker.next()
    await asyncio.sleep(0.05)  # nobody waits: the loop ends at its next tick
    stopped_at = len(steps)
    await asyncio.sleep(0.05)
    assert len(steps) == stopped_at and len(starts) == 1
    await ticker.next()
    assert len(starts) == 2
