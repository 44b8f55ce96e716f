"""The join log: each event's joins topic, written by the ingress, read by the ingest actors.

Records are keyed by ticket id, so one event's joins spread over all its partitions while a
user's rejoins stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from domain.errors import Unavailable
from domain.waiting.tickets import Join


def encode(ticket_id: str, event_id: str, user_id: str, at_ms: int, uncertainty_ms: int,
           synced: bool, priority_code: str | None) -> dict[str, Any]:
    return {"t": ticket_id, "e": event_id, "u": user_id, "at": at_ms, "unc": uncertainty_ms,
            "sync": synced, "code": priority_code}


def decode(value: dict[str, Any], partition: int, offset: int) -> Join:
    return Join(ticket_id=value["t"], event_id=value["e"], user_id=value["u"],
                joined_at_ms=int(value["at"]), uncertainty_ms=int(value["unc"]),
                clock_synced=bool(value["sync"]), priority_code=value.get("code"),
                partition=partition, offset=offset)


class JoinLog:
    """The ingress's producer: a join is accepted (202) only once the broker acknowledged it.

    aiokafka, on the caller's event loop: acks=all and idempotent like the ledger's producer,
    batched by `linger_ms`, with no thread hand-off per record. kafka-python cost ~2.7x the CPU
    per acknowledged join here (benchmarks/README.md, bench_http_joins). The producer is made
    and connected on the first append, in the loop that appends.
    """

    def __init__(self, bootstrap: str, timeout_s: float, linger_ms: int = 2) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
                    linger_ms=self._linger_ms, key_serializer=str.encode,
                    value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode())
                try:
                    await asyncio.wait_for(producer.start(), self._timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise Unavailable(f"kafka unreachable: {exc!r}") from exc
                self._producer = producer
        return self._producer

    async def append(self, topic: str, record: dict[str, Any]) -> None:
        producer = await self._started()
        try:
            sent = await producer.send(topic, value=record, key=record["t"])
            await asyncio.wait_for(sent, self._timeout_s)
        except TimeoutError as exc:
            raise Unavailable("kafka write timed out") from exc
        except KafkaError as exc:
            raise Unavailable(f"kafka write failed: {exc!r}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
