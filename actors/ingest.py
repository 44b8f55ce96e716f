"""Ingest entities: pull batches of joins from an event's partitions and feed its waiting room.

Hosted by a pool host and active only while its event takes joins (the first join of an
idle event wakes it, see `actors.queue_client`); while active it keeps a heartbeat in the due
index, so a host lost with it is replaced within ENTITY_HEARTBEAT_S.

A batch is taken by size or time (`ingest_batch_max`, `ingest_wait_ms`). Offsets are committed
only up to what the room reports persisted. If the room restarted (a new epoch) or a call to it
failed, the actor rewinds to the committed offsets and sends again: the room drops what it
already has, so nobody is lost or queued twice.

The consumer is confluent-kafka (librdkafka): fetching and record parsing happen in C, outside
the GIL; kafka-python spent several times more CPU per record here (benchmarks/README.md,
bench_waiting_room).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from actors import directory
from actors.reminders import Heartbeat
from domain import placement
from domain.settings import Settings
from domain.waiting.tickets import Join
from store import joins, keys
from store.kafka_io import ensure_topic

log = logging.getLogger("ticketing.ingest")


class JoinIngest:
    def __init__(self, settings: Settings, event_id: str, partitions: list[int], index: int,
                 shared: Any) -> None:
        self._settings = settings
        self._event_id = event_id
        self._entity_id = placement.ingest_entity(event_id, index)
        self._redis = shared.redis
        self._topic = settings.joins_topic(event_id)
        self._partitions = list(partitions)
        self._committed: dict[int, int] = {}
        self._committed_at = 0.0
        self._consumer: Consumer | None = None
        self._polling: asyncio.Task[tuple[list[Join], dict[int, bool]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._caught_up = False
        self.last_used = time.monotonic()
        self._busy_at = time.monotonic()
        self._heartbeat = Heartbeat(self._redis, self._entity_id,
                                    settings.entity_heartbeat_s)

    async def activate(self) -> None:
        s = self._settings
        await asyncio.to_thread(ensure_topic, s.kafka_bootstrap, self._topic, s.join_partitions,
                                s.kafka_replication_factor, s.kafka_min_insync_replicas)
        await self._heartbeat.beat()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def deactivate(self) -> None:
        """Stop after the batch in hand (never mid-poll: the consumer is closed after)."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            except (TimeoutError, Exception):
                self._task.cancel()
        await self._settled()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await asyncio.to_thread(consumer.close)
        await self._redis.zrem(keys.due_index(), self._entity_id)

    def can_passivate(self, now: float) -> bool:
        """Only once caught up (a poll found nothing new and no partition behind): an ingest
        that has not reached its partitions' ends yet, e.g. still connecting, has users to
        bring in."""
        return self._caught_up and now - self._busy_at > self._settings.passivate_after_s

    async def on_due(self) -> None:
        await self._heartbeat.beat()

    def _connect(self) -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": self._settings.kafka_bootstrap,
            "group.id": f"{self._settings.kafka_topic_prefix}.room.{self._event_id}",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            # a fetch answers when 64 KiB are ready or the fetch wait ends, not per produce:
            # each fetch costs the broker CPU, so a busy ingress must not wake one per batch
            "fetch.min.bytes": 65536, "fetch.wait.max.ms": self._settings.ingest_fetch_wait_ms})
        try:
            self._assign_committed(consumer)
        except Exception:
            consumer.close()
            raise  # _run logs it and connects again
        return consumer

    def _assign_committed(self, consumer: Consumer) -> None:
        """Start each partition at the group's committed offset (earliest when none). Fetched
        here, not left to librdkafka: on a broker whose group coordinator is still loading, its
        own fetch fails once (NOT_COORDINATOR) and the partition would never start; this raises
        instead and the caller tries again."""
        tps = [TopicPartition(self._topic, p) for p in self._partitions]
        committed = consumer.committed(tps, timeout=10)
        failed = [tp for tp in committed if tp.error is not None]
        if failed:
            raise RuntimeError(f"committed offsets of {self._topic}: {failed[0].error}")
        consumer.assign([TopicPartition(self._topic, tp.partition,
                                        tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                         for tp in committed])

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest of %s failed; reconnecting", self._event_id)
                await asyncio.sleep(1)

    async def _pump(self) -> None:
        """Poll, hand to the room, commit what it persisted. The next poll runs (in a thread:
        librdkafka fetches outside the GIL) while the room persists the batch before it."""
        await self._settled()
        old, self._consumer = self._consumer, None
        if old is not None:
            await asyncio.to_thread(old.close)
        self._consumer = await asyncio.to_thread(self._connect)
        room = directory.waiting_room(self._settings, self._event_id)
        epoch: int | None = None
        stalled_since: float | None = None
        reported = 0.0
        self._poll_next()
        while not self._stopping:
            assert self._polling is not None
            batch, behind = await self._polling
            self._poll_next()
            if batch:
                self._busy_at = time.monotonic()
            self._caught_up = not batch and not any(behind.values())
            await self._heartbeat.beat()
            stalled_since = _stall_clock(stalled_since, bool(batch), any(behind.values()))
            if time.monotonic() - (stalled_since or time.monotonic()) > self._settings.ingest_stall_s:
                raise RuntimeError("behind but fetching nothing: rebuilding the consumer")
            if not batch and not any(behind.values()) and time.monotonic() - reported < (
                    self._settings.partition_idle_ms / 4000):
                continue  # idle: a heartbeat well inside the room's patience is enough
            reported = time.monotonic()
            try:
                room_epoch, offsets = await room.ingest.remote(joins.to_columns(batch), behind)
            except Exception:
                log.warning("room of %s did not take a batch; rewinding", self._event_id)
                await self._rewind()
                await asyncio.sleep(0.5)
                continue
            if epoch is not None and room_epoch != epoch:
                await self._rewind()  # the room restarted: resend what it had not persisted
            else:
                self._commit_after_poll(offsets)
            epoch = room_epoch

    def _poll_next(self) -> None:
        self._polling = asyncio.get_running_loop().create_task(asyncio.to_thread(self._poll))

    def _commit_after_poll(self, offsets: dict[int, int]) -> None:
        """Commit once the poll in flight is done (one thread at a time uses the consumer), at
        most every `ingest_commit_interval_ms`."""
        if not any(offset > self._committed.get(p, -1) for p, offset in offsets.items()):
            return
        if time.monotonic() - self._committed_at < self._settings.ingest_commit_interval_ms / 1000:
            return
        self._committed_at = time.monotonic()
        polling = self._polling
        assert polling is not None

        async def then_commit() -> tuple[list[Join], dict[int, bool]]:
            result = await polling
            await asyncio.to_thread(self._commit, offsets)
            return result
        self._polling = asyncio.get_running_loop().create_task(then_commit())

    async def _settled(self) -> None:
        """Let the poll in flight finish (its result dropped) before the consumer is touched."""
        if self._polling is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._polling
            self._polling = None

    def _poll(self) -> tuple[list[Join], dict[int, bool]]:
        """A batch, and for each of our partitions whether joins are still waiting in Kafka
        (then the room must not treat it as idle)."""
        assert self._consumer is not None
        messages = self._consumer.consume(num_messages=self._settings.ingest_batch_max,
                                          timeout=self._settings.ingest_wait_ms / 1000)
        batch = []
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("ingest of %s: %s", self._event_id, error)
                continue
            batch.append(joins.decode(json.loads(cast(bytes, m.value())),
                                      cast(int, m.partition()), cast(int, m.offset())))
        return batch, {p: self._behind(p) for p in self._partitions}

    def _behind(self, partition: int) -> bool:
        """Whether the partition's end is past our position (unknown counts as behind)."""
        assert self._consumer is not None
        tp = TopicPartition(self._topic, partition)
        _, high = self._consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:  # no fetch answered yet: ask the broker
            try:
                _, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
            except Exception:
                return True
        position = self._consumer.position([tp])[0].offset
        if position < 0:  # nothing consumed yet: we stand at the committed offset (or 0)
            committed = self._committed.get(partition)
            position = committed + 1 if committed is not None else self._stored(tp)
        return position < high

    def _stored(self, tp: TopicPartition) -> int:
        assert self._consumer is not None
        try:
            offset = self._consumer.committed([tp], timeout=5)[0].offset
        except Exception:
            return -1
        return max(offset, 0)

    def _commit(self, offsets: dict[int, int]) -> None:
        """Commit what the room persisted (Kafka's commit is the next offset to read)."""
        mine = {p: offsets[p] for p in self._partitions
                if offsets.get(p, -1) > self._committed.get(p, -1)}
        if not mine:
            return
        assert self._consumer is not None
        self._consumer.commit(offsets=[TopicPartition(self._topic, p, offset + 1)
                                       for p, offset in mine.items()], asynchronous=False)
        self._committed.update(mine)

    async def _rewind(self) -> None:
        """Back to the committed offsets, dropping the poll in flight, and poll again from
        there (re-assigning: librdkafka's seek needs a partition that is already fetched)."""
        await self._settled()
        consumer = self._consumer
        assert consumer is not None
        await asyncio.to_thread(self._assign_committed, consumer)
        self._poll_next()

    async def ping(self) -> bool:
        return True


def _stall_clock(since: float | None, got_records: bool, behind: bool) -> float | None:
    """When a consumer that is behind started fetching nothing (None while it makes progress).

    A partition reported behind holds the room's merge back, so a consumer stuck that way (seen
    with librdkafka after a broker restart) would stall the whole queue: the pump rebuilds it.
    """
    if got_records or not behind:
        return None
    return since if since is not None else time.monotonic()


def partitions_of(index: int, actors: int, partitions: int) -> list[int]:
    """Partitions dealt round-robin over the ingest actors."""
    return [p for p in range(partitions) if p % actors == index]
