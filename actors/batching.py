"""A size-or-time window that turns concurrent calls into batches, each answered per item.

Why: a seat block's checkouts each cost a Kafka produce and fenced Redis writes; gathered into
one batch they cost one produce and two script calls for the whole batch. A batch closes when
`max_size` items wait or `wait_s` after its first item, whichever comes first, and runs as its
own task: the next batch gathers while the previous one waits on payments or the broker, so a
slow step (a payment provider's second) never stalls the window behind it.

With `max_in_flight`, at most that many batches run at once: items that come meanwhile wait
and go as the next batch when one finishes, so a busy receiver gets fewer, larger batches
(what a seat block, which works through its holds one batch at a time, wants).

The process function answers each item with a result or an exception (that item's own
failure); if it raises, every item of that batch gets the exception and no other batch does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Process = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    def __init__(self, process: Process[T, R], max_size: int, wait_s: float,
                 max_in_flight: int | None = None) -> None:
        if max_size < 1 or wait_s < 0 or (max_in_flight is not None and max_in_flight < 1):
            raise ValueError("max_size and max_in_flight must be >= 1 and wait_s >= 0")
        self._process = process
        self._max_size = max_size
        self._wait_s = wait_s
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """Items wait for their window, or a batch is still being processed."""
        return bool(self._waiting or self._running)

    async def drain(self, timeout_s: float) -> bool:
        """Close the open window and wait (up to `timeout_s`) for every batch in flight; True
        when none is left. An owner about to be replaced lets its checkouts finish under its
        own epoch first, so none is paid or logged behind its successor's back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._flush()
        # a batch that finishes starts the next one waiting for a slot: wait for those too
        while self._running and (left_s := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._running), timeout=left_s)
        return not self.busy

    async def submit(self, item: T) -> R:
        """Join the open batch; returns this item's result or raises its error."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, answer))
        if len(self._waiting) >= self._max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._wait_s, self._flush)
        return await answer

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and (self._max_in_flight is None
                                 or len(self._running) < self._max_in_flight):
            batch = self._waiting[:self._max_size]
            del self._waiting[:self._max_size]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._waiting:  # they waited for a free slot, longer than any window
            self._flush()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._process([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except asyncio.CancelledError:
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as error:  # every caller of the batch hears it
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), result in zip(batch, results, strict=True):
            if answer.done():  # the caller left; the batch went on without it
                continue
            if isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)
