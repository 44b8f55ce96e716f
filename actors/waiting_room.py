"""The waiting-room entity: one per event, hosted by a pool host; merges the joins, runs the
lottery, admits.

Ingest actors hand it batches pulled from the event's join partitions. It merges them in
NTP-corrected time order behind a watermark that covers clock uncertainty and ingest lag,
persists each released join exactly once (Lua, fenced by its epoch), and only then reports
the Kafka offsets that may be committed. A timer admits the heads of the lanes at the event's
rate, never more than the remaining seats can serve, and publishes the numbers every replica
needs to keep a million positions fresh.

While it has work (joins to merge, users waiting, admissions outstanding) it keeps a heartbeat
in the due index, so if its host dies another host activates it within ENTITY_HEARTBEAT_S; an
idle room is passivated, leaving a reminder at on-sale when a pre-queue waits for the lottery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import secrets
import time
from dataclasses import replace
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from actors import directory, logs
from actors.reminders import Heartbeat
from domain import placement
from domain.errors import EventClosed, StaleOwner
from domain.settings import Settings
from domain.waiting import fairness, lottery
from domain.waiting.admission import AdmissionController, seats_left
from domain.waiting.eta import RateEstimator
from domain.waiting.merge import WatermarkMerger
from domain.waiting.presale import PresaleCode, check_code
from domain.waiting.queue_order import QueueTier, is_prequeue
from domain.waiting.status import Admission
from domain.waiting.tickets import Join
from store import admissions, catalog, joins, keys, metrics, redis_clients
from store.admissions import Admitted
from store.codec import text
from store.queue import (
    Member,
    RoomScripts,
    decode_admission,
    encode_admission,
    lottery_seed,
    room_fields,
    save_persisted_offsets,
)
from store.scripts import take_epoch

log = logging.getLogger("ticketing.waiting_room")

LOTTERY_CHUNK = 10_000
RESTORE_CHUNK = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


class WaitingRoom:
    def __init__(self, settings: Settings, event_id: str, shared: Any) -> None:
        self._settings = settings
        self._event_id = event_id
        self._entity_id = placement.room_entity(event_id)
        self._redis = shared.redis
        self._shared = shared
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self.last_used = time.monotonic()
        self.taken_over = False  # fenced by a newer incarnation: its host drops it
        self._busy_at = time.monotonic()
        self._heartbeat = Heartbeat(self._redis, self._entity_id,
                                    settings.entity_heartbeat_s)
        self._waiting = 0  # users in the lanes at the last admission step
        self._ingest_pinged_at = -math.inf
        self._report = RoomReport(event_id, settings.admit_interval_s)
        logs.configure()

    # -- activation, passivation and recovery --------------------------------------------
    async def activate(self) -> None:
        event = await catalog.load_event(self._redis, self._event_id)
        if event is None:
            raise await catalog.missing_event(self._redis, self._event_id)
        if event.closed:
            raise EventClosed("this event is closed")
        self._event = event
        self._onsale_ms = int(event.onsale_at * 1000)
        self._codes = [PresaleCode(c) for c in event.presale_codes]
        self._epoch = await take_epoch(self._redis, keys.room_epoch(self._event_id), now_ms())
        await redis_clients.replicated(self._redis, self._settings)  # survives a failover
        self._scripts = RoomScripts(self._redis, self._event_id, self._epoch)
        self._seed = await self._load_seed()
        self._room = await room_fields(self._redis, self._event_id)
        await self._restore_admissions()
        start = now_ms()
        self._merger = WatermarkMerger(self._settings.ingest_lag_ms,
                                       self._settings.partition_idle_ms)
        for partition in range(self._settings.join_partitions):
            self._merger.add_partition(partition, start)
        self._heard: dict[int, int] = {}
        self._unpersisted: list[Join] = []  # taken from the merger, not yet in Redis
        self._offsets_written: dict[int, int] = {}
        self._reload = False  # a write's outcome is unknown: read the room back first
        self._published: dict[str, str] = {}
        self._admission = AdmissionController(event.admission_rate_per_s, start)
        self._rate = RateEstimator(event.admission_rate_per_s)
        self._outstanding = await self._load_outstanding()
        self._log_tail = await self._load_log_tail()
        await self._heartbeat.beat()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        log.info("room %s ready at epoch %s", self._event_id, self._epoch)

    async def deactivate(self) -> None:
        """Stop ticking; leave a reminder at on-sale if a pre-queue waits for its lottery."""
        if self._ticker is not None:
            self._ticker.cancel()
        self._report.stopped()
        prequeue = await self._redis.llen(keys.queue_prequeue(self._event_id))
        if prequeue and not self._lottery_done:
            await self._redis.zadd(keys.due_index(), {self._entity_id: self._onsale_ms})
        else:
            await self._redis.zrem(keys.due_index(), self._entity_id)

    def can_passivate(self, now: float) -> bool:
        """Only a room with nothing to do: no joins to merge, nobody waiting in a lane. Users
        admitted but not yet holding are reloaded from Redis when it wakes; they only matter
        against the seats left for others, and others joining wake it."""
        return (now - self._busy_at > self._settings.passivate_after_s
                and self._merger.pending_count == 0 and not self._unpersisted
                and not self._waiting)

    def _awaiting_lottery(self) -> bool:
        return not self._lottery_done and now_ms() >= self._onsale_ms

    def _keep_ingest_awake(self) -> None:
        """The watermark only moves while the event's ingest reports its partitions: a room
        with joins to merge, or a lottery to run at on-sale, keeps its ingest active (a ping
        every third of the passivation time, which it outlives)."""
        now = time.monotonic()
        if now - self._ingest_pinged_at < self._settings.passivate_after_s / 3:
            return
        self._ingest_pinged_at = now
        for i in range(self._settings.ingest_actors):
            ping = asyncio.ensure_future(
                directory.ingest(self._settings, self._event_id, i).ping.remote())
            ping.add_done_callback(_log_failure)

    async def on_due(self) -> None:
        """Reached through the due index (on-sale, or a heartbeat after a host was lost)."""
        self._woken.set()
        await self._heartbeat.beat()

    async def _restore_admissions(self) -> None:
        """Admissions the admissions log has and Redis lost (a Redis restart that lost its last
        writes, or an empty one) are put back before any join is taken, so the joins log's
        replay cannot queue an admitted user again (docs/design.md, "Losing Redis")."""
        await self._shared.durable_log(self._settings.admissions_topic)  # exists: not auto-made
        logged = await asyncio.to_thread(admissions.read, self._settings, self._event_id)
        total = int(self._room.get("admitted_total", 0))
        if len(logged) <= total:
            return
        known: set[str] = set()
        for first in range(0, len(logged), RESTORE_CHUNK):
            chunk = [a.ticket_id for a in logged[first:first + RESTORE_CHUNK]]
            found = await self._redis.hmget(keys.queue_admitted(self._event_id), chunk)
            known.update(t for t, raw in zip(chunk, found, strict=True) if raw is not None)
        missing = [a for a in logged if a.ticket_id not in known]
        if not missing:
            return
        entries, prev = [], await self._load_log_tail()
        for i, admitted in enumerate(missing):
            prev = fairness.append(prev, admitted.ticket_id, total + i + 1,
                                   admitted.admission.admitted_at_ms)
            entries.append(prev)
        room = {"admitted_total": str(total + len(missing)),
                "log_length": str(entries[-1].seq + 1), "log_head": entries[-1].hash}
        restored = await self._scripts.restore_admissions(admissions.encode_step(
            [(a, encode_admission(a.admission)) for a in missing],
            [json.dumps(vars(e)) for e in entries], room))
        log.warning("room %s: restored %d admissions from the admissions log",
                    self._event_id, restored)
        self._room = await room_fields(self._redis, self._event_id)

    async def _read_back(self) -> None:
        """After a failed step (Redis down, a lost reply): what is admitted and the log's head
        are read back from Redis, so memory never counts an admission Redis lacks or misses
        one it has."""
        self._outstanding = await self._load_outstanding()
        self._log_tail = await self._load_log_tail()
        self._room = await room_fields(self._redis, self._event_id)
        self._published = {}
        self._reload = False

    async def _load_seed(self) -> bytes:
        return await lottery_seed(self._redis, self._event_id, secrets.token_bytes)

    async def _load_outstanding(self) -> dict[str, Admission]:
        """Admitted users who have not held yet: they count against the remaining seats."""
        raw = await self._redis.hgetall(keys.queue_admitted(self._event_id))
        admissions = {text(t): decode_admission(a) for t, a in raw.items()}
        return {t: a for t, a in admissions.items() if not a.held}

    async def _load_log_tail(self) -> fairness.LogEntry | None:
        raw = await self._redis.lindex(keys.queue_log(self._event_id), -1)
        return fairness.LogEntry(**json.loads(raw)) if raw is not None else None

    # -- ingest --------------------------------------------------------------------------
    async def ingest(self, batch: joins.Columns, behind: dict[int, bool],
                     seen_epoch: int | None = None) -> tuple[int, dict[int, int]]:
        """Take a batch (`store.joins.to_columns`); returns this incarnation's epoch and the
        offsets safe to commit.

        `behind` says, per partition of the caller, whether joins still wait in Kafka: such a
        partition keeps holding the merge back, as does one whose ingest has gone quiet.

        `seen_epoch` is the room epoch the ingest's lane last heard (None for a lane that has
        heard none and so reads from the committed offsets). A batch read for an older
        incarnation is refused, nothing taken: it may start past joins the old incarnation
        buffered and lost (Ray retries a call in flight when a host dies into the restarted
        room), and once taken the lane's rewind to the committed offsets would look like an
        offset going back. Refused, the ingest learns the epoch, rewinds and sends again from
        the committed offsets, so this incarnation's merge starts where nothing is missing.
        """
        if seen_epoch is not None and seen_epoch != self._epoch:
            return self._epoch, {}
        async with self._lock:
            now = now_ms()
            arrived = joins.from_columns(batch)
            push = self._merger.push
            for join in arrived:
                push(join, now)
            for partition, lagging in behind.items():
                self._heard[partition] = now
                if lagging:
                    self._merger.touch(partition, now)
            await self._persist(now)
            # The offsets are committed in Kafka on this answer: the joins behind them must be
            # on a replica first, or a Redis failover could lose joins Kafka no longer replays.
            await redis_clients.replicated(self._redis, self._settings)
            if arrived:
                self._busy_at = time.monotonic()
                self._woken.set()  # joins are in: admit without waiting out an idle tick
            return self._epoch, self._merger.committable_offsets()

    def _hold_unheard_partitions(self, now: int) -> None:
        """A partition whose ingest has not reported lately may have joins on the way."""
        for partition in range(self._settings.join_partitions):
            if now - self._heard.get(partition, 0) > self._settings.partition_idle_ms / 2:
                self._merger.touch(partition, now)

    async def _persist(self, now: int) -> None:
        """Persist the joins behind the watermark. Joins taken from the merger stay here until
        Redis has them: a write that fails (Redis down, restarting or failing over) is made
        again at the next call, first (the scripts keep a join queued once), and their offsets
        become committable only after it (issue 12: released joins used to be dropped when
        Redis failed under them, and their offsets committed, which left those users `waiting`
        for ever). They are counted as queued once stored, so a join stored again is counted
        once."""
        self._unpersisted += self._merger.take(now)
        lanes = self._by_lane(self._unpersisted)
        for lane in (QueueTier.PRESALE, QueueTier.PREQUEUE):
            if lanes[lane]:
                await self._scripts.enqueue(lane, lanes[lane])
        if lanes[QueueTier.GENERAL] or self._lottery_due(now):
            await self._run_lottery()
        if lanes[QueueTier.GENERAL]:
            await self._scripts.enqueue(QueueTier.GENERAL, lanes[QueueTier.GENERAL])
        done, self._unpersisted = self._unpersisted, []
        self._merger.persisted(done)
        self._report.queued(len(done))
        offsets = self._merger.committable_offsets()
        if offsets != self._offsets_written:
            await save_persisted_offsets(self._redis, self._event_id, offsets)
            self._offsets_written = offsets

    def _by_lane(self, released: list[Join]) -> dict[QueueTier, list[Join]]:
        """Released joins per lane, each in merge order."""
        lanes: dict[QueueTier, list[Join]] = {tier: [] for tier in QueueTier}
        if not self._codes and self._lottery_done:  # the usual case after on-sale
            lanes[QueueTier.GENERAL] = released
            return lanes
        for join in released:
            lanes[self._lane(join)].append(join)
        return lanes

    def _lane(self, join: Join) -> QueueTier:
        if join.priority_code and check_code(self._codes, join.priority_code):
            return QueueTier.PRESALE
        if is_prequeue(join.joined_at_ms, self._onsale_ms) and not self._lottery_done:
            return QueueTier.PREQUEUE
        return QueueTier.GENERAL

    @property
    def _lottery_done(self) -> bool:
        return self._room.get("lottery_done") == "1"

    def _lottery_due(self, now: int) -> bool:
        watermark = self._merger.watermark_ms(now)
        return not self._lottery_done and watermark is not None and watermark >= self._onsale_ms

    async def _run_lottery(self) -> None:
        """Order the pre-queue by the committed seed and put it ahead of everyone after."""
        if self._lottery_done:
            return
        raw = await self._redis.lrange(keys.queue_prequeue(self._event_id), 0, -1)
        members = {m.ticket_id: m for m in (Member.decode(r) for r in raw)}
        order = [members[t] for t in lottery.lottery_order(self._seed, members)]
        start = int(self._room.get("lottery_cursor", 0))
        for offset in range(start, max(start, len(order)) + 1, LOTTERY_CHUNK):
            chunk = order[offset:offset + LOTTERY_CHUNK]
            final = offset + LOTTERY_CHUNK >= len(order)
            await self._scripts.lottery_chunk(offset, chunk, final, self._seed.hex())
            if final:
                break
        self._room = await room_fields(self._redis, self._event_id)
        log.info("room %s: lottery ordered %d pre-queue joins", self._event_id, len(order))

    # -- admission -----------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        """Merge, persist and admit every `admit_interval_s`; a room with nothing to do slows
        down to `room_idle_tick_max_s` (many events per node), and a batch of joins wakes it."""
        interval = self._settings.admit_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), interval)
            self._woken.clear()
            try:
                async with self._lock:
                    self._hold_unheard_partitions(now_ms())
                    await self._persist(now_ms())
                    if self._reload:
                        await self._read_back()
                    busy = await self._admit(now_ms()) or self._merger.pending_count > 0
                if self._waiting or self._merger.pending_count:
                    self._busy_at = time.monotonic()  # work left: not idle, whatever it wrote
                if busy or self._waiting or self._awaiting_lottery():
                    await self._heartbeat.beat()
                if self._merger.pending_count or self._awaiting_lottery():
                    self._keep_ingest_awake()
            except StaleOwner:
                log.warning("room %s was taken over; this incarnation stops", self._event_id)
                self.taken_over = True
                return
            except RedisConnectionError as error:  # Redis away: said once a tick, no trace
                log.warning("room %s tick failed: Redis unreachable (%s)", self._event_id, error)
                self._reload = True  # an admission step may or may not have been applied
                busy = True
            except Exception:
                log.exception("room %s tick failed", self._event_id)
                self._reload = True  # an admission step may or may not have been applied
                busy = True
            self._report.tick(now_ms())
            interval = self._settings.admit_interval_s if busy else min(
                2 * interval, self._settings.room_idle_tick_max_s)

    async def _admit(self, now: int) -> bool:
        """One admission step; returns whether it changed anything."""
        records = await self._settle_outstanding(now)  # before reading seats: never undercount
        known = seats_left(await catalog.availability(self._redis, self._event_id),
                           (b.index for b in self._event.venue.blocks))
        remaining = 0 if known is None else known  # unknown: nobody admitted (nor refused)
        room = await room_fields(self._redis, self._event_id)
        presale_waiting = int(room.get("presale_tail", 0)) - int(room.get("presale_head", 0))
        general_waiting = int(room.get("tail", 0)) - int(room.get("head", 0))
        self._waiting = presale_waiting + general_waiting
        open_now = now >= self._onsale_ms and self._lottery_done
        count = self._admission.admit_count(
            now, presale_waiting + general_waiting if open_now else 0, remaining,
            len(self._outstanding), self._settings.admit_batch_max)
        presale = await self._peek(keys.queue_presale(self._event_id), min(count, presale_waiting))
        general = await self._peek(keys.queue_line(self._event_id), count - len(presale) + 1)
        oldest = general[0].joined_at_ms if general else 0
        general = general[:count - len(presale)]
        admitted = {m.ticket_id: Admission(now, now + self._settings.admission_ttl_s * 1000,
                                           m.user_id) for m in presale + general}
        entries = self._log_entries(presale + general, now, int(room.get("admitted_total", 0)))
        self._rate.record(now, len(admitted))
        sample = self._rate.sample(now)
        admittable = min(presale_waiting + general_waiting, remaining - len(self._outstanding)) \
            if open_now and self._admission.rate_per_s > 0 else 0
        self._report.step(now, admittable, self._waiting, remaining,
                          (now - oldest) / 1000 if oldest and general_waiting > len(general) else 0.0,
                          self._admission.rate_per_s, sample.mean_per_s)
        fields: dict[str, object] = {"head": int(room.get("head", 0)) + len(general),
                  "presale_head": int(room.get("presale_head", 0)) + len(presale),
                  "admitted_total": int(room.get("admitted_total", 0)) + len(admitted),
                  "sold_out": room.get("sold_out", "0") if known is None else int(remaining <= 0),
                  "rate_mean": round(sample.mean_per_s, 3),
                  "rate_stdev": round(sample.stdev_per_s, 3),
                  "rate_configured": self._admission.rate_per_s,
                  "oldest_joined_at_ms": oldest if general_waiting > len(general) else 0}
        if entries:
            fields |= {"log_length": entries[-1].seq + 1, "log_head": entries[-1].hash}
        published = {k: str(v) for k, v in fields.items()}
        if not admitted and not records and published == self._published:
            return False  # an idle room costs a few reads per tick, no writes
        if admitted:  # the admissions log first: a Redis that loses them gets them back
            await admissions.append(
                await self._shared.durable_log(self._settings.admissions_topic),
                self._settings, self._event_id,
                [Admitted(m.ticket_id, m.encode(), lane, admitted[m.ticket_id])
                 for lane, members in (("presale", presale), ("general", general))
                 for m in members])
        # published_at_ms is not compared above (an idle room writes nothing): it dates the
        # numbers, so each replica measures its position-update lag (replica/queue_client.py)
        await self._scripts.admit(presale, general, records | admitted,
                                  [json.dumps(vars(e)) for e in entries],
                                  published | {"published_at_ms": str(now)})
        self._report.admitted(now, len(admitted))
        self._published = published
        self._outstanding.update(admitted)
        if admitted:
            self._busy_at = time.monotonic()
        if entries:
            self._log_tail = entries[-1]
        return True

    async def _peek(self, key: str, count: int) -> list[Member]:
        if count <= 0:
            return []
        return [Member.decode(raw) for raw in await self._redis.lrange(key, 0, count - 1)]

    async def _settle_outstanding(self, now: int) -> dict[str, Admission]:
        """Admitted users who held are done; those whose admission lapsed gave their place back.

        Looks at up to `admit_batch_max` of them per step, in turn (the rest wait for the next
        steps, still counted against the seats: slower, never more admissions than seats)."""
        tickets = list(itertools.islice(self._outstanding, self._settings.admit_batch_max))
        if not tickets:
            return {}
        counts = await self._redis.hmget(keys.user_seats(self._event_id),
                                         [self._outstanding[t].user_id for t in tickets])
        changed = {}
        for ticket, count in zip(tickets, counts, strict=True):
            admission = self._outstanding.pop(ticket)
            if count is not None and int(count) > 0:
                changed[ticket] = replace(admission, held=True)
            elif admission.expires_at_ms > now:
                self._outstanding[ticket] = admission  # to the back of the line
        return changed

    def _log_entries(self, members: list[Member], now: int,
                     admitted_before: int) -> list[fairness.LogEntry]:
        entries, prev = [], self._log_tail
        for i, member in enumerate(members):
            prev = fairness.append(prev, member.ticket_id, admitted_before + i + 1, now)
            entries.append(prev)
        return entries

    # -- control -------------------------------------------------------------------------
    async def set_rate(self, rate_per_s: float) -> None:
        self._admission.set_rate(rate_per_s, now_ms())
        self._rate.configured_rate_per_s = rate_per_s
        self._woken.set()

    async def ping(self) -> int:
        return self._epoch


class RoomReport:
    """The room's metrics (store/metrics.py), bound to its event once.

    Admission stalled is measured, not inferred: seconds since the last admission beyond the
    room's own pace (one admission per 1/rate s, one step per admit interval), counted only
    while there are users it could admit (waiting, seats left after those already admitted,
    rate above 0). A room that sold out for now, is paused at rate 0, or keeps pace reads 0; one
    whose steps fail (Redis down) or find nothing to admit while users wait climbs. A new
    incarnation counts from its activation."""

    def __init__(self, event_id: str, admit_interval_s: float) -> None:
        self._interval_s = admit_interval_s
        self._admitted = metrics.ADMISSIONS.bind(event_id)
        self._queued = metrics.JOINS_QUEUED.bind(event_id)
        self._waiting = metrics.QUEUE_WAITING.bind(event_id)
        self._oldest = metrics.QUEUE_OLDEST_WAIT.bind(event_id)
        self._stalled = metrics.ADMISSION_STALLED.bind(event_id)
        self._seats = metrics.SEATS_AVAILABLE.bind(event_id)
        self._rate = metrics.ADMISSION_RATE.bind(event_id)
        self._measured = metrics.ADMISSION_MEASURED_RATE.bind(event_id)
        self._admittable = 0
        self._rate_per_s = 0.0
        self._progress_ms = now_ms()  # last admission, or last time nobody could be admitted

    def queued(self, count: int) -> None:
        if count:
            self._queued.inc(count)

    def step(self, now: int, admittable: int, waiting: int, seats: int, oldest_wait_s: float,
             rate_per_s: float, measured_per_s: float) -> None:
        """An admission step read the room (before it writes its admissions)."""
        if admittable <= 0:
            self._progress_ms = now
        self._admittable, self._rate_per_s = admittable, rate_per_s
        self._waiting.set(waiting)
        self._seats.set(seats)
        self._oldest.set(oldest_wait_s)
        self._rate.set(rate_per_s)
        self._measured.set(measured_per_s)

    def admitted(self, now: int, count: int) -> None:
        """The step's admissions are written."""
        if count:
            self._admitted.inc(count)
            self._progress_ms = now

    def tick(self, now: int) -> None:
        """After every tick, whether its step ran or failed."""
        if self._admittable <= 0:
            self._stalled.set(0.0)
            return
        pace_s = max(self._interval_s, 1 / self._rate_per_s)
        self._stalled.set(max(0.0, (now - self._progress_ms) / 1000 - pace_s))

    def stopped(self) -> None:
        """Passivated or handed off: this incarnation no longer speaks for the event, so its
        gauges are no longer exported (their series end; counters stay, as counters do)."""
        metrics.REGISTRY.release(self._waiting, self._oldest, self._stalled, self._seats,
                                 self._rate, self._measured)


def _log_failure(done: asyncio.Future[object]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("waking an ingest failed: %s", done.exception())
