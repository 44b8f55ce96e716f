"""A Serve replica's garbage collector: what lives long is frozen out of its collections.

Why: a replica holding thousands of availability streams keeps millions of GC-tracked objects
alive (each connection's protocol and transport, its request scope, tasks, subscriber), and
CPython 3.11's full collection walks every one of them while the event loop waits. In
bench_availability_stream (60,000 seats, 7,500 streams, 100 changes a second) one replica
spent 6.8 s in 23 full collections of up to 1.09 s, growing through every connect and
reconnect storm: each a stall of every stream (results/bench_availability_stream_stadium_gc_*
.json; with this policy the longest was 94 ms). Ray Serve
freezes what exists when the replica has started (RAY_SERVE_FREEZE_GC_ON_STARTUP); this
freezes again every `gc_freeze_interval_s`, so a collection only walks what is young.

What it costs: an object frozen while alive that later becomes garbage *in a reference cycle*
is not collected while frozen (garbage freed by reference counting, most of it, is freed as
always). Every `gc_unfreeze_interval_s` the frozen objects go back to the collector, which
frees such cycles in one full collection: one pause that often, instead of several a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator

log = logging.getLogger("ticketing.gc")


async def freeze_forever(freeze_every_s: float, unfreeze_every_s: float) -> None:
    """Freeze every `freeze_every_s`; hand everything back and collect it once every
    `unfreeze_every_s` (0: never). Runs until cancelled; `freeze_every_s` 0 does nothing."""
    if freeze_every_s <= 0:
        return
    unfrozen_at = time.monotonic()
    while True:
        await asyncio.sleep(freeze_every_s)
        if unfreeze_every_s > 0 and time.monotonic() - unfrozen_at >= unfreeze_every_s:
            gc.unfreeze()
            started = time.perf_counter()
            freed = gc.collect()
            unfrozen_at = time.monotonic()
            log.info("gc: unfroze and collected %d objects in %.0f ms", freed,
                     (time.perf_counter() - started) * 1000)
        gc.freeze()


@contextlib.asynccontextmanager
async def applied(freeze_every_s: float, unfreeze_every_s: float) -> AsyncIterator[None]:
    """`freeze_forever` for as long as the block runs (an ASGI app's lifespan)."""
    freezer = asyncio.get_running_loop().create_task(
        freeze_forever(freeze_every_s, unfreeze_every_s))
    try:
        yield
    finally:
        freezer.cancel()
