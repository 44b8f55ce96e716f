"""Rate limits shared by every Serve replica: GCRA budgets in Redis, one Lua call per batch.

Why Redis and not each replica's memory: with N replicas behind HAProxy's leastconn, a
per-replica budget lets one client through N times over, and a restarted replica forgets its
debtors. One script call checks and charges every budget of a request (its client address and
its user) atomically, on Redis's clock, so replicas with skewed clocks agree.

The requests that ask within one turn of the event loop share one script call per budget slot
(an event's budgets share its hash slot), decided in arrival order exactly as separate calls
would be: under load a replica pays one Redis round trip for several joins instead of one each
(the round trip is most of a join's own cost after its token check), with no added wait.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field

from redis.asyncio import Redis

from domain.errors import RateLimited
from store import keys
from store.scripts import load_script

RATE_LIMIT = load_script("rate_limit.lua")


@dataclass(frozen=True)
class Budget:
    key: str
    rate_per_s: float
    burst: float
    slot: str = field(default="", compare=False)  # the hash-slot tag: budgets sharing it batch

    def argv(self) -> str:
        """"<interval_ms>,<tolerance_ms>" as rate_limit.lua reads it."""
        interval = 1000.0 / self.rate_per_s
        return f"{interval:.3f},{(max(1.0, self.burst) - 1) * interval:.3f}"


def address(tag: str, scope: str, client: str, rate_per_s: float) -> Budget:
    return Budget(keys.rate_budget(tag, scope, f"a:{client}"), rate_per_s, max(1.0, rate_per_s),
                  tag)


def user(tag: str, scope: str, user_id: str, rate_per_s: float) -> Budget:
    return Budget(keys.rate_budget(tag, scope, f"u:{user_id}"), rate_per_s,
                  max(3.0, rate_per_s), tag)


@dataclass
class _Ask:
    budgets: tuple[Budget, ...]
    answer: asyncio.Future[int]


class RateLimits:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(RATE_LIMIT)
        self._asking: dict[str, list[_Ask]] = {}
        self._flush_scheduled = False

    async def spend(self, *budgets: Budget) -> None:
        """Charge one request to every budget, or raise RateLimited (none charged)."""
        loop = asyncio.get_running_loop()
        ask = _Ask(budgets, loop.create_future())
        self._asking.setdefault(budgets[0].slot if budgets else "", []).append(ask)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        wait_ms = await ask.answer
        if wait_ms > 0:
            raise RateLimited("too many requests; slow down", math.ceil(wait_ms / 100) / 10)

    def _flush(self) -> None:
        self._flush_scheduled = False
        groups, self._asking = self._asking, {}
        loop = asyncio.get_running_loop()
        for group in groups.values():
            task = loop.create_task(self._decide(group))
            task.add_done_callback(_retrieve)

    async def _decide(self, group: list[_Ask]) -> None:
        try:
            raw = await self._script(
                [b.key for ask in group for b in ask.budgets],
                [",".join(str(len(ask.budgets)) for ask in group)]
                + [b.argv() for ask in group for b in ask.budgets])
            waits = json.loads(raw)
            if len(waits) != len(group):
                raise RuntimeError(f"{len(waits)} answers for {len(group)} requests")
        except Exception as error:
            for ask in group:
                if not ask.answer.done():
                    ask.answer.set_exception(error)
            return
        for ask, wait_ms in zip(group, waits, strict=True):
            if not ask.answer.done():
                ask.answer.set_result(int(wait_ms))


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
