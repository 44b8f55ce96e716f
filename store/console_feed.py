"""The operator console's live numbers in one Serve replica: one sampler per event, shared by
every console watching it.

While at least one console watches an event, its `ConsoleFeed` reads the event's counters once
every `interval_s` (the event definition, the room's numbers, a BITCOUNT of each block's held
and sold bitmaps, the bookings' count and, when that changed, their revenue), makes a snapshot
of them with `domain.console.snapshot` and keeps the last five minutes of snapshots, so a
console that connects gets its charts full at once. A replica samples an event once a tick
however many consoles watch it; an event nobody watches costs nothing.

What the store does not have comes in from the replica: the room numbers through the queue
client, the fans' position-update lag this replica measured, its error answers for the event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from domain import console, errors
from domain.event import Event
from store import catalog
from store.ticker import Ticker

log = logging.getLogger("ticketing.console")

QueueStats = Callable[[Event], Awaitable[dict[str, Any]]]
LagOf = Callable[[str], float | None]


def sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ConsoleFeed:
    """One event's console snapshots on this replica, sampled while someone listens."""

    def __init__(self, redis: Redis, event_id: str, queue_stats: QueueStats, lag_of: LagOf,
                 tally: console.StatusTally, interval_s: float) -> None:
        self._redis, self.event_id, self.interval_s = redis, event_id, interval_s
        self._queue_stats, self._lag_of, self._tally = queue_stats, lag_of, tally
        self.history = console.History()
        self.error: dict[str, str] | None = None  # the last tick's failure, if it failed
        self._ticker = Ticker(self._sample_once, interval_s)
        self._revenue: tuple[int, int] = (-1, 0)  # (bookings counted, their revenue)

    async def next(self) -> None:
        """Wait for the next tick (starting the sampler if nobody kept it running)."""
        await self._ticker.next()

    async def _sample_once(self) -> None:
        try:
            self.history.add(time.time(), await self._sample())
            self.error = None
        except errors.TicketingError as error:
            self.error = {"code": error.code, "message": error.message}
        except Exception as error:  # Redis moving, a room not answering: say so, go on
            log.warning("console sample of %s failed: %r", self.event_id, error)
            self.error = {"code": "unavailable", "message": "the numbers could not be read"}

    async def _sample(self) -> dict[str, Any]:
        event = await catalog.load_event(self._redis, self.event_id)
        if event is None:
            raise await catalog.missing_event(self._redis, self.event_id)
        room = await self._queue_stats(event)
        held, sold = await catalog.seat_counts(self._redis, event)
        counts = console.Counts(room["waiting"], room["pre_queue"], room["admitted"], held, sold,
                                await self._revenue_cents(event.event_id))
        return console.snapshot(event, counts, self.history.items(), time.time(),
                                self._lag_of(event.event_id), self._tally.of(event.event_id))

    async def _revenue_cents(self, event_id: str) -> int:
        """The bookings' revenue, read again only when their count changed."""
        count = await catalog.bookings_count(self._redis, event_id)
        if count != self._revenue[0]:
            self._revenue = (count, await catalog.revenue_cents(self._redis, event_id))
        return self._revenue[1]


class ConsoleFeeds:
    """This replica's console feeds, one per event watched."""

    def __init__(self, redis: Redis, queue_stats: QueueStats, lag_of: LagOf,
                 tally: console.StatusTally, interval_s: float = 1.0) -> None:
        self._redis, self._queue_stats, self._lag_of = redis, queue_stats, lag_of
        self._tally, self.interval_s = tally, interval_s
        self._feeds: dict[str, ConsoleFeed] = {}

    def feed(self, event_id: str) -> ConsoleFeed:
        if event_id not in self._feeds:
            self._feeds[event_id] = ConsoleFeed(self._redis, event_id, self._queue_stats,
                                                self._lag_of, self._tally, self.interval_s)
        return self._feeds[event_id]

    async def stream(self, event: Event) -> AsyncIterator[bytes]:
        """SSE: `history` (every snapshot of the last five minutes, oldest first), then a
        `snapshot` every tick; `error` for a tick whose numbers could not be read."""
        feed = self.feed(event.event_id)
        try:
            yield b"retry: 2000\n\n"
            last = feed.history.last()
            if last is None or time.time() - last["at"] > 2 * feed.interval_s:
                await feed.next()  # nobody watched lately: sample now, not an old history
            yield sse("history", {"snapshots": feed.history.items()})
            while True:
                await feed.next()
                if feed.error is not None:
                    yield sse("error", feed.error)
                elif (last := feed.history.last()) is not None:
                    yield sse("snapshot", last)
        except asyncio.CancelledError:
            return  # the console left
