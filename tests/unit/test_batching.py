"""The size-or-time window behind hold and checkout batches (actors/batching.py): no services."""

from __future__ import annotations

import asyncio
import time

import pytest

from actors.batching import Batcher


class Recorder:
    """Doubles each item; remembers the batches it saw; can be held back or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_batch: int | None = None

    async def process(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(items)
        number = len(self.batches)
        if self.gate is not None:
            await self.gate.wait()
        if number == self.fail_batch:
            raise RuntimeError("the produce failed")
        return [ValueError(f"odd {i}") if i < 0 else 2 * i for i in items]


async def test_calls_within_the_wait_window_form_one_batch() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.process, max_size=100, wait_s=0.02)
    assert await asyncio.gather(*[batcher.submit(i) for i in range(10)]) == [
        2 * i for i in range(10)]
    assert recorder.batches == [list(range(10))]


async def test_a_full_batch_goes_at_once_without_waiting_for_the_window() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.process, max_size=4, wait_s=10.0)
    started = time.monotonic()
    await asyncio.gather(*[batcher.submit(i) for i in range(8)])
    assert time.monotonic() - started < 1.0
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]


async def test_an_items_own_error_fails_only_that_item() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.process, max_size=10, wait_s=0.005)
    results = await asyncio.gather(*[batcher.submit(i) for i in (1, -1, 3)],
                                   return_exceptions=True)
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError)
    assert len(recorder.batches) == 1


async def test_a_failed_batch_fails_exactly_its_own_items() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    recorder.fail_batch = 1
    batcher = Batcher(recorder.process, max_size=2, wait_s=10.0)
    first = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    second = [asyncio.ensure_future(batcher.submit(i)) for i in (3, 4)]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    assert [type(r) for r in await asyncio.gather(*first, return_exceptions=True)] == [
        RuntimeError, RuntimeError]
    assert await asyncio.gather(*second) == [6, 8]


async def test_the_next_batch_gathers_while_the_previous_one_is_still_running() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=100, wait_s=0.005)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.03)  # the first batch is running (held at the gate)
    second = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.03)
    assert recorder.batches == [[1], [2]] and batcher.busy
    recorder.gate.set()
    assert (await first, await second) == (2, 4)
    await asyncio.sleep(0)
    assert not batcher.busy


async def test_a_caller_that_leaves_does_not_stop_its_batch() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=100, wait_s=0.001)
    leaving = asyncio.ensure_future(batcher.submit(1))
    staying = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.02)
    leaving.cancel()
    recorder.gate.set()
    assert await staying == 4
    assert recorder.batches == [[1, 2]]


async def test_drain_sends_the_open_window_and_waits_for_every_batch_in_flight() -> None:
    """An owner being replaced drains first: what waits for its window goes now, and the
    drain returns once every batch has answered (its callers heard before the successor)."""
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=100, wait_s=10.0)  # the window would wait
    calls = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    drain = asyncio.ensure_future(batcher.drain(5.0))
    await asyncio.sleep(0.02)
    assert recorder.batches == [[1, 2]] and not drain.done()  # sent, held at the gate
    recorder.gate.set()
    assert await drain is True
    assert [c.result() for c in calls] == [2, 4] and not batcher.busy


async def test_drain_gives_up_after_its_timeout_and_leaves_the_batch_running() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=100, wait_s=0.001)
    call = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    assert await batcher.drain(0.05) is False
    assert 0.04 <= time.monotonic() - started < 1.0 and batcher.busy
    recorder.gate.set()  # not cancelled: it still answers its caller
    assert await call == 6


def test_limits_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(Recorder().process, max_size=0, wait_s=0.01)
    with pytest.raises(ValueError):
        Batcher(Recorder().process, max_size=1, wait_s=-1)
    with pytest.raises(ValueError):
        Batcher(Recorder().process, max_size=1, wait_s=0.01, max_in_flight=0)


async def test_with_one_batch_in_flight_what_comes_meanwhile_goes_as_the_next_batch() -> None:
    """A seat block works through its holds a batch at a time: while one batch is out, the
    next gathers (past its window) and goes as soon as the first has answered."""
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=100, wait_s=0.001, max_in_flight=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.02)  # out, held at the gate
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0.02)  # far past the window: they still wait for the slot
    assert recorder.batches == [[1]]
    recorder.gate.set()
    assert await first == 2 and await asyncio.gather(*rest) == [4, 6, 8]
    assert recorder.batches == [[1], [2, 3, 4]] and not batcher.busy


async def test_what_waits_for_a_slot_still_goes_in_batches_of_at_most_max_size() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=2, wait_s=0.001, max_in_flight=1)
    calls = [asyncio.ensure_future(batcher.submit(i)) for i in range(5)]
    await asyncio.sleep(0.02)
    assert recorder.batches == [[0, 1]]
    recorder.gate.set()
    assert await asyncio.gather(*calls) == [0, 2, 4, 6, 8]
    assert recorder.batches == [[0, 1], [2, 3], [4]]


async def test_drain_also_waits_for_the_batches_that_waited_for_a_slot() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher = Batcher(recorder.process, max_size=1, wait_s=10.0, max_in_flight=1)
    calls = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    drain = asyncio.ensure_future(batcher.drain(5.0))
    await asyncio.sleep(0.02)
    recorder.gate.set()
    assert await drain is True
    assert [c.result() for c in calls] == [2, 4] and recorder.batches == [[1], [2]]
