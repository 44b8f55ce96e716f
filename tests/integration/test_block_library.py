"""The block library on the real Redis: loaded when a server lacks it, fenced by the epoch."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from domain.errors import StaleOwner
from store import keys, scripts
from store.scripts import BlockScripts, HoldOutcome, PlannedHold

pytestmark = pytest.mark.integration

EVENT = "evb10c4a11b0a7"


async def test_a_redis_without_the_library_gets_it_on_first_use_and_a_zombie_is_refused(
        redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        for key in keys.block_script_keys(EVENT, 0):
            await redis.delete(key)
        await redis.function_flush()  # as a new or emptied server has none
        await redis.set(keys.block_epoch(EVENT, 0), "2")
        owner = BlockScripts(redis, EVENT, 0, epoch=2)
        record = 'active|["u1",[3,4],2000,9999999999999,""]'
        outcomes = await owner.hold_batch([PlannedHold("t1", "u1", [3, 4], record)], 4)
        assert outcomes == [HoldOutcome.OK]
        libraries = await redis.function_list(library=f"ticketing_block_{scripts.BLOCK_VERSION}")
        assert len(libraries) == 1
        assert await owner.release(["t1"], now=1.0) == ["t1"]
        zombie = BlockScripts(redis, EVENT, 0, epoch=1)
        with pytest.raises(StaleOwner):
            await zombie.hold_batch([PlannedHold("t2", "u2", [5], record)], 4)
        assert await redis.hget(keys.block_holds(EVENT, 0), "t2") is None
    finally:
        await redis.aclose()
