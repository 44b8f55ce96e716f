"""Ingest entities: pull batches of joins from an event's partitions and feed its waiting room.

Hosted by a pool host and active only while its event takes joins (the first join of an
idle event wakes it, see `replica.queue_client`); while active it keeps a heartbeat in the due
index, so a host lost with it is replaced within ENTITY_HEARTBEAT_S.

An ingest has no Kafka consumer of its own: its partitions are a `Lane` of the host's one
`JoinConsumer` (actors/join_consumer.py), so consumers grow with hosts, not with the events
being joined. A batch is taken by size or time (`ingest_batch_max`, `ingest_wait_ms`). Offsets
are committed only up to what the room reports persisted. If the room restarted (a new epoch)
or a call to it failed, the ingest rewinds its lane to the committed offsets and sends again:
the room drops what it already has, so nobody is lost or queued twice.

The consumer is confluent-kafka (librdkafka): fetching and record parsing happen in C, outside
the GIL; kafka-python spent several times more CPU per record here (benchmarks/README.md,
bench_waiting_room).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from actors import directory
from actors.join_consumer import Lane
from actors.reminders import Heartbeat
from domain import placement
from domain.settings import Settings
from store import joins, keys
from store.kafka_io import ensure_topic
from store.queue import persisted_offsets

log = logging.getLogger("ticketing.ingest")

DETACH_TIMEOUT_S = 30.0  # the host's consumer answers between two polls, unless Kafka hangs


class JoinIngest:
    def __init__(self, settings: Settings, event_id: str, partitions: list[int], index: int,
                 shared: Any) -> None:
        self._settings = settings
        self._event_id = event_id
        self._entity_id = placement.ingest_entity(event_id, index)
        self._redis = shared.redis
        self._joins = shared.join_consumer
        self._topic = settings.joins_topic(event_id)
        self._partitions = list(partitions)
        self._lane: Lane | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._caught_up = False
        self.last_used = time.monotonic()
        self.taken_over = False  # fenced by a newer incarnation: its host drops it
        self._busy_at = time.monotonic()
        self._heartbeat = Heartbeat(self._redis, self._entity_id,
                                    settings.entity_heartbeat_s)

    async def activate(self) -> None:
        s = self._settings
        await asyncio.to_thread(ensure_topic, s.kafka_bootstrap, self._topic, s.join_partitions,
                                s.kafka_replication_factor, s.kafka_min_insync_replicas)
        await self._heartbeat.beat()
        self._lane = await self._joins.attach(self._entity_id, self._topic, self._partitions,
                                              self._persisted)
        self._task = asyncio.get_running_loop().create_task(self._run(self._lane))

    async def _persisted(self) -> dict[int, int]:
        """The lane's floor: what the room's Redis says it has persisted (a Redis restart that
        lost writes is read again from here)."""
        return await persisted_offsets(self._redis, self._event_id)

    async def deactivate(self) -> None:
        """Stop after the batch in hand, then leave the host's consumer: this host reads
        nothing more for it once this returns (the hand-off waits for it)."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            except (TimeoutError, Exception):
                self._task.cancel()
        lane, self._lane = self._lane, None
        if lane is not None:
            try:
                await asyncio.wait_for(self._joins.detach(lane), DETACH_TIMEOUT_S)
            except TimeoutError:  # its pump is stopped: nothing read for it reaches the room
                log.warning("ingest of %s left its host's consumer late", self._event_id)
        await self._redis.zrem(keys.due_index(), self._entity_id)

    def can_passivate(self, now: float) -> bool:
        """Only once caught up (a batch found nothing new and no partition behind): an ingest
        that has not reached its partitions' ends yet, e.g. still connecting, has users to
        bring in."""
        return self._caught_up and now - self._busy_at > self._settings.passivate_after_s

    async def on_due(self) -> None:
        await self._heartbeat.beat()

    async def _run(self, lane: Lane) -> None:
        first = True
        while not self._stopping:
            try:
                if not first:
                    await lane.rewind()  # after a failure: from the committed offsets again
                first = False
                await self._pump(lane)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest of %s failed; rewinding", self._event_id)
                await asyncio.sleep(1)

    async def _pump(self, lane: Lane) -> None:
        """Take a batch, hand it to the room, commit what it persisted. The host's consumer
        reads the next batch meanwhile."""
        room = directory.waiting_room(self._settings, self._event_id)
        epoch: int | None = None
        reported = 0.0
        while not self._stopping:
            batch, behind = await lane.take()
            if batch:
                self._busy_at = time.monotonic()
            self._caught_up = not batch and not any(behind.values())
            await self._heartbeat.beat()
            if not batch and not any(behind.values()) and time.monotonic() - reported < (
                    self._settings.partition_idle_ms / 4000):
                continue  # idle: a heartbeat well inside the room's patience is enough
            reported = time.monotonic()
            try:
                room_epoch, offsets = await room.ingest.remote(
                    joins.to_columns(batch), behind, epoch)
            except Exception as error:
                log.warning("room of %s did not take a batch (%s); rewinding", self._event_id,
                            str(error)[-300:])
                await lane.rewind()
                await asyncio.sleep(0.5)
                continue
            if epoch is not None and room_epoch != epoch:
                await lane.rewind()  # the room restarted: resend what it had not persisted
            else:
                lane.commit(offsets)
            epoch = room_epoch

    async def ping(self) -> bool:
        return True


def partitions_of(index: int, actors: int, partitions: int) -> list[int]:
    """Partitions dealt round-robin over the ingest actors."""
    return [p for p in range(partitions) if p % actors == index]
