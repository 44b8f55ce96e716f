"""A loop that runs only while someone waits for its next tick.

A replica's streams of one event share one reader (the room's numbers for the queue streams,
the operator console's sampler): the first waiter starts it, every waiter of a tick is woken
by it, and it stops at the first tick that finds nobody waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Ticker:
    """Each tick: `await step()`, wake every waiter of `next()`, then `after()` (called once
    the woken waiters are scheduled, so what it schedules runs after they took their step).
    `on_start()` is called each time the loop starts again after it stopped."""

    def __init__(self, step: Callable[[], Awaitable[None]], interval_s: float,
                 after: Callable[[], None] | None = None,
                 on_start: Callable[[], None] | None = None) -> None:
        self._step, self._after, self.interval_s = step, after, interval_s
        self._on_start = on_start
        self._tick = asyncio.Event()
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None

    async def next(self) -> None:
        """Wait for the next tick (starting the loop if nobody kept it running)."""
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await self._tick.wait()
        finally:
            self._listeners -= 1

    async def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while self._listeners > 0:
            await self._step()
            tick, self._tick = self._tick, asyncio.Event()
            tick.set()
            if self._after is not None:
                self._after()
            await asyncio.sleep(self.interval_s)
