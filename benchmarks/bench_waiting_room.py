"""The waiting room from Kafka into Redis: joins/s into the ordered queue, admissions/s, memory.

One run, one Redis (127.0.0.1:6450) and one Kafka (127.0.0.1:29592/29593, below the ephemeral
port range) of its own, local Ray (`num_cpus=2`):

  1. produce   N joins (the ingress's record format, `store/joins.encode`, stamped as they are
               produced, ticket ids from `ticket_id_for`, keyed by ticket) into one event's
               joins topic (`join_partitions` partitions) with confluent-kafka, acks=all and
               idempotent; kafka-python's `store.kafka_io.durable_producer` (the ledger's, and
               the join log's before aiokafka) is timed on a smaller count for the ratio.
  2. consumer  the consumer alone: kafka-python vs aiokafka vs confluent-kafka reading and
               decoding (json + `joins.decode`) the same records; plus the decode alone.
  3. ours      the project's ingest actors + waiting-room actor consume the topic (started
               after it was filled) and persist it with `enqueue.lua`; timed until Redis shows
               all N placed (HLEN places + HLEN admitted). Redis `used_memory` delta / N is
               the memory per waiting user. Then the room's rate is raised and admissions/s
               are timed (HLEN admitted) from the persisted queue.
  4. counter   a counter-based queue as AWS's virtual waiting room assigns positions: a Redis
               INCR per join (pipelined), the position stored per ticket; admissions = INCRBY
               of the serving counter plus one admission record per user (pipelined).
  5. raw       this machine's ceiling for the same Kafka consume + Redis writes: confluent
               consume, one pipelined RPUSH + HSET per batch (the writes enqueue.lua makes,
               without checks, merge or actors); raw admission = LRANGE/LTRIM/HSET/HDEL.
  6. lua       the same N placed straight with `enqueue.lua` in batches from one client (the
               Lua ceiling without Kafka or actors) and its memory per user.
  7. idle      one event's room and ingest actors with nobody joining: their CPU (cores).
  8. variants  (optional, smaller N) ours again with other Settings (ingest_batch_max,
               ingest_actors, join_partitions), or with `client=kafka-python`: the ingest
               actor as it was before the switch to confluent-kafka.

The baselines (phases 2, 4-6) run in this process at the nice value of Ray's workers (15).

    python -m benchmarks.bench_waiting_room [--joins 1000000] [--consumer-joins 300000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from typing import Any

import redis

from benchmarks._common import (
    Bench,
    Ports,
    cpu_delta,
    cpu_snapshot,
    machine_info,
    niceness_by_process,
    write_result,
)

NAME = "bench_waiting_room"
PORTS = Ports(redis=6450, kafka=29592, kafka_controller=29593, http=8505,
              haproxy_stats=8454, haproxy_metrics=9154, fallback_http=8506, fallback_grpc=9506,
              state="/tmp/ticketing-bench-wr")
BATCH = 5000


# -------------------------------------------------------------------------------------------
# producing


def produce_confluent(bootstrap: str, topic: str, settings: Any, event_id: str,
                      n: int) -> dict[str, Any]:
    """N joins as the ingress writes them (stamped now, 3 ms uncertainty, synced)."""
    from confluent_kafka import Producer

    from domain.ids import ticket_id_for
    from store import joins

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 20,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 500000,
                         "compression.type": "none"})
    errors = 0

    def report(err: Any, msg: Any) -> None:
        nonlocal errors
        if err is not None:
            errors += 1

    t0 = time.perf_counter()
    for i in range(n):
        user = f"u{i}"
        ticket = ticket_id_for(settings.token_secret, event_id, user)
        value = json.dumps(joins.encode(ticket, event_id, user, int(time.time() * 1000), 3,
                                        True, None), separators=(",", ":")).encode()
        while True:
            try:
                producer.produce(topic, value, ticket.encode(), on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - t0
    return {"client": "confluent-kafka", "records": n, "elapsed_s": round(elapsed, 2),
            "records_per_s": round(n / elapsed), "errors": errors}


def produce_kafka_python(bootstrap: str, topic: str, settings: Any, event_id: str,
                         n: int) -> dict[str, Any]:
    """The app's producer (`store.kafka_io.durable_producer`, kafka-python), sent in a loop."""
    from domain.ids import ticket_id_for
    from store import joins
    from store.kafka_io import durable_producer

    producer = durable_producer(bootstrap, linger_ms=2)
    t0 = time.perf_counter()
    futures = []
    for i in range(n):
        user = f"k{i}"
        ticket = ticket_id_for(settings.token_secret, event_id, user)
        futures.append(producer.send(topic, key=ticket, value=joins.encode(
            ticket, event_id, user, int(time.time() * 1000), 3, True, None)))
    producer.flush(120)
    elapsed = time.perf_counter() - t0
    failed = sum(1 for f in futures if f.failed())
    producer.close()
    return {"client": "kafka-python (store.kafka_io.durable_producer)", "records": n,
            "elapsed_s": round(elapsed, 2), "records_per_s": round(n / elapsed),
            "errors": failed}


# -------------------------------------------------------------------------------------------
# the consumer alone


def consume_kafka_python(bootstrap: str, topic: str, partitions: int, n: int) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from store import joins

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest",
                             value_deserializer=json.loads, max_poll_records=BATCH)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = 0
    deadline = time.monotonic() + 300
    while got < n and time.monotonic() < deadline:
        for rs in consumer.poll(timeout_ms=200, max_records=BATCH).values():
            got += len([joins.decode(r.value, r.partition, r.offset) for r in rs])
    consumer.close()
    return got


def consume_aiokafka(bootstrap: str, topic: str, partitions: int, n: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from store import joins

    async def run() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=4 * 2**20)
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        deadline = time.monotonic() + 300
        try:
            while got < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
                for rs in batches.values():
                    got += len([joins.decode(json.loads(r.value), r.partition, r.offset)
                                for r in rs])
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())


def confluent_consumer(bootstrap: str, group: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "fetch.max.bytes": 16 * 2**20, "max.partition.fetch.bytes": 4 * 2**20})


def assign_from_start(consumer: Any, topic: str, partitions: int) -> None:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])


def consume_confluent(bootstrap: str, topic: str, partitions: int, n: int) -> int:
    from store import joins

    consumer = confluent_consumer(bootstrap, f"bench-consumer-{time.time_ns()}")
    assign_from_start(consumer, topic, partitions)
    got = 0
    deadline = time.monotonic() + 300
    while got < n and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=BATCH, timeout=0.2)
        got += len([joins.decode(json.loads(m.value()), m.partition(), m.offset())
                    for m in msgs if m.error() is None])
    consumer.close()
    return got


def decode_only(settings: Any, event_id: str, n: int) -> dict[str, Any]:
    from store import joins

    values = [json.dumps(joins.encode(f"tq{i:016x}", event_id, f"u{i}", 1_800_000_000_000 + i,
                                      3, True, None), separators=(",", ":")).encode()
              for i in range(n)]
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        joins.decode(json.loads(v), 0, i)
    elapsed = time.perf_counter() - t0
    return {"records": n, "elapsed_s": round(elapsed, 3), "records_per_s": round(n / elapsed),
            "us_per_record": round(elapsed / n * 1e6, 2)}


def timed(fn: Any, *args: Any) -> dict[str, Any]:
    before, t0 = cpu_snapshot(), time.perf_counter()
    got = fn(*args)
    elapsed = time.perf_counter() - t0
    return {"records": got, "elapsed_s": round(elapsed, 2), "records_per_s": round(got / elapsed),
            "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}


# -------------------------------------------------------------------------------------------
# ours: ingest actors + waiting room


def setup_event(settings: Any, r: redis.Redis, seats: int, rate: float) -> Any:
    """An event whose room and ingest actors we start ourselves (no seat-block actors: the
    room reads only the available-seats hash, which says `seats`)."""
    from domain.event import parse_event
    from domain.ids import new_event_id
    from store import keys
    from store.kafka_io import ensure_topic

    event = parse_event({"name": "wr-bench", "onsale_at": time.time() - 60,
                         "admission_rate_per_s": rate,
                         "sections": [{"name": "A", "rows": 10, "seats_per_row": 100,
                                       "price_cents": 5000}]},
                        new_event_id(), time.time(), 600, 6, 100_000, 50)
    r.set(keys.event(event.event_id), event.to_json())
    r.zadd(keys.events_index(), {event.event_id: time.time()})
    r.hset(keys.available(event.event_id), mapping={"0": seats})
    ensure_topic(settings.kafka_bootstrap, settings.joins_topic(event.event_id),
                 settings.join_partitions)
    return event


def placed(r: redis.Redis, event_id: str) -> tuple[int, int]:
    from store import keys

    for attempt in range(5):  # an overloaded machine can stall Redis for seconds
        try:
            pipe = r.pipeline(transaction=False)
            pipe.hlen(keys.queue_places(event_id))
            pipe.hlen(keys.queue_admitted(event_id))
            p, a = pipe.execute()
            return int(p), int(a)
        except redis.TimeoutError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def used_memory(r: redis.Redis) -> int:
    time.sleep(0.5)
    return int(r.info("memory")["used_memory"])


def steady_rate(timeline: list[tuple[float, int]], n: int, lo: float = 0.05,
                hi: float = 0.95) -> float:
    """Rate between the samples where lo*n and hi*n were first reached (excludes start-up and
    the merge's idle-partition tail)."""
    a = next(((t, c) for t, c in timeline if c >= lo * n), None)
    b = next(((t, c) for t, c in timeline if c >= hi * n), None)
    if a is None or b is None or b[0] <= a[0]:
        return 0.0
    return (b[1] - a[1]) / (b[0] - a[0])


def start_ingest(settings: Any, event_id: str, client: str) -> list[Any]:
    """The event's ingest actors: the project's (confluent-kafka), or the kafka-python one it
    replaced (benchmarks/_ingest_kafka_python.py), for the before/after ratio."""
    from actors import directory
    from actors.ingest import partitions_of

    if client == "app":
        return [directory.ingest(settings, event_id, i) for i in range(settings.ingest_actors)]
    from benchmarks._ingest_kafka_python import JoinIngestKafkaPythonActor

    return [JoinIngestKafkaPythonActor.options(
        name=f"ingest-kp:{event_id}:{i}", namespace=settings.ray_namespace,
        lifetime="detached").remote(settings, event_id, partitions_of(
            i, settings.ingest_actors, settings.join_partitions))
        for i in range(settings.ingest_actors)]


def stop_event(settings: Any, event_id: str, ingest: list[Any]) -> None:
    """Close the event (its entities stop on their hosts); baseline ingest actors are killed."""
    import ray

    from actors import directory

    with contextlib.suppress(Exception):
        ray.get(directory.event_owner(settings, event_id).close.remote(), timeout=60)
    for h in ingest:
        if not isinstance(h, directory.EntityHandle):
            with contextlib.suppress(Exception):
                ray.kill(h)


def run_ours(settings: Any, r: redis.Redis, n: int, admit_s: float, label: str,
             timeout_s: float, client: str = "app") -> dict[str, Any]:
    import ray

    from actors import directory

    out: dict[str, Any] = {"label": label, "joins": n, "ingest_client": client, "settings": {
        k: getattr(settings, k) for k in ("ingest_batch_max", "ingest_actors", "join_partitions",
                                          "ingest_wait_ms", "ingest_lag_ms", "partition_idle_ms",
                                          "admit_interval_s")}}
    event = setup_event(settings, r, seats=4 * n, rate=0)
    topic = settings.joins_topic(event.event_id)
    out["event_id"] = event.event_id
    out["produce"] = produce_confluent(settings.kafka_bootstrap, topic, settings,
                                       event.event_id, n)
    print(label, "produced", out["produce"], flush=True)
    mem0 = used_memory(r)
    before, t0 = cpu_snapshot(), time.perf_counter()
    room = directory.waiting_room(settings, event.event_id)
    ingest = start_ingest(settings, event.event_id, client)
    ray.get([room.ping.remote()] + [h.ping.remote() for h in ingest], timeout=120)
    ready_s, ready_placed = time.perf_counter() - t0, sum(placed(r, event.event_id))
    timeline: list[tuple[float, int]] = []
    first = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p, a = placed(r, event.event_id)
        now = time.perf_counter() - t0
        timeline.append((now, p + a))
        if first is None and p + a > 0:
            first = now
        if p + a >= n:
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    total = timeline[-1][1]
    out["ingest"] = {
        "placed": total, "all_placed": total >= n, "elapsed_s": round(elapsed, 2),
        "first_placed_after_s": round(first or 0, 2),
        "actors_ready_after_s": round(ready_s, 2), "placed_when_ready": ready_placed,
        "joins_per_s_from_actors_ready": round((total - ready_placed) / max(elapsed - ready_s, 1e-9)),
        "joins_per_s_end_to_end": round(total / elapsed),
        "joins_per_s_from_first_placed": round(total / max(elapsed - (first or 0), 1e-9)),
        "joins_per_s_steady_5_to_95pct": round(steady_rate(timeline, n)),
        "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed),
        "timeline_s_placed": [(round(t, 2), c) for t, c in timeline[:: max(1, len(timeline) // 40)]]}
    print(label, "ingest", {k: v for k, v in out["ingest"].items() if k != "timeline_s_placed"},
          flush=True)
    mem1 = used_memory(r)
    from store import keys

    out["memory"] = {
        "used_memory_delta": mem1 - mem0, "bytes_per_waiting_user": round((mem1 - mem0) / max(total, 1), 1),
        "places_hash_bytes": r.memory_usage(keys.queue_places(event.event_id), samples=0),
        "places_hash_encoding": r.object("encoding", keys.queue_places(event.event_id)).decode(),
        "line_list_bytes": r.memory_usage(keys.queue_line(event.event_id), samples=0),
        "line_list_encoding": r.object("encoding", keys.queue_line(event.event_id)).decode()}
    out["memory"]["keys_bytes_per_user"] = round(
        (out["memory"]["places_hash_bytes"] + out["memory"]["line_list_bytes"]) / max(total, 1), 1)
    if admit_s > 0 and total >= n:
        out["admission"] = time_admissions(settings, r, event.event_id, room, n, admit_s)
        print(label, "admission", {k: v for k, v in out["admission"].items()
                                   if k != "timeline_s_admitted"}, flush=True)
    stop_event(settings, event.event_id, ingest)
    return out


def idle_event(settings: Any, r: redis.Redis, seconds: float) -> dict[str, Any]:
    """CPU of one event's room and ingest actors with nobody joining (many events per node)."""
    import ray

    from actors import directory

    event = setup_event(settings, r, seats=1000, rate=50)
    room = directory.waiting_room(settings, event.event_id)
    ingest = start_ingest(settings, event.event_id, "app")
    ray.get([room.ping.remote()] + [h.ping.remote() for h in ingest], timeout=120)
    time.sleep(5)  # past start-up and the first idle-partition timeouts
    before, t0 = cpu_snapshot(), time.perf_counter()
    time.sleep(seconds)
    cores = cpu_delta(before, cpu_snapshot(), time.perf_counter() - t0)
    stop_event(settings, event.event_id, ingest)
    return {"seconds": seconds, "ingest_actors": settings.ingest_actors,
            "cpu_cores_by_process": cores}


def time_admissions(settings: Any, r: redis.Redis, event_id: str, room: Any, n: int,
                    seconds: float) -> dict[str, Any]:
    import ray

    rate = 100_000.0  # the API's largest admission_rate_per_s
    _, a0 = placed(r, event_id)
    before, t0 = cpu_snapshot(), time.perf_counter()
    ray.get(room.set_rate.remote(rate), timeout=60)
    timeline = []
    while time.perf_counter() - t0 < seconds:
        _, a = placed(r, event_id)
        timeline.append((time.perf_counter() - t0, a - a0))
        if a >= n:
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    admitted = timeline[-1][1]
    # per-window rates: how admission keeps up as the admitted-not-yet-held set grows
    windows = []
    for (t1, c1), (t2, c2) in zip(timeline[::4], timeline[4::4], strict=False):
        windows.append({"at_s": round(t2, 1), "admitted": c2,
                        "per_s": round((c2 - c1) / (t2 - t1))})
    return {"rate_set_per_s": rate, "admitted": admitted, "elapsed_s": round(elapsed, 2),
            "admissions_per_s": round(admitted / elapsed),
            "admissions_per_s_first_10s": round(next((c for t, c in timeline if t >= 10),
                                                     admitted) / min(10, elapsed)),
            "windows": windows, "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed),
            "timeline_s_admitted": [(round(t, 2), c) for t, c in timeline[:: max(1, len(timeline) // 40)]]}


# -------------------------------------------------------------------------------------------
# baselines: counter queue, raw ceiling, enqueue.lua alone


def consume_batches(bootstrap: str, topic: str, partitions: int, n: int, sink: Any) -> int:
    """Confluent consume of n records in batches, each decoded and handed to sink(list)."""
    from store import joins

    consumer = confluent_consumer(bootstrap, f"bench-sink-{time.time_ns()}")
    assign_from_start(consumer, topic, partitions)
    got = 0
    deadline = time.monotonic() + 600
    while got < n and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=BATCH, timeout=0.2)
        batch = [joins.decode(json.loads(m.value()), m.partition(), m.offset())
                 for m in msgs if m.error() is None]
        if batch:
            sink(batch)
            got += len(batch)
    consumer.close()
    return got


def counter_queue(settings: Any, r: redis.Redis, topic: str, n: int) -> dict[str, Any]:
    """AWS virtual-waiting-room style: INCR a queue counter per join, store ticket -> position."""
    prefix = f"cq:{time.time_ns()}"
    order: list[str] = []

    def sink(batch: list[Any]) -> None:
        pipe = r.pipeline(transaction=False)
        for _ in batch:
            pipe.incr(f"{prefix}:counter")
        positions = pipe.execute()
        r.hset(f"{prefix}:pos", mapping={j.ticket_id: pos for j, pos in zip(batch, positions,
                                                                           strict=True)})
        order.extend(j.ticket_id for j in batch)

    mem0 = used_memory(r)
    before, t0 = cpu_snapshot(), time.perf_counter()
    got = consume_batches(settings.kafka_bootstrap, topic, settings.join_partitions, n, sink)
    elapsed = time.perf_counter() - t0
    ingest = {"placed": got, "elapsed_s": round(elapsed, 2), "joins_per_s": round(got / elapsed),
              "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}
    mem1 = used_memory(r)
    # admission: raise the serving counter, write one admission record per user (pipelined)
    t0 = time.perf_counter()
    now = int(time.time() * 1000)
    for i in range(0, len(order), 10_000):
        chunk = order[i:i + 10_000]
        pipe = r.pipeline(transaction=False)
        pipe.incrby(f"{prefix}:serving", len(chunk))
        pipe.hset(f"{prefix}:admitted", mapping={
            t: f"[{now},{now + 1800000},\"u\",false]" for t in chunk})
        pipe.execute()
    adm_elapsed = time.perf_counter() - t0
    r.delete(f"{prefix}:pos", f"{prefix}:admitted", f"{prefix}:counter", f"{prefix}:serving")
    return {"ingest": ingest, "memory": {"used_memory_delta": mem1 - mem0,
                                         "bytes_per_waiting_user": round((mem1 - mem0) / max(got, 1), 1)},
            "admission": {"admitted": len(order), "elapsed_s": round(adm_elapsed, 2),
                          "admissions_per_s": round(len(order) / adm_elapsed),
                          "how": "INCRBY serving counter + HSET admission record, 10k per pipeline"},
            "note": "positions in consumption (arrival-at-counter) order, no time-order merge, "
                    "no dedup of rejoins, no fencing"}


def raw_ceiling(settings: Any, r: redis.Redis, topic: str, n: int) -> dict[str, Any]:
    """Same consume, the enqueue writes as plain pipelined commands (RPUSH member, HSET place)."""
    from store.codec import text
    from store.queue import member_text

    prefix = f"raw:{time.time_ns()}"
    seq = 0

    def sink(batch: list[Any]) -> None:
        nonlocal seq
        pipe = r.pipeline(transaction=False)
        pipe.rpush(f"{prefix}:line", *[member_text(j.ticket_id, j.user_id, j.joined_at_ms)
                                       for j in batch])
        pipe.hset(f"{prefix}:place", mapping={j.ticket_id: seq + i for i, j in enumerate(batch)})
        pipe.execute()
        seq += len(batch)

    mem0 = used_memory(r)
    before, t0 = cpu_snapshot(), time.perf_counter()
    got = consume_batches(settings.kafka_bootstrap, topic, settings.join_partitions, n, sink)
    elapsed = time.perf_counter() - t0
    ingest = {"placed": got, "elapsed_s": round(elapsed, 2), "joins_per_s": round(got / elapsed),
              "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}
    mem1 = used_memory(r)
    t0 = time.perf_counter()
    admitted = 0
    now = int(time.time() * 1000)
    while admitted < got:
        head = r.lrange(f"{prefix}:line", 0, 9_999)
        if not head:
            break
        tickets = [text(h).split("|", 1)[0] for h in head]
        pipe = r.pipeline(transaction=False)
        pipe.ltrim(f"{prefix}:line", len(head), -1)
        pipe.hdel(f"{prefix}:place", *tickets)
        pipe.hset(f"{prefix}:admitted", mapping={t: f"[{now},{now + 1800000},\"u\",false]"
                                                 for t in tickets})
        pipe.execute()
        admitted += len(head)
    adm_elapsed = time.perf_counter() - t0
    r.delete(f"{prefix}:line", f"{prefix}:place", f"{prefix}:admitted")
    return {"ingest": ingest, "memory": {"used_memory_delta": mem1 - mem0,
                                         "bytes_per_waiting_user": round((mem1 - mem0) / max(got, 1), 1)},
            "admission": {"admitted": admitted, "elapsed_s": round(adm_elapsed, 2),
                          "admissions_per_s": round(admitted / max(adm_elapsed, 1e-9)),
                          "how": "LRANGE 10k + LTRIM + HDEL places + HSET admission records"}}


def lua_only(settings: Any, r: redis.Redis, n: int) -> dict[str, Any]:
    """n joins placed with enqueue.lua from one client, batches of BATCH (no Kafka, no actors)."""
    from domain.ids import new_event_id, ticket_id_for
    from domain.waiting.queue_order import QueueTier
    from domain.waiting.tickets import Join
    from store import keys
    from store.queue import Member, RoomScripts

    event_id = new_event_id()
    r.set(keys.room_epoch(event_id), 1)
    now_ms = int(time.time() * 1000)
    members = [Join(now_ms, ticket_id_for(settings.token_secret, event_id, f"u{i}"), event_id,
                    f"u{i}", 3, True, None, 0, i) for i in range(n)]

    async def run() -> float:
        from store import redis_clients

        ar = redis_clients.primary(settings)
        scripts = RoomScripts(ar, event_id, 1)
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            await scripts.enqueue(QueueTier.GENERAL, members[i:i + BATCH])
        elapsed = time.perf_counter() - t0
        await ar.aclose()
        return elapsed

    mem0 = used_memory(r)
    before = cpu_snapshot()
    elapsed = asyncio.run(run())
    cpu = cpu_delta(before, cpu_snapshot(), elapsed)
    mem1 = used_memory(r)
    got = r.hlen(keys.queue_places(event_id))
    out: dict[str, Any] = {"placed": got, "elapsed_s": round(elapsed, 2),
                           "joins_per_s": round(got / elapsed),
           "cpu_cores_by_process": cpu,
           "memory": {"used_memory_delta": mem1 - mem0,
                      "bytes_per_waiting_user": round((mem1 - mem0) / max(got, 1), 1),
                      "places_hash_bytes": r.memory_usage(keys.queue_places(event_id), samples=0),
                      "line_list_bytes": r.memory_usage(keys.queue_line(event_id), samples=0),
                      "sample_member": Member(members[0].ticket_id, members[0].user_id, now_ms).encode()}}
    out["memory"]["keys_bytes_per_user"] = round(
        (out["memory"]["places_hash_bytes"] + out["memory"]["line_list_bytes"]) / max(got, 1), 1)
    r.delete(keys.queue_places(event_id), keys.queue_line(event_id), keys.room(event_id))
    return out


# -------------------------------------------------------------------------------------------


def parse_variant(text: str) -> tuple[dict[str, int], str]:
    """"ingest_batch_max=20000,ingest_actors=4" -> Settings overrides; "client=kafka-python"
    runs the kafka-python ingest actor instead of the project's."""
    pairs = dict(kv.split("=") for kv in text.split(",") if kv)
    client = pairs.pop("client", "app")
    return {k: int(v) for k, v in pairs.items()}, client


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--joins", type=int, default=1_000_000, help="joins of the main run")
    ap.add_argument("--consumer-joins", type=int, default=300_000,
                    help="records each client reads in the consumer-alone phase")
    ap.add_argument("--producer-joins", type=int, default=100_000,
                    help="records the app's kafka-python producer sends, for the ratio")
    ap.add_argument("--admit-seconds", type=float, default=45.0)
    ap.add_argument("--timeout", type=float, default=240.0, help="longest an ingest may take")
    ap.add_argument("--variant", action="append", default=[],
                    help="extra run of ours with settings, e.g. ingest_batch_max=20000,ingest_actors=4")
    ap.add_argument("--variant-joins", type=int, default=200_000)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: "
                    "consumer,ours,counter,raw,lua,idle")
    args = ap.parse_args(argv)
    skip = set(args.skip.split(","))
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine_info(), "parameters": {
        **vars(args), "ports": dataclasses.asdict(PORTS),
        "record": "store.joins.encode JSON (~150 B), key = ticket id, acks=all idempotent",
        "admission_rate_per_s": "0 while ingesting, then 100,000 (the API's maximum)",
        "seats": "available hash says 4 x joins (no seat-block actors)"}}
    with Bench(NAME, ray=True, serve=False, ports=PORTS, ingest_wait_ms=50,
               admit_interval_s=0.1) as bench:
        from store import redis_clients

        s = bench.settings
        r = redis_clients.primary_sync(s, socket_timeout=120)
        ours = run_ours(s, r, args.joins, args.admit_seconds, "ours", args.timeout) \
            if "ours" not in skip else None
        result["niceness_by_process"] = niceness_by_process()
        result["ours"] = ours
        topic = s.joins_topic(ours["event_id"]) if ours else None
        if topic is None:
            ev = setup_event(s, r, 0, 0)
            topic = s.joins_topic(ev.event_id)
            result["produce"] = produce_confluent(s.kafka_bootstrap, topic, s, ev.event_id,
                                                  args.joins)
        # the baselines at the nice value of Ray's workers (producing stays at our own)
        os.setpriority(os.PRIO_PROCESS, 0, 15)
        result["parameters"]["baseline_nice"] = os.getpriority(os.PRIO_PROCESS, 0)
        if "consumer" not in skip:
            m = min(args.consumer_joins, args.joins)
            consumers = {}
            for name, fn in (("confluent-kafka", consume_confluent), ("aiokafka", consume_aiokafka),
                             ("kafka-python", consume_kafka_python)):
                consumers[name] = timed(fn, s.kafka_bootstrap, topic, s.join_partitions, m)
                print("consumer", name, consumers[name], flush=True)
            consumers["decode_only_json_and_joins_decode"] = decode_only(s, "ev", m)
            other = s.joins_topic("kp-producer")
            from store.kafka_io import ensure_topic

            ensure_topic(s.kafka_bootstrap, other, s.join_partitions)
            result["producers"] = {
                "confluent-kafka": (ours or result)["produce"],
                "kafka-python": produce_kafka_python(s.kafka_bootstrap, other, s, "kp",
                                                     args.producer_joins)}
            print("producers", result["producers"], flush=True)
            result["consumer_alone"] = consumers
        if "counter" not in skip:
            result["counter_queue"] = counter_queue(s, r, topic, args.joins)
            print("counter", result["counter_queue"], flush=True)
        if "raw" not in skip:
            result["raw_ceiling"] = raw_ceiling(s, r, topic, args.joins)
            print("raw", result["raw_ceiling"], flush=True)
        if "lua" not in skip:
            result["enqueue_lua_alone"] = lua_only(s, r, args.joins)
            print("lua", result["enqueue_lua_alone"], flush=True)
        if "idle" not in skip:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
            result["idle_event"] = idle_event(s, r, 15.0)
            print("idle", result["idle_event"], flush=True)
        variants = []
        for text in args.variant:
            overrides, client = parse_variant(text)
            os.setpriority(os.PRIO_PROCESS, 0, 0)
            try:
                variants.append(run_ours(dataclasses.replace(s, **overrides), r,
                                         args.variant_joins, 0, f"variant {text}", args.timeout,
                                         client))
            except Exception as exc:  # keep the main run's results
                variants.append({"label": f"variant {text}", "error": repr(exc)})
        result["variants"] = variants
        r.close()
    result["summary"] = summarize(result)
    path = write_result(NAME, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {path}")
    return 0


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ours = res.get("ours")
    if ours:
        out["ours_joins_per_s_end_to_end"] = ours["ingest"]["joins_per_s_end_to_end"]
        out["ours_joins_per_s_from_actors_ready"] = ours["ingest"]["joins_per_s_from_actors_ready"]
        out["ours_joins_per_s_steady"] = ours["ingest"]["joins_per_s_steady_5_to_95pct"]
        out["ours_all_placed"] = ours["ingest"]["all_placed"]
        out["ours_bytes_per_waiting_user"] = ours["memory"]["bytes_per_waiting_user"]
        out["ours_GiB_per_million_waiting"] = round(
            ours["memory"]["bytes_per_waiting_user"] * 1e6 / 2**30, 3)
        if "admission" in ours:
            out["ours_admissions_per_s"] = ours["admission"]["admissions_per_s"]
            out["ours_admissions_per_s_first_10s"] = ours["admission"]["admissions_per_s_first_10s"]
    for key in ("counter_queue", "raw_ceiling"):
        if key in res:
            out[f"{key}_joins_per_s"] = res[key]["ingest"]["joins_per_s"]
            out[f"{key}_admissions_per_s"] = res[key]["admission"]["admissions_per_s"]
            out[f"{key}_bytes_per_waiting_user"] = res[key]["memory"]["bytes_per_waiting_user"]
            if ours:
                out[f"ratio_ours_over_{key}_joins"] = round(
                    ours["ingest"]["joins_per_s_from_actors_ready"]
                    / res[key]["ingest"]["joins_per_s"], 3)
    if "enqueue_lua_alone" in res:
        out["enqueue_lua_alone_joins_per_s"] = res["enqueue_lua_alone"]["joins_per_s"]
        out["enqueue_lua_bytes_per_waiting_user"] = res["enqueue_lua_alone"]["memory"][
            "bytes_per_waiting_user"]
    if "consumer_alone" in res:
        out["consumer_records_per_s"] = {k: v["records_per_s"]
                                         for k, v in res["consumer_alone"].items()}
    if "producers" in res:
        out["producer_records_per_s"] = {k: v["records_per_s"] for k, v in res["producers"].items()}
    if "idle_event" in res:
        cores = res["idle_event"]["cpu_cores_by_process"]
        out["idle_event_cores"] = {k: cores.get(k, 0.0) for k in ("waiting_room_actor",
                                                                 "ingest_actor")}
    for v in res.get("variants", []):
        if "ingest" in v:
            out[f"variant[{v['label']}]_joins_per_s"] = v["ingest"][
                "joins_per_s_from_actors_ready"]
    out["targets"] = {"kafka_to_queue_joins_per_s": 50_000, "bytes_per_waiting_user": 150}
    return out


if __name__ == "__main__":
    sys.exit(main())
