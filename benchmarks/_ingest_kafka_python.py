"""The project's ingest actor as it was with kafka-python (before the switch to confluent-kafka),
kept only so bench_waiting_room can measure both consumers through the same waiting room.

Ingest actors: pull batches of joins from an event's partitions and feed its waiting room.

A batch is taken by size or time (`ingest_batch_max`, `ingest_wait_ms`). Offsets are committed
only up to what the room reports persisted. If the room restarted (a new epoch) or a call to it
failed, the actor rewinds to the committed offsets and sends again: the room drops what it
already has, so nobody is lost or queued twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import ray
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from ray.exceptions import RayError

from actors import directory, logs
from domain.settings import Settings
from store import joins

log = logging.getLogger("ticketing.ingest")


class JoinIngest:
    def __init__(self, settings: Settings, event_id: str, partitions: list[int]) -> None:
        self._settings = settings
        self._event_id = event_id
        topic = settings.joins_topic(event_id)
        self._partitions = [TopicPartition(topic, p) for p in partitions]
        self._committed: dict[int, int] = {}
        logs.configure()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap, enable_auto_commit=False,
            group_id=f"{self._settings.kafka_topic_prefix}.room.{self._event_id}",
            auto_offset_reset="earliest", value_deserializer=json.loads,
            max_poll_records=self._settings.ingest_batch_max)
        consumer.assign(self._partitions)
        return consumer

    async def _run(self) -> None:
        while True:
            try:
                await self._pump()
            except Exception:
                log.exception("ingest of %s failed; reconnecting", self._event_id)
                await asyncio.sleep(1)

    async def _pump(self) -> None:
        self._consumer = await asyncio.to_thread(self._connect)
        room = directory.waiting_room(self._settings, self._event_id)
        epoch: int | None = None
        while True:
            batch, behind = await asyncio.to_thread(self._poll)
            try:
                room_epoch, offsets = await room.ingest.remote(
                    joins.to_columns(batch), behind, epoch)
            except RayError:
                log.warning("room of %s did not take a batch; rewinding", self._event_id)
                await self._rewind()
                await asyncio.sleep(0.5)
                continue
            if epoch is not None and room_epoch != epoch:
                await self._rewind()  # the room restarted: resend what it had not persisted
            epoch = room_epoch
            await self._commit(offsets)

    def _poll(self) -> tuple[list[Any], dict[int, bool]]:
        """A batch, and for each of our partitions whether joins are still waiting in Kafka
        (then the room must not treat it as idle)."""
        records = self._consumer.poll(timeout_ms=self._settings.ingest_wait_ms,
                                      max_records=self._settings.ingest_batch_max)
        batch = [joins.decode(r.value, r.partition, r.offset)
                 for rs in records.values() for r in rs]
        return batch, {tp.partition: self._behind(tp) for tp in self._partitions}

    def _behind(self, tp: TopicPartition) -> bool:
        highwater = self._consumer.highwater(tp)
        return highwater is None or self._consumer.position(tp) < highwater

    async def _commit(self, offsets: dict[int, int]) -> None:
        mine = {tp: offsets[tp.partition] for tp in self._partitions
                if offsets.get(tp.partition, -1) > self._committed.get(tp.partition, -1)}
        if not mine:
            return
        await asyncio.to_thread(self._consumer.commit, {
            tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in mine.items()})
        self._committed.update({tp.partition: offset for tp, offset in mine.items()})

    async def _rewind(self) -> None:
        def seek() -> None:
            for tp in self._partitions:
                committed = self._consumer.committed(tp)
                if committed is None:
                    self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)

        await asyncio.to_thread(seek)

    async def ping(self) -> bool:
        return True


JoinIngestKafkaPythonActor = ray.remote(  # type: ignore[call-overload]  # stubs lack max_concurrency
    num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=100)(JoinIngest)
