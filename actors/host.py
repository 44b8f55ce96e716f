"""The host actor: one long-lived process of the pool, hosting many entities.

Entities are cheap, processes are few (Orleans grains, Akka sharded entities): a seat block, a
waiting room, a join ingest or an event owner is an object here, activated on first use and
passivated when idle. A host

- **activates** an entity when a call or a due reminder needs it; the entity takes a new epoch
  in Redis, so whatever an older incarnation elsewhere still tries to write is refused. A
  failed activation is not kept: the next call tries again (Kafka briefly down does not leave
  an entity broken for the life of the process).
- **passivates** an entity unused for `passivate_after_s` whose state is all in Redis and
  Kafka; what must still happen without a request (hold expiry, a busy room's ticks, the
  lottery at on-sale, closing an ended event) is in the due index, which every host sweeps
  for the due entities it owns.
- **hands off** entities it no longer owns when the members change (a host joined, left or
  came back): it passivates them and marks them due now, so their new host activates them at
  its next sweep. A call that reaches it for an entity it does not own is forwarded once.
- host 0 also **manages the pool**: it sizes it for the open events (within the settings'
  bounds), pings every host and publishes the ones that answer as the members. A host that
  needs resources the cluster lacks stays pending (so Ray's autoscaler adds a node) and joins
  the members only once it answers; one silent for `host_leave_after_s` (on a lost node)
  leaves them until Ray restarts it, but a busy one that answers late stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any, Protocol

import ray
from ray.exceptions import ActorDiedError, RayTaskError

from actors import directory, logs
from actors.redis_watch import RedisIncarnation
from domain import placement
from domain.errors import EventClosed, NotFound, StaleOwner, TicketingError, Unavailable
from domain.settings import Settings
from store import catalog, keys, metrics, redis_clients
from store.codec import text

log = logging.getLogger("ticketing.host")

DUE_BATCH = 200
ENTITY_KINDS = ("block", "room", "ingest", "event")  # domain.placement's entity kinds


class Entity(Protocol):
    """What a host needs of an entity; the entity's own methods are called by name."""

    last_used: float  # monotonic; the host stamps it on every call
    taken_over: bool  # a newer incarnation fenced it (StaleOwner): the host drops it

    async def activate(self) -> None: ...

    async def deactivate(self) -> None: ...

    def can_passivate(self, now: float) -> bool: ...

    async def on_due(self) -> None: ...


class Shared:
    """What the entities of one host share: one Redis pool, one ledger producer, one joins
    consumer (actors/join_consumer.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis_clients.primary(settings, max_connections=256)
        self._ledger: Any = None
        self._ledger_lock = asyncio.Lock()
        self._join_consumer: Any = None
        self._durable: Any = None
        self._durable_lock = asyncio.Lock()
        self._durable_topics: set[str] = set()

    async def durable_topic(self, topic: str) -> None:
        """Create one of the small durable logs' topics (the events topic compacted, one
        partition; others like the ledger) before anything reads or writes it."""
        s = self.settings
        if topic not in self._durable_topics:
            from store import catalog_log
            from store.kafka_io import ensure_topic

            events = topic == s.events_topic
            await asyncio.to_thread(
                ensure_topic, s.kafka_bootstrap, topic,
                catalog_log.PARTITIONS if events else s.ledger_partitions,
                s.kafka_replication_factor, s.kafka_min_insync_replicas,
                {"cleanup.policy": "compact"} if events else None)
            self._durable_topics.add(topic)

    async def durable_log(self, topic: str) -> Any:
        """The host's producer of the small durable logs (`store.durable_log`), `topic`
        created first."""
        async with self._durable_lock:
            s = self.settings
            await self.durable_topic(topic)
            if self._durable is None:
                from store.durable_log import DurableLog

                self._durable = await DurableLog.start(s.kafka_bootstrap, s.kafka_timeout_s)
            return self._durable

    @property
    def join_consumer(self) -> Any:
        """Made on first use (a host with no ingest imports no Kafka consumer)."""
        if self._join_consumer is None:
            from actors.join_consumer import JoinConsumer

            self._join_consumer = JoinConsumer(self.settings)
        return self._join_consumer

    async def ledger(self) -> Any:
        async with self._ledger_lock:
            if self._ledger is None:
                from store.kafka_io import ensure_topic
                from store.ledger import Ledger

                s = self.settings
                await asyncio.to_thread(ensure_topic, s.kafka_bootstrap, s.ledger_topic,
                                        s.ledger_partitions, s.kafka_replication_factor,
                                        s.kafka_min_insync_replicas)
                self._ledger = await Ledger.start(s.kafka_bootstrap, s.ledger_topic,
                                                  s.kafka_timeout_s)
            return self._ledger


def make_entity(entity_id: str, shared: Shared) -> Entity:
    kind, event_id, index = placement.parse_entity(entity_id)
    settings = shared.settings
    if kind == "block":
        from actors.seat_block import SeatBlock

        return SeatBlock(settings, event_id, index, shared)
    if kind == "room":
        from actors.waiting_room import WaitingRoom

        return WaitingRoom(settings, event_id, shared)
    if kind == "ingest":
        from actors.ingest import JoinIngest, partitions_of

        return JoinIngest(settings, event_id, partitions_of(
            index, settings.ingest_actors, settings.join_partitions), index, shared)
    from actors.event_owner import EventOwner

    return EventOwner(settings, event_id, shared)


class EntityHost:
    def __init__(self, settings: Settings, index: int) -> None:
        logs.configure()
        self.index = index
        self._settings = settings
        self._shared = Shared(settings)
        self._redis = self._shared.redis
        self._directory = directory.of(settings)
        self._directory.local = self
        self._entities: dict[str, Entity] = {}
        self._activating: dict[str, asyncio.Task[Entity]] = {}
        self._gates: dict[str, asyncio.Lock] = {}
        self._in_flight: Counter[str] = Counter()
        self._silent_since: dict[int, float] = {}  # host 0: members not answering, since when
        self._published: set[int] = set()  # host 0: the members it last published
        self._recovering = False  # after a Redis restart, until every entity here is back
        self._entity_gauges = {k: metrics.HOST_ENTITIES.bind(str(index), k) for k in ENTITY_KINDS}
        loop = asyncio.get_running_loop()
        self._incarnation = RedisIncarnation(self._redis)
        self._tasks = [loop.create_task(self._maintain_forever()),
                       loop.create_task(self._sweep_due_forever()),
                       loop.create_task(self._watch_redis_forever())]

    # -- calls ---------------------------------------------------------------------------
    async def call(self, entity_id: str, method: str, *args: Any, hops: int = 0) -> Any:
        """Run `method` of the entity, activating it first; forward once if it lives elsewhere."""
        owner = self._directory.owner(entity_id)
        if owner != self.index and hops == 0:
            if entity_id in self._entities:  # the members changed: hand it off now
                asyncio.get_running_loop().create_task(self._passivate(entity_id))
            try:
                return await self._directory.host(owner).call.remote(
                    entity_id, method, *args, hops=1)
            except RayTaskError as error:
                if isinstance(error.cause, TicketingError):
                    raise error.cause from None
                raise
        if method.startswith("_") or method in ("activate", "deactivate", "can_passivate"):
            raise NotFound(f"no such operation: {method[:40]}")
        entity = await self._entity(entity_id)
        handler = getattr(entity, method, None)
        if handler is None:
            raise NotFound(f"no such operation: {method[:40]}")
        self._in_flight[entity_id] += 1
        try:
            return await handler(*args)
        except StaleOwner as error:
            self._drop_taken_over(entity_id, entity)
            raise error.with_traceback(None) from None
        except TicketingError as error:
            # A refusal (seats taken, hold expired) is an answer, not a fault: its traceback is
            # dropped, because Ray formats every raised error's traceback, and that was 27% of
            # a host's CPU in the 1,000,000-user on-sale (tens of thousands of refusals).
            raise error.with_traceback(None) from None
        finally:
            self._in_flight[entity_id] -= 1
            entity.last_used = time.monotonic()

    async def _entity(self, entity_id: str) -> Entity:
        entity = self._entities.get(entity_id)
        if entity is not None:
            return entity
        task = self._activating.get(entity_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._activate(entity_id))
            self._activating[entity_id] = task
            task.add_done_callback(lambda _t: self._activating.pop(entity_id, None))
        return await asyncio.shield(task)

    async def _activate(self, entity_id: str) -> Entity:
        async with self._gate(entity_id):  # never while the same entity is being passivated
            entity = make_entity(entity_id, self._shared)
            await entity.activate()  # raises: nothing is kept, the next call tries again
            entity.last_used = time.monotonic()
            self._entities[entity_id] = entity
            return entity

    def _drop_taken_over(self, entity_id: str, entity: Entity) -> None:
        """A newer incarnation fenced this one (another host that had another view of the
        members, or an epoch taken again after a Redis restart): it can never write again.
        It is dropped rather than kept refusing every call (or, its ticker stopped, keeping a
        room that admits nobody): the next call or due sweep activates a new incarnation on
        whichever host owns the entity then."""
        if self._entities.get(entity_id) is not entity:
            return  # already dropped or replaced
        del self._entities[entity_id]
        log.warning("host %s drops %s: a newer incarnation took it over", self.index, entity_id)

        async def stop() -> None:
            async with self._gate(entity_id):  # before a new incarnation here activates
                try:
                    await entity.deactivate()  # stops its tasks; its writes are fenced
                except (Exception, asyncio.CancelledError):
                    log.exception("stopping %s failed", entity_id)

        asyncio.get_running_loop().create_task(stop())

    def _gate(self, entity_id: str) -> asyncio.Lock:
        return self._gates.setdefault(entity_id, asyncio.Lock())

    async def _passivate(self, entity_id: str, due_now: bool = False) -> None:
        async with self._gate(entity_id):
            entity = self._entities.pop(entity_id, None)
            if entity is None:
                return
            try:
                await entity.deactivate()
            except (Exception, asyncio.CancelledError):
                log.exception("passivating %s failed (its state is in Redis)", entity_id)
            if due_now:  # handed off: its new host activates it at its next sweep
                await self._redis.zadd(keys.due_index(), {entity_id: _now_ms()}, lt=True)
        self._gates.pop(entity_id, None)
        self._in_flight.pop(entity_id, None)

    # -- reminders -----------------------------------------------------------------------
    async def _sweep_due_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.due_sweep_interval_s)
            try:
                await self._sweep_due()
            except Exception:
                log.exception("host %s: due sweep failed", self.index)

    async def _sweep_due(self) -> None:
        due = await self._redis.zrangebyscore(keys.due_index(), "-inf", _now_ms(),
                                              start=0, num=DUE_BATCH)
        mine = [text(e) for e in due if self._directory.owner(text(e)) == self.index]
        await asyncio.gather(*[self._run_due(e) for e in mine])

    async def _run_due(self, entity_id: str) -> None:
        try:
            entity = await self._entity(entity_id)
            self._in_flight[entity_id] += 1
            try:
                await entity.on_due()
            finally:
                self._in_flight[entity_id] -= 1
        except (NotFound, EventClosed, ValueError):
            await self._redis.zrem(keys.due_index(), entity_id)  # nothing left to do for it
        except Unavailable as error:  # e.g. its event not restored yet: still due
            log.warning("host %s: due entity %s: %s; retrying", self.index, entity_id, error)
        except Exception:
            log.exception("host %s: due entity %s failed; retrying", self.index, entity_id)

    # -- Redis restarts (issue 12) --------------------------------------------------------
    async def _watch_redis_forever(self) -> None:
        """Every interval, the first at once: a Redis that is another server than the last
        one seen has every entity here activated again; one not marked as holding the whole
        events log (new, or emptied before this host saw it) gets the log's events back."""
        while True:
            try:
                if await self._incarnation.changed():
                    await self._recover_from_redis_restart()
            except Exception:
                log.exception("host %s: recovery after a Redis restart failed; retrying",
                              self.index)
                self._incarnation.run_id = "recovering"  # not done: try it again
            else:
                await self._restore_catalog_if_unmarked()
            await asyncio.sleep(self._settings.redis_watch_interval_s)

    async def _restore_catalog_if_unmarked(self) -> None:
        try:
            if (self._incarnation.answering
                    and not await catalog.holds_every_event(self._redis)):
                await self._restore_catalog()
        except Exception as error:  # Redis or Kafka away: the next interval tries again
            log.warning("host %s: restoring the events log failed; retrying: %r", self.index,
                        error)

    async def _recover_from_redis_restart(self) -> None:
        """Redis is another server than the one the entities here wrote to: it may have lost
        their last writes, or everything. Host 0 publishes the members again first (an empty
        Redis has none); every host puts back the events Redis lacks (whichever sees the
        restart first: an entity activated before its event is back is not found); then every
        entity active here is passivated and activated again:
        a new epoch (above any before, `take_epoch.lua`), memory rebuilt from Redis and the
        Kafka logs (a block replays the ledger; an ingest's lane starts again where the
        room's Redis says it persisted up to, so lost joins are read again)."""
        log.warning("host %s: Redis restarted (run_id %s); activating %d entities again",
                    self.index, self._incarnation.run_id, len(self._entities))
        self._recovering = True
        try:
            await self._recover_entities()
        finally:
            self._recovering = False

    async def _recover_entities(self) -> None:
        if self.index == 0:
            await self._manage_pool()
        await self._restore_catalog()
        self._directory.refresh()
        active = list(self._entities)
        for entity_id in active:  # due now: if the members moved it, its owner takes it up
            await self._passivate(entity_id, due_now=True)
        active = [e for e in active if self._directory.owner(e) == self.index]
        results = await asyncio.gather(*[self._entity(e) for e in active],
                                       return_exceptions=True)
        for entity_id, result in zip(active, results, strict=True):
            if isinstance(result, BaseException):  # its next call or due sweep tries again
                log.warning("host %s: %s not active again yet: %r", self.index, entity_id,
                            result)

    async def _restore_catalog(self) -> None:
        """After a Redis restart (every host; SET NX: one puts each back): every event the
        events log has and Redis lacks (an empty Redis) is put back, its entities due now:
        its blocks replay the ledger (sold seats sold again, availability recounted), its room
        restores its admissions and its ingest replays the joins log into the lanes."""
        from store import catalog_log

        await self._shared.durable_topic(self._settings.events_topic)  # created, not auto-made
        restored = await catalog_log.restore_missing(self._redis, self._settings, time.time())
        now = _now_ms()
        for event in restored:
            if event.closed:
                continue
            s = self._settings
            entities = [placement.block_entity(event.event_id, b.index)
                        for b in event.venue.blocks]
            entities += [placement.room_entity(event.event_id),
                         placement.event_entity(event.event_id)]
            entities += [placement.ingest_entity(event.event_id, i)
                         for i in range(s.ingest_actors)]
            await self._redis.zadd(keys.due_index(), dict.fromkeys(entities, now))
        if restored:
            log.warning("host %s: restored %d events from the events log: %s", self.index,
                        len(restored), [e.event_id for e in restored])

    # -- members, hand-off, passivation, the pool --------------------------------------------
    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.pool_check_interval_s)
            try:
                if self.index == 0:
                    await self._manage_pool()
                self._directory.refresh()
                await self._hand_off_and_passivate()
            except Exception:
                log.exception("host %s: maintenance failed", self.index)
            kinds = Counter(entity_id.partition(":")[0] for entity_id in self._entities)
            for kind, gauge in self._entity_gauges.items():
                gauge.set(kinds[kind])

    async def _hand_off_and_passivate(self) -> None:
        members, now = self._directory.members(), time.monotonic()
        for entity_id, entity in list(self._entities.items()):
            if entity.taken_over:
                self._drop_taken_over(entity_id, entity)
            elif placement.owner(entity_id, members) != self.index:
                log.info("host %s hands %s off", self.index, entity_id)
                await self._passivate(entity_id, due_now=True)
            elif (now - entity.last_used > self._settings.passivate_after_s
                  and not self._in_flight[entity_id] and entity.can_passivate(now)):
                await self._passivate(entity_id)

    async def _manage_pool(self) -> None:
        s = self._settings
        open_events = await self._redis.zcard(keys.open_events())
        wanted = placement.pool_size(open_events, s.events_per_host, s.host_pool_min,
                                     s.host_pool_max)
        others = [i for i in range(wanted) if i != self.index]
        pings = dict(zip(others, await asyncio.gather(*[self._ping(i) for i in others]),
                         strict=True))
        stored = {int(m) for m in await self._redis.smembers(keys.pool_members())}
        current, wanted = placement.members_before_ping(stored, self._published, wanted,
                                                        self._recovering)
        live, self._silent_since = placement.members_after_ping(
            self.index, current, pings, self._silent_since, time.monotonic(),
            s.host_leave_after_s)
        metrics.POOL_HOSTS.bind("wanted").set(wanted)
        metrics.POOL_HOSTS.bind("live").set(len(live))
        metrics.OPEN_EVENTS.bind().set(open_events)
        if live - stored:
            await self._redis.sadd(keys.pool_members(), *sorted(live - stored))
        gone = current - live
        if gone:
            await self._redis.srem(keys.pool_members(), *sorted(gone))
            log.info("host 0: members now %s (left: %s)", sorted(live), sorted(gone))
        # The pool shrank: members beyond it hand off and stop, and so do hosts started for it
        # that never answered (pending on a node that never came, or still starting), or they
        # would live on outside the pool, keeping their resources and the autoscaler's nodes.
        # So do host actors outside the pool found by name, whoever started them (a router
        # with a stale view once could): they would host nothing and hold their CPUs.
        named = await asyncio.to_thread(self._directory.named_hosts)
        beyond = sorted((gone | set(self._directory.started_hosts()) | set(named))
                        - set(range(wanted)))
        await asyncio.gather(*[self._retire(i, hand_off=i in current) for i in beyond])
        self._published = live

    async def _ping(self, index: int) -> placement.Ping:
        try:
            await asyncio.wait_for(self._directory.host(index, create=True).ping.remote(),
                                   self._settings.host_ping_timeout_s)
            return placement.Ping.ANSWERED
        except ActorDiedError:
            return placement.Ping.GONE
        except Exception:  # late, restarting, pending or unreachable: silent for now
            return placement.Ping.SILENT

    async def _retire(self, index: int, hand_off: bool) -> None:
        """Stop a host beyond the pool; a member first hands its entities off (one that never
        answered hosts none, and would only make this wait)."""
        try:
            handle = self._directory.host(index)
        except Unavailable:  # already gone
            self._directory.forget_host(index)
            return
        if hand_off:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.retire.remote(), 30)
            # A router that read the members just before it left still sends it calls for up
            # to MEMBERS_TTL_S (it forwards them now): stopping it sooner fails those calls.
            await asyncio.sleep(2 * directory.MEMBERS_TTL_S)
        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)
        self._directory.forget_host(index)

    # -- control -------------------------------------------------------------------------
    async def ping(self) -> int:
        return self.index

    async def retire(self) -> int:
        """Hand every entity off (the pool shrank); the manager then stops this actor. The
        members are read again first, so calls still routed here are forwarded, not served."""
        self._directory.refresh()
        for entity_id in list(self._entities):
            await self._passivate(entity_id, due_now=True)
        return self.index

    async def drop_event(self, event_id: str) -> int:
        """The event closed: passivate its entities here and forget their reminders."""
        mine = [e for e in self._entities if placement.parse_entity(e)[1] == event_id]
        for entity_id in mine:
            await self._passivate(entity_id)
        return len(mine)

    async def active(self) -> list[str]:
        """The entities active here (for tests, benchmarks and operators)."""
        return sorted(self._entities)

    async def kafka_consumers(self) -> dict[str, int]:
        """The Kafka clients this host process runs (counted from librdkafka's threads), the
        ingest lanes its joins consumer reads for, and how many consumers it has built."""
        from actors.join_consumer import kafka_clients

        feed = self._shared._join_consumer
        return {"kafka_clients": kafka_clients(), "lanes": feed.lanes() if feed else 0,
                "consumers_made": feed.consumers_made if feed else 0}

    async def node(self) -> str:
        """The Ray node this host runs on (so tests and operators see where entities live)."""
        return str(ray.get_runtime_context().get_node_id())


def _now_ms() -> int:
    return int(time.time() * 1000)


EntityHostActor = ray.remote(  # type: ignore[call-overload]  # Ray's stubs lack max_concurrency
    max_restarts=-1, max_task_retries=3, max_concurrency=10_000)(EntityHost)
