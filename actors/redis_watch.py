"""Which Redis a process talks to: its run_id, which changes whenever the server restarts.

A Redis that restarted may have lost its last writes (AOF `everysec`: up to about a second on
a power loss) or everything (a new, empty server); a replica promoted by Sentinel may lack
the last writes of the old primary. Every owner's memory (a block's holds, a room's
admissions and merge state) may then be ahead of Redis. The host watches the run_id and,
when it changes, activates every entity it hosts again: each takes a new epoch and rebuilds
its memory from Redis, reconciled with the durable logs (docs/design.md, "Losing Redis").
"""

from __future__ import annotations

from typing import Any


class RedisIncarnation:
    """The run_id last seen; `changed()` says whether the server is another one since."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self.run_id: str | None = None
        self.answering = False  # the last `changed()` had an answer (Redis up, loaded)

    async def read(self) -> str | None:
        """The server's run_id, or None while it does not answer or is still loading its
        data (then nothing is decided yet)."""
        try:
            server = await self._redis.info("server")
            persistence = await self._redis.info("persistence")
        except Exception:
            return None
        if int(persistence.get("loading", 0)):
            return None
        return str(server["run_id"])

    async def changed(self) -> bool:
        """True once when a server other than the last one seen answers (not the first)."""
        run_id = await self.read()
        self.answering = run_id is not None
        if run_id is None:
            return False
        before, self.run_id = self.run_id, run_id
        return before is not None and before != run_id
