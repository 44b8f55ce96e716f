"""The idempotent Kafka producer behind the ledger and the small durable logs, started again
after a write failed on it.

An idempotent producer whose broker restarted can stay stuck on its sequence numbers
(`OutOfOrderSequenceNumber`) and time out every write after: the 100,000-user on-sale with
`restart-kafka@10` confirmed nothing more once the broker was back, and a room stopped
admitting for good after the test broker restarted under it. So a write that failed marks
the producer suspect, and the next write starts a new one first. A record written again that
way may be in its log twice, which every reader drops (booking ids, tickets, the last
definition per event).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from domain.errors import Unavailable
from store.records import compact_json


class Producer:
    """One process's producer: `current()` to write with, `failed(p)` when a write on p failed."""

    def __init__(self, producer: AIOKafkaProducer, bootstrap: str, timeout_s: float,
                 **options: Any) -> None:
        self._producer = producer
        self._bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._options = options
        self._suspect: AIOKafkaProducer | None = None
        self._restarting = asyncio.Lock()
        self.restarts = 0  # producers started again after a failed write (tests, operators)

    @classmethod
    async def start(cls, bootstrap: str, timeout_s: float, **options: Any) -> Producer:
        """Connect in the running loop; raises Unavailable when the broker cannot be reached.
        `options` go to AIOKafkaProducer (the ledger's max_batch_size)."""
        return cls(await _connect(bootstrap, timeout_s, options), bootstrap, timeout_s, **options)

    async def current(self) -> AIOKafkaProducer:
        """The producer to write with: a new one if a write failed on the last (started once,
        however many writes ask at the same time); raises Unavailable while the broker is away."""
        suspect = self._suspect
        if suspect is None:
            return self._producer
        async with self._restarting:
            if self._producer is suspect:
                self._producer = await _connect(self._bootstrap, self.timeout_s, self._options)
                self._suspect = None
                self.restarts += 1
                asyncio.get_running_loop().create_task(_stop(suspect, self.timeout_s))
            return self._producer

    def failed(self, producer: AIOKafkaProducer) -> None:
        """A write on `producer` failed: the next `current()` replaces it (if still current)."""
        if producer is self._producer:
            self._suspect = producer

    async def stop(self) -> None:
        await self._producer.stop()


async def _connect(bootstrap: str, timeout_s: float, options: dict[str, Any]) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        request_timeout_ms=int(timeout_s * 1000), key_serializer=str.encode,
        value_serializer=lambda v: compact_json(v).encode(), **options)
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await producer.stop()
        raise Unavailable(f"kafka unreachable: {exc!r}") from exc
    return producer


async def _stop(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop a replaced producer without waiting on it (what it still held failed already)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout_s)
