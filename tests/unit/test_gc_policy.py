"""The replica's GC policy: live objects are frozen out of collections, and handed back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from replica import gc_policy


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


async def run_for(seconds: float, freeze_every_s: float, unfreeze_every_s: float) -> None:
    task = asyncio.get_running_loop().create_task(
        gc_policy.freeze_forever(freeze_every_s, unfreeze_every_s))
    await asyncio.sleep(seconds)
    task.cancel()


async def test_live_objects_are_frozen_at_each_interval() -> None:
    await run_for(0.05, 0.01, 0)
    assert gc.get_freeze_count() > 0


async def test_an_interval_of_zero_freezes_nothing() -> None:
    await run_for(0.05, 0, 0)
    assert gc.get_freeze_count() == 0


async def test_a_cycle_that_became_garbage_while_frozen_is_freed_at_the_unfreeze() -> None:
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gc.freeze()  # frozen while alive
    del a, b  # now garbage, but in a cycle: only a collection frees it
    assert any(type(o) is Node for o in gc.get_objects()) is False  # frozen: not tracked
    await run_for(0.1, 0.02, 0.05)  # an unfreeze and its full collection happen in there
    gc.unfreeze()
    assert not any(type(o) is Node for o in gc.get_objects())
