"""One Kafka consumer per host for the joins of every ingest entity active on it.

Why one per host. An active ingest entity used to own a confluent-kafka consumer: a librdkafka
client with its own threads (a main one, one per broker), broker connections, group-coordinator
lookups and a fetch request in flight at all times. A host with 200 events being joined then
ran 200 of them, each fetching on its own; consumers grew with the events people join. Here a
host's `JoinConsumer` reads the partitions of all its active ingest entities (`Lane`s): one
client, and one fetch per broker that covers every event's partitions. Consumers grow with the
hosts (bounded by HOST_POOL_MAX), not with the events.

Why not a shared joins topic for all events (one consumer group, partitioned by event and
ticket). That would make consumers grow with partitions, but a hot event's backlog would sit in
front of every other event's joins on the same partitions (a cold event waits for 100,000 joins
it does not care about), each room's watermark would depend on other events' traffic, and the
topic layout, the ingress and the retention of a closed event's joins would all change.
Per-event topics stay; what is shared is the reader.

Why manual assignment, not a group subscription. Placement (rendezvous hashing over the pool)
already decides which host reads an event's partitions; a Kafka group rebalance on top would
pause every event on every host each time one event woke or passivated. Partitions are added
and removed one entity at a time (`incremental_assign` / `incremental_unassign`). Offsets live
in one consumer group for all joins topics (`Settings.joins_group`): Kafka keys them by (group,
topic, partition), so each event's stay its own, and every host commits to the group as a
simple (member-less) consumer.

What stays as it was, per entity:
- **order**: one loop consumes and hands each record to its lane, so a partition's records
  reach the ingest in offset order; the room merges by time behind its watermark as before.
- **commit after persistence**: a lane queues only the offsets the room reported persisted;
  the loop commits them (every lane's in one request, a lane just detached included) before
  it assigns any lane again, so a rewind starts from the latest commit.
- **rewind**: a lane's rewind unassigns its partitions, drops what it buffered and assigns
  them again, one turn later, at the committed offsets; other lanes are not touched. Whatever
  librdkafka does across such a re-assignment, a lane only takes a partition's records offset
  after offset from where it was assigned (the topics are neither compacted nor transactional):
  a hole or a step back rewinds the lane instead, so no join is skipped and the room's merge
  never sees an offset go back.
- **hand-off**: `detach` returns once the lane's partitions are unassigned, and the entity's
  deactivate waits for it: the old host has stopped reading before its host marks the entity
  due for the new one; the room's epoch fencing decides the rest.
- **no slow room holds up the others, no backlog piles up in memory**: a lane with
  2 x INGEST_BATCH_MAX records waiting is paused (librdkafka drops what it prefetched for it and
  resumes after the last record it delivered) and resumed once its entity took them.
- **stalls**: a consumer behind but fetching nothing for INGEST_STALL_S (seen with librdkafka
  after a broker restart) is rebuilt; every lane then starts again at its committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from domain.settings import Settings
from domain.waiting.tickets import Join
from store import joins

log = logging.getLogger("ticketing.ingest")

Behind = dict[int, bool]
RESUME_AFTER_S = 1.0  # a consumer that failed is built again after this, an assignment tried
ASSIGN_ATTEMPTS = 5  # failed assignments in a row after which the consumer is rebuilt


Floor = Callable[[], Awaitable[dict[int, int]]]


def start_offset(committed: int, floor: dict[int, int] | None, partition: int) -> int:
    """Where a lane starts reading a partition (< 0: the beginning). Kafka's committed offset
    says what the room had persisted when it was committed; the floor says what the room's
    Redis still has. A Redis that lost writes (or everything) has a lower floor (or none):
    the lower one wins, and the room drops what it already has."""
    if floor is None or committed < 0:
        return committed
    return min(committed, floor.get(partition, -1))


class Lane:
    """One ingest entity's partitions on its host's consumer, and the joins read for it."""

    def __init__(self, feed: JoinConsumer, entity_id: str, topic: str,
                 partitions: Sequence[int], settings: Settings,
                 floor: Floor | None = None) -> None:
        self._feed = feed
        self.floor = floor  # reads where the room's store says it has persisted up to
        self.entity_id = entity_id
        self.topic = topic
        self.partitions = tuple(partitions)
        self._batch_max = settings.ingest_batch_max
        self._wait_s = settings.ingest_wait_ms / 1000
        self._commit_interval_s = settings.ingest_commit_interval_ms / 1000
        self.records: deque[Join] = deque()
        self.arrived = asyncio.Event()
        self.assigned = False  # reading from Kafka (at `start` offsets, or beyond)
        self.start: dict[int, int] = {}
        self.behind: Behind = {}  # per partition, after the last consume: more in Kafka
        self.paused: set[int] = set()
        self.delivered: set[int] = set()  # partitions with a record since they were assigned
        self.next: dict[int, int] = {}  # per partition, the offset the next record must have
        self.halted = False  # a hole was seen: nothing is handed to it until it is rewound
        self.settling = False  # unassigned in this turn: assigned again in the next one
        self.tries = 0  # assignments attempted (answered requests wait for the next one)
        self.committed: dict[int, int] = {}  # last offset committed (the room persisted it)
        self.to_commit: dict[int, int] = {}
        self._committed_at = -self._commit_interval_s
        self.stalled_since: float | None = None
        self.assign_after = 0.0  # monotonic; after a failed assignment

    def tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in self.partitions]

    async def take(self) -> tuple[list[Join], Behind]:
        """A batch, by size (INGEST_BATCH_MAX) or time (INGEST_WAIT_MS), and per partition
        whether joins still wait (in Kafka, or here after this batch; unknown counts as
        waiting): then the room must not treat it as idle."""
        deadline = time.monotonic() + self._wait_s
        while len(self.records) < self._batch_max:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        n = min(len(self.records), self._batch_max)
        batch = [self.records.popleft() for _ in range(n)]
        waiting = {j.partition for j in self.records}
        behind = {p: not self.assigned or self.halted or self.behind.get(p, True)
                  or p in waiting for p in self.partitions}
        return batch, behind

    def commit(self, offsets: dict[int, int]) -> None:
        """Queue a commit of what the room persisted (its last persisted offset per partition),
        at most every INGEST_COMMIT_INTERVAL_MS; the consumer's loop sends it."""
        mine = {p: offsets[p] for p in self.partitions
                if offsets.get(p, -1) > max(self.committed.get(p, -1), self.to_commit.get(p, -1))}
        if not mine or time.monotonic() - self._committed_at < self._commit_interval_s:
            return
        self._committed_at = time.monotonic()
        self.to_commit.update(mine)

    async def rewind(self) -> None:
        """Back to the committed offsets: what was read and not persisted is read again."""
        await self._feed.request(self, "rewind")

    def reset(self) -> None:
        """Unassigned: what it buffered is dropped (read again once assigned)."""
        self.assigned = False
        self.records.clear()
        self.behind = {}
        self.paused.clear()
        self.delivered.clear()
        self.next.clear()
        self.halted = False
        self.stalled_since = None


@dataclass
class _Request:
    lane: Lane
    kind: str  # "attach" | "rewind" | "detach"
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    tries: int = -1  # the lane's assignment attempts when it was applied


class JoinConsumer:
    """The host's reader of every joins partition its ingest entities own."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lanes: dict[str, Lane] = {}
        self._by_partition: dict[tuple[str, int], Lane] = {}
        self._requests: list[_Request] = []
        self._leaving: list[Lane] = []  # detached, with a commit still to send
        self._waiting: list[_Request] = []  # applied, answered once their lane is assigned
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._assign_failures = 0
        self.consumers_made = 0  # for tests and operators: how many clients this host built

    # -- what ingest entities call ---------------------------------------------------------
    async def attach(self, entity_id: str, topic: str, partitions: Sequence[int],
                     floor: Floor | None = None) -> Lane:
        """A lane for the entity's partitions; it reads from their committed offsets once the
        loop has assigned them (until then `take` reports them behind). With a `floor` (the
        next offsets the room's Redis has not persisted, `store.queue.persisted_offsets`) it
        starts at the lower of the two on every assignment: joins committed in Kafka but lost
        by a Redis restart are read again (from the beginning where Redis knows nothing)."""
        lane = Lane(self, entity_id, topic, partitions, self._settings, floor)
        await self.request(lane, "attach")
        return lane

    async def detach(self, lane: Lane) -> None:
        """Stop reading the lane's partitions (its queued commit is still sent)."""
        await self.request(lane, "detach")

    async def request(self, lane: Lane, kind: str) -> None:
        request = _Request(lane, kind)
        self._requests.append(request)
        self.wake()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.shield(request.done)

    def wake(self) -> None:
        self._woken.set()

    def lanes(self) -> int:
        return len(self._lanes)

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        """Commit, apply requests, assign, consume, hand out; until no lane is left."""
        try:
            while self._lanes or self._requests:
                try:
                    await self._turn()
                except Exception:
                    log.exception("the host's joins consumer failed; building it again")
                    await self._rebuild()
                    await asyncio.sleep(RESUME_AFTER_S)
        finally:
            self._task = None
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                await asyncio.to_thread(consumer.close)

    async def _turn(self) -> None:
        if self._consumer is None:
            self._consumer = await asyncio.to_thread(self._connect)
            self.consumers_made += 1
        consumer = self._consumer
        requests, self._requests = self._requests, []
        try:
            broken = [r for r in requests if not self._apply(consumer, r)]
            if broken:
                raise RuntimeError(f"could not {broken[0].kind} {broken[0].lane.entity_id}")
            self._waiting += [r for r in requests if not r.done.done()]
            await self._commit(consumer)
            await self._assign(consumer)
        except Exception:
            for request in requests + self._waiting:
                if not request.done.done():
                    request.done.set_result(None)
            self._waiting = []
            raise
        finally:
            for lane in self._lanes.values():
                lane.settling = False
        # An attach or a rewind is answered once its lane was assigned, or tried (then it
        # reads nothing and reports its partitions behind until the loop assigns it).
        still = []
        for request in self._waiting:
            lane = request.lane
            if lane.tries > request.tries or self._lanes.get(lane.entity_id) is not lane:
                request.done.set_result(None)
            else:
                still.append(request)
        self._waiting = still
        if not any(lane.assigned for lane in self._lanes.values()):
            self._woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._settings.ingest_wait_ms / 1000)
            return
        read, behind = await asyncio.to_thread(self._consume, consumer, self._reading())
        fed = self._hand_out(read, behind)
        self._pause_and_resume(consumer)
        self._check_stalls(fed)

    def _apply(self, consumer: Consumer, request: _Request) -> bool:
        """Apply a request between consumes (nothing is reading then); False when librdkafka
        refused it (the consumer is then rebuilt, and a detached lane is gone all the same).
        A detach is answered here: the host reads nothing more for the lane (its queued commit
        still goes out); an attach or a rewind once the lane is assigned."""
        lane = request.lane
        request.tries = lane.tries
        try:
            if request.kind == "attach":
                for p in lane.partitions:  # an earlier lane of these partitions never detached
                    older = self._by_partition.get((lane.topic, p))
                    if older is not None:
                        self._remove(consumer, older)
                self._lanes[lane.entity_id] = lane
                for p in lane.partitions:
                    self._by_partition[(lane.topic, p)] = lane
            elif request.kind == "detach":
                self._remove(consumer, lane)
                request.done.set_result(None)
            else:  # rewind: assigned again at the committed offsets, in the next turn (after
                # a consume has let librdkafka finish the removal, so nothing fetched before
                # can follow what is fetched after)
                lane.settling = lane.assigned
                self._unassign(consumer, lane)
        except Exception:
            log.exception("joins consumer: %s of %s failed", request.kind, lane.entity_id)
            return False
        if request.kind != "attach":
            log.info("joins consumer: %s %s", request.kind, lane.entity_id)
        return True

    @staticmethod
    def _unassign(consumer: Consumer, lane: Lane) -> None:
        """Stop reading the lane (resumed first: librdkafka keeps a partition's pause across
        assignments, and a lane assigned again must read)."""
        assigned, paused = lane.assigned, sorted(lane.paused)
        lane.reset()
        if assigned:
            if paused:
                consumer.resume([TopicPartition(lane.topic, p) for p in paused])
            consumer.incremental_unassign(lane.tps())

    def _remove(self, consumer: Consumer, lane: Lane) -> None:
        if self._lanes.get(lane.entity_id) is lane:
            del self._lanes[lane.entity_id]
        for p in lane.partitions:
            if self._by_partition.get((lane.topic, p)) is lane:
                del self._by_partition[(lane.topic, p)]
        if lane.to_commit:
            self._leaving.append(lane)
        self._unassign(consumer, lane)

    async def _assign(self, consumer: Consumer) -> None:
        """Assign every lane not reading yet at its committed offsets (earliest when none).
        Fetched here, not left to librdkafka: on a broker whose group coordinator is still
        loading, its own fetch fails once (NOT_COORDINATOR) and the partition would never
        start; this raises instead and the loop tries again."""
        now = time.monotonic()
        pending = [lane for lane in self._lanes.values()
                   if not lane.assigned and not lane.settling and lane.assign_after <= now]
        if not pending:
            return
        for lane in pending:
            lane.tries += 1
        tps = [tp for lane in pending for tp in lane.tps()]
        try:
            committed = await asyncio.to_thread(consumer.committed, tps, timeout=10)
            failed = [tp for tp in committed if tp.error is not None]
            if failed:
                raise RuntimeError(f"committed offsets of {failed[0].topic}: {failed[0].error}")
            floors = {lane.entity_id: await lane.floor() for lane in pending if lane.floor}
        except Exception as error:  # the lanes wait (behind) and are tried again in a while
            self._assign_failures += 1
            if self._assign_failures >= ASSIGN_ATTEMPTS:
                self._assign_failures = 0
                raise  # the consumer itself may be broken: rebuilt
            log.warning("joins consumer: %s; trying again", error)
            for lane in pending:
                lane.assign_after = now + RESUME_AFTER_S
            return
        self._assign_failures = 0
        offsets = {(tp.topic, tp.partition): tp.offset for tp in committed}
        for lane in pending:
            floor = floors.get(lane.entity_id)
            lane.start = {p: start_offset(offsets[(lane.topic, p)], floor, p)
                          for p in lane.partitions}
            lane.next = {p: o for p, o in lane.start.items() if o >= 0}
            consumer.incremental_assign([
                TopicPartition(lane.topic, p, o if o >= 0 else OFFSET_BEGINNING)
                for p, o in lane.start.items()])
            lane.assigned = True
            log.info("joins consumer reads %s %s from %s", lane.entity_id, lane.topic,
                     lane.start)

    def _reading(self) -> list[tuple[str, int, int]]:
        return [(lane.topic, p, lane.start[p]) for lane in self._lanes.values() if lane.assigned
                for p in lane.partitions]

    def _consume(self, consumer: Consumer, reading: list[tuple[str, int, int]],
                 ) -> tuple[dict[tuple[str, int], list[Join]], dict[tuple[str, int], bool]]:
        """In a thread: a batch over every lane, and per partition whether Kafka holds more."""
        messages = consumer.consume(num_messages=self._settings.ingest_batch_max,
                                    timeout=self._settings.ingest_wait_ms / 1000)
        read: dict[tuple[str, int], list[Join]] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("joins consumer: %s", error)
                continue
            partition, offset = cast(int, m.partition()), cast(int, m.offset())
            try:
                join = joins.decode(json.loads(cast(bytes, m.value())), partition, offset)
            except (ValueError, KeyError, TypeError):  # not a join: it must not stop the others
                log.warning("joins consumer: skipped a malformed record at %s[%d]@%d",
                            m.topic(), partition, offset)
                continue
            read.setdefault((cast(str, m.topic()), partition), []).append(join)
        positions = consumer.position([TopicPartition(t, p) for t, p, _ in reading])
        behind = {}
        for (topic, p, start), position in zip(reading, positions, strict=True):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
            at = position.offset if position.offset >= 0 else start if start >= 0 else low
            behind[(topic, p)] = high < 0 or at < 0 or at < high  # unknown counts as behind
        return read, behind

    def _hand_out(self, read: dict[tuple[str, int], list[Join]],
                  behind: dict[tuple[str, int], bool]) -> set[str]:
        """Give each lane its records; the entities that got some."""
        fed = set()
        for key, records in read.items():
            lane = self._by_partition.get(key)
            if lane is None or not lane.assigned or lane.halted:
                continue  # unassigned since (a rewind or a detach): read again or not ours
            p = key[1]
            if not self._in_sequence(lane, p, records):
                continue
            lane.records.extend(records)
            lane.delivered.add(p)
            lane.arrived.set()
            fed.add(lane.entity_id)
        for (topic, p), more in behind.items():
            lane = self._by_partition.get((topic, p))
            if lane is not None and lane.assigned:
                lane.behind[p] = more
        return fed

    def _in_sequence(self, lane: Lane, partition: int, records: list[Join]) -> bool:
        """Whether the records follow, offset by offset, what the lane was given (the topics
        are neither compacted nor transactional, so offsets have no holes). A hole would lose
        a user for good, so the lane is rewound instead (the room drops what it has); a
        record already given is dropped."""
        expected = lane.next.get(partition, records[0].offset)
        while records and records[0].offset < expected:
            records.pop(0)
        if not records:
            return False
        if records[0].offset != expected or records[-1].offset - expected != len(records) - 1:
            log.warning("joins consumer: %s[%d] jumped from %d to %d..%d (%d records); "
                        "rewinding %s", lane.topic, partition, expected, records[0].offset,
                        records[-1].offset, len(records), lane.entity_id)
            self._requests.append(_Request(lane, "rewind"))
            lane.halted = True  # nothing more handed to it until then
            return False
        lane.next[partition] = records[-1].offset + 1
        return True

    def _pause_and_resume(self, consumer: Consumer) -> None:
        """A lane with 2 x INGEST_BATCH_MAX joins waiting stops fetching until its entity took
        them (only partitions that delivered since assigned: they resume after that record)."""
        limit = self._settings.ingest_batch_max
        for lane in self._lanes.values():
            if not lane.assigned:
                continue
            if len(lane.records) >= 2 * limit:
                fresh = lane.delivered - lane.paused
                if fresh:
                    consumer.pause([TopicPartition(lane.topic, p) for p in sorted(fresh)])
                    lane.paused |= fresh
            elif lane.paused and len(lane.records) < limit:
                consumer.resume([TopicPartition(lane.topic, p) for p in sorted(lane.paused)])
                lane.paused.clear()

    def _check_stalls(self, fed: set[str]) -> None:
        """A lane behind but reading nothing, not paused, for INGEST_STALL_S: rebuild."""
        now = time.monotonic()
        for lane in self._lanes.values():
            if not lane.assigned or lane.paused or lane.entity_id in fed or not any(
                    lane.behind.get(p, True) for p in lane.partitions):
                lane.stalled_since = None
            elif lane.stalled_since is None:
                lane.stalled_since = now
            elif now - lane.stalled_since > self._settings.ingest_stall_s:
                raise RuntimeError(f"{lane.entity_id} behind but fetching nothing")

    async def _commit(self, consumer: Consumer) -> None:
        """Send every lane's queued commit in one request (Kafka's commit is the next offset
        to read); a failed one stays queued for the next turn."""
        lanes = [*self._lanes.values(), *self._leaving]
        self._leaving = []
        queued = [(lane, dict(lane.to_commit)) for lane in lanes if lane.to_commit]
        if not queued:
            return
        offsets = [TopicPartition(lane.topic, p, offset + 1)
                   for lane, mine in queued for p, offset in mine.items()]
        try:
            answers = await asyncio.to_thread(consumer.commit, offsets=offsets,
                                              asynchronous=False)
        except Exception as error:
            log.warning("joins commit failed (kept for the next turn): %s", error)
            return
        failed = {(tp.topic, tp.partition) for tp in answers or [] if tp.error is not None}
        for lane, mine in queued:
            for p, offset in mine.items():
                if (lane.topic, p) in failed:
                    continue
                lane.committed[p] = max(offset, lane.committed.get(p, -1))
                if lane.to_commit.get(p) == offset:
                    del lane.to_commit[p]

    async def _rebuild(self) -> None:
        """Close the consumer; every lane is assigned again at its committed offsets."""
        consumer, self._consumer = self._consumer, None
        for lane in self._lanes.values():
            lane.reset()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(consumer.close)

    def _connect(self) -> Consumer:
        s = self._settings
        return Consumer({
            "bootstrap.servers": s.kafka_bootstrap, "group.id": s.joins_group,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            # a fetch answers when 64 KiB are ready or the fetch wait ends, not per produce:
            # each fetch costs the broker CPU, so a busy ingress must not wake one per batch
            "fetch.min.bytes": 65536, "fetch.wait.max.ms": s.ingest_fetch_wait_ms})


def kafka_clients() -> int:
    """librdkafka clients alive in this process, counted from their threads (each client runs
    one "rdk:main"): what the host really holds open, whatever the bookkeeping says."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/comm") as comm:
            count += comm.read().strip() == "rdk:main"
    return count
