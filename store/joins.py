"""The join log: each event's joins topic, written by the ingress, read by the ingest actors.

Records are keyed by ticket id, so one event's joins spread over all its partitions while a
user's rejoins stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass
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
    return Join(int(value["at"]), value["t"], value["e"], value["u"], int(value["unc"]),
                bool(value["sync"]), value.get("code"), partition, offset)


Columns = list[list[Any]]


def to_columns(batch: list[Join]) -> Columns:
    """A batch as one list per field: how ingest actors ship joins to the room. Ray sends
    lists of plain values through msgpack, ~10x cheaper per join than a list of tuples or
    objects, which it pickles one by one (benchmarks/README.md, bench_waiting_room)."""
    return [list(field) for field in zip(*batch, strict=True)] if batch else []


def from_columns(columns: Columns) -> list[Join]:
    return list(map(Join._make, zip(*columns, strict=True)))


class JoinLog:
    """The ingress's producer: a join is accepted (202) only once the broker acknowledged it.

    Joins wait up to `batch_wait_ms` (or until `batch_max` are waiting) and go out as one
    record batch per partition, acks=all and idempotent; each join is answered when its
    partition's batch is acknowledged. Per join that costs an append to aiokafka's batch
    builder instead of a send coroutine, on the caller's event loop with no thread hand-off
    (kafka-python cost ~2.7x the CPU per acknowledged join: benchmarks/README.md,
    bench_http_joins). The producer is made and connected on the first append, in the loop
    that appends.
    """

    def __init__(self, bootstrap: str, timeout_s: float, batch_max: int = 512,
                 batch_wait_ms: float = 2.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_ms / 1000
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None
        self._waiting: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
                    max_batch_size=MAX_BATCH_BYTES, key_serializer=str.encode,
                    value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode())
                try:
                    await asyncio.wait_for(producer.start(), self._timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise Unavailable(f"kafka unreachable: {exc!r}") from exc
                self._producer = producer
        return self._producer

    async def append(self, topic: str, record: dict[str, Any]) -> None:
        """Returns once the record is acknowledged; raises Unavailable when it may not be."""
        await self._started()
        acked = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(topic, record["t"], record, acked))
        if len(self._waiting) >= self._batch_max:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._batch_wait_s, self._flush)
        await acked

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        producer = self._producer
        assert producer is not None
        try:
            groups = await asyncio.wait_for(self._by_partition(producer, batch), self._timeout_s)
        except Exception as exc:  # no metadata: nothing was sent
            _answer(batch, Unavailable(f"kafka metadata unavailable: {exc!r}"))
            return
        await asyncio.gather(*(self._send_group(producer, topic, partition, group)
                               for (topic, partition), group in groups.items()))

    async def _by_partition(self, producer: AIOKafkaProducer,
                            batch: list[_Pending]) -> dict[tuple[str, int], list[_Pending]]:
        """By ticket: a user's rejoins stay on one partition, after the first join."""
        partitions: dict[str, set[int]] = {}
        groups: dict[tuple[str, int], list[_Pending]] = {}
        for pending in batch:
            if pending.topic not in partitions:
                partitions[pending.topic] = await producer.partitions_for(pending.topic)
            partition = partition_of(pending.key, len(partitions[pending.topic]))
            groups.setdefault((pending.topic, partition), []).append(pending)
        return groups

    async def _send_group(self, producer: AIOKafkaProducer, topic: str, partition: int,
                          group: list[_Pending]) -> None:
        """One partition's share of a batch, answered together."""
        try:
            acks = []
            for builder in _builders(producer, group):
                acks.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.wait_for(asyncio.gather(*acks), self._timeout_s)
        except TimeoutError:
            _answer(group, Unavailable("kafka write timed out"))
        except Exception as exc:  # KafkaError, or the producer stopped under us
            _answer(group, Unavailable(f"kafka write failed: {exc!r}"))
        else:
            _answer(group, None)

    async def close(self) -> None:
        self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def partition_of(ticket_id: str, partitions: int) -> int:
    """The joins partition of a ticket (CRC-32: C speed, the same in every replica)."""
    return zlib.crc32(ticket_id.encode()) % partitions


MAX_BATCH_BYTES = 512 * 1024  # below the broker's default message.max.bytes (1 MiB)


@dataclass(frozen=True)
class _Pending:
    topic: str
    key: str
    record: dict[str, Any]
    acked: asyncio.Future[None]


def _builders(producer: AIOKafkaProducer, group: list[_Pending]) -> list[Any]:
    """The group's records in as few record batches as fit."""
    builders = [producer.create_batch()]
    for pending in group:
        if builders[-1].append(key=pending.key, value=pending.record, timestamp=None) is None:
            builders.append(producer.create_batch())
            builders[-1].append(key=pending.key, value=pending.record, timestamp=None)
    return builders


def _answer(group: list[_Pending], error: Exception | None) -> None:
    for pending in group:
        if pending.acked.done():  # the client left
            continue
        if error is None:
            pending.acked.set_result(None)
        else:
            pending.acked.set_exception(error)
