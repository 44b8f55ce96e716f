"""Rate limits shared by every Serve replica: GCRA budgets in Redis, one Lua call per request.

Why Redis and not each replica's memory: with N replicas behind HAProxy's leastconn, a
per-replica budget lets one client through N times over, and a restarted replica forgets its
debtors. One script call checks and charges every budget of a request (its client address and
its user) atomically, on Redis's clock, so replicas with skewed clocks agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    def argv(self) -> str:
        """"<interval_ms>,<tolerance_ms>" as rate_limit.lua reads it."""
        interval = 1000.0 / self.rate_per_s
        return f"{interval:.3f},{(max(1.0, self.burst) - 1) * interval:.3f}"


def address(tag: str, scope: str, client: str, rate_per_s: float) -> Budget:
    return Budget(keys.rate_budget(tag, scope, f"a:{client}"), rate_per_s, max(1.0, rate_per_s))


def user(tag: str, scope: str, user_id: str, rate_per_s: float) -> Budget:
    return Budget(keys.rate_budget(tag, scope, f"u:{user_id}"), rate_per_s,
                  max(3.0, rate_per_s))


class RateLimits:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(RATE_LIMIT)

    async def spend(self, *budgets: Budget) -> None:
        """Charge one request to every budget, or raise RateLimited (none charged)."""
        wait_ms = int(await self._script([b.key for b in budgets], [b.argv() for b in budgets]))
        if wait_ms > 0:
            raise RateLimited("too many requests; slow down", math.ceil(wait_ms / 100) / 10)
