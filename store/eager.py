"""Run a coroutine now, in the caller's turn, and only make a task of it if it has to wait.

This is what Python 3.12's eager tasks do, for one coroutine on 3.11. The availability feed
hands each delta to thousands of streams at once. Writing to a healthy connection never waits
(uvicorn writes to the transport and returns), so a task per write, or a task per stream woken
per delta, costs far more than the write itself: the event-loop turn, the wake-up and the
generator's resume were most of a replica's time at 7,500 streams
(benchmarks/bench_availability_stream.py). A write that does wait (the client reads slower
than we write) goes on in a task of its own, so it holds up nobody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Step `coro` until it first waits: None if it finished (an error it raised is raised
    here), else the task that finishes it. Needs a running loop only when it waits."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Go on from where `coro` suspended, as a task would have: wait until what it waits on
    is done, then step it again, and its own `await` sees that result or error; cancelling
    the task cancels `coro` where it waits."""
    while True:
        cancelled: asyncio.CancelledError | None = None
        try:
            if waiting_on is None:  # a bare yield: let the loop run once
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False  # taken, as a task takes it
                await waiting_on
        except asyncio.CancelledError as error:
            cancelled = error
        except Exception:  # coro sees the error itself when stepped again
            pass
        try:
            waiting_on = coro.send(None) if cancelled is None else coro.throw(cancelled)
        except StopIteration:
            return
