"""Where cached reads go: a Redis read replica that is up and fresh enough, else the primary.

Only cache reads (event details, prices, availability) come here; nothing that decides a hold
does. Each replica's staleness is measured, not guessed: a timestamp is written to the primary
and timed until the replica shows it. A replica that fails a read is skipped for a while and
the read is retried on the primary at once, so a stopped replica costs no failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.settings import Settings
from store import keys, redis_clients
from store.metrics import CACHE_READS, REPLICA_STALENESS

log = logging.getLogger("ticketing.replicas")
T = TypeVar("T")
FAILURES = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)



@dataclass(frozen=True)
class Source:
    """Where one read was served: `primary`, or `replica` with its staleness then."""

    kind: str
    staleness_s: float | None = None

    def headers(self) -> dict[str, str]:
        out = {"X-Read-From": self.kind}
        if self.staleness_s is not None:
            out["X-Replica-Staleness-Ms"] = f"{self.staleness_s * 1000:.1f}"
        return out


PRIMARY = Source("primary")


class Replica:
    def __init__(self, label: str, client: Redis) -> None:
        """`client` comes from store.redis_clients (no retries and short timeouts: a dead
        replica must fail fast, the primary answers)."""
        self.label = urlsplit(label).netloc or label
        self.redis = client
        self.staleness_s: float | None = None  # unknown until measured
        self.down_until = 0.0
        self.staleness_gauge = REPLICA_STALENESS.bind(self.label)

    def usable(self, max_staleness_s: float, now: float) -> bool:
        return (now >= self.down_until and self.staleness_s is not None
                and self.staleness_s <= max_staleness_s)


class ReadRouter:
    def __init__(self, primary: Redis, settings: Settings) -> None:
        self.primary = primary
        self._settings = settings
        self.replicas = [Replica(label, client)
                         for label, client in redis_clients.read_replicas(settings)]
        self._next = 0
        self._heartbeat = keys.replica_heartbeat(uuid.uuid4().hex[:12])
        self._prober: asyncio.Task[None] | None = None
        self._from_replica = CACHE_READS.bind("replica")
        self._from_primary = CACHE_READS.bind("primary")

    def pick(self) -> Replica | None:
        """A usable replica (round robin), or None for the primary."""
        self._ensure_prober()
        now = time.monotonic()
        for _ in range(len(self.replicas)):
            self._next = (self._next + 1) % len(self.replicas)
            replica = self.replicas[self._next]
            if replica.usable(self._settings.replica_max_staleness_s, now):
                return replica
        return None

    async def read(self, fn: Callable[[Redis], Awaitable[T]]) -> tuple[T, Source]:
        """fn on a replica when one is usable, else (or when it fails) on the primary."""
        replica = self.pick()
        if replica is not None:
            try:
                result = await fn(replica.redis)
            except FAILURES as error:
                self.failed(replica, error)
            else:
                self._from_replica.inc()
                return result, Source("replica", replica.staleness_s)
        self._from_primary.inc()
        return await fn(self.primary), PRIMARY

    def failed(self, replica: Replica, error: BaseException) -> None:
        if time.monotonic() >= replica.down_until:
            log.warning("replica %s failed (%s); reads go to the primary", replica.label, error)
        replica.down_until = time.monotonic() + self._settings.replica_retry_s
        replica.staleness_s = None
        replica.staleness_gauge.set(-1)

    def _ensure_prober(self) -> None:
        if self.replicas and self._prober is None:
            self._prober = asyncio.get_running_loop().create_task(self._probe_forever())

    async def _probe_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.probe()
            await asyncio.sleep(self._settings.replica_probe_interval_s)

    async def probe(self) -> None:
        """Write a timestamp to the primary; time how long until each replica shows it. The key
        is this router's own and expires: a router that stops leaves nothing behind."""
        written = time.time()
        expiry_ms = int(1000 * (self._settings.replica_probe_interval_s
                                + 4 * self._settings.replica_max_staleness_s))
        await self.primary.set(self._heartbeat, repr(written), px=expiry_ms)
        await asyncio.gather(*[self._measure(r, written) for r in self.replicas])

    async def _measure(self, replica: Replica, written: float) -> None:
        deadline = time.monotonic() + 2 * self._settings.replica_max_staleness_s
        try:
            while True:
                raw = await replica.redis.get(self._heartbeat)
                if raw is not None and float(raw) >= written:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("replica did not catch up")
                await asyncio.sleep(0.002)
        except FAILURES as error:
            self.failed(replica, error)
            return
        replica.staleness_s = time.time() - written
        if time.monotonic() >= replica.down_until:
            replica.staleness_gauge.set(replica.staleness_s)

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
        for replica in self.replicas:
            await replica.redis.aclose()
