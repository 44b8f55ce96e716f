"""The due-index reminder of a busy entity: one home for what rooms and ingest both need."""

from __future__ import annotations

import time
from typing import Any

from store import keys


class Heartbeat:
    """While busy, an entity keeps its due entry `heartbeat_s` ahead, refreshed every third of
    that (a Redis write a few times per period, not per call): if its host is lost, another
    host's due sweep activates it within `heartbeat_s` (ENTITY_HEARTBEAT_S)."""

    def __init__(self, redis: Any, entity_id: str, heartbeat_s: float) -> None:
        self._redis = redis
        self._entity_id = entity_id
        self._heartbeat_s = heartbeat_s
        self._beat_at = -heartbeat_s

    async def beat(self) -> None:
        now = time.monotonic()
        if now - self._beat_at < self._heartbeat_s / 3:
            return
        self._beat_at = now
        due = int(time.time() * 1000 + self._heartbeat_s * 1000)
        await self._redis.zadd(keys.due_index(), {self._entity_id: due})
