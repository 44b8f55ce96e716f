"""Baselines measured in the same run, after the on-sale, on the same Redis and Kafka.

* naive: the seed document's design facing the same crowd: no waiting room, a per-seat Redis
  lock `SET ticket:<seat>:lock <user> NX EX <hold ttl>`; a person picks random seats from the
  map it saw (the seats not sold a second before), locks them, pays (the same think time as ours), then
  `GET lock == user` (checked before paying, as the seed did), `SET sold`, `DEL lock`. Nothing
  checks `sold` and a lock can lapse while its holder pays: those are the double sales.
  Users come in arrival order as fast as Redis takes them (without a waiting room everyone
  hits at once), `concurrency` at a time; a refused user tries again up to twice, then leaves.
* raw ceilings of this machine for the same operations: Redis `SET NX EX` per seat
  (pipelined, the lock a hold is), Kafka produce of the join records (confluent-kafka,
  acks=all, idempotent) and consume of them, and acknowledged single ledger-sized produces
  (what each checkout waits for).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import numpy as np

from benchmarks.onsale.crowd import Behaviour

NAIVE_ATTEMPTS = 3


async def naive(redis_url: str, seat_ids: list[str], users: int, behaviour: Behaviour, seed: int,
                lock_ttl_s: int, concurrency: int, timeout_s: float,
                pay_scale: float = 1.0) -> dict[str, Any]:
    from redis.asyncio import BlockingConnectionPool, Redis

    # the payers waiting to confirm share the pool with the arriving users: wait for a connection
    r = Redis(connection_pool=BlockingConnectionPool.from_url(
        redis_url, max_connections=2 * concurrency, timeout=60))
    run = f"naive:{time.time_ns()}"
    rng = random.Random(seed)
    sales: list[tuple[str, str, float]] = []
    outcomes: Counter[str] = Counter()
    commands = 0
    next_user = 0
    t0 = time.perf_counter()
    deadline = t0 + timeout_s
    sold_out_at: float | None = None
    sold_seats: set[str] = set()
    pending: set[asyncio.Task[None]] = set()
    n_seats = len(seat_ids)

    async def pay_and_sell(user: str, seats: list[str], pay_s: float, abandons: bool) -> None:
        nonlocal commands, sold_out_at
        if abandons:
            outcomes["abandoned_lock"] += 1
            return  # the locks lapse after lock_ttl_s
        pipe = r.pipeline(transaction=False)
        for s in seats:
            pipe.get(f"{run}:{s}:lock")
        owners = await pipe.execute()
        commands += len(seats)
        if any(o != user.encode() for o in owners):
            outcomes["lock_lost_before_paying"] += 1
            return
        await asyncio.sleep(pay_s)
        pipe = r.pipeline(transaction=False)
        for s in seats:
            pipe.set(f"{run}:{s}:sold", user)
            pipe.delete(f"{run}:{s}:lock")
        await pipe.execute()
        commands += 2 * len(seats)
        now = time.perf_counter() - t0
        for s in seats:
            sales.append((s, user, now))
            sold_seats.add(s)
        outcomes["bought"] += 1
        if sold_out_at is None and len(sold_seats) >= n_seats:
            sold_out_at = now

    async def person(i: int) -> None:
        nonlocal commands
        user = f"n{i}"
        p = behaviour.person(seed, i, user)
        for _ in range(NAIVE_ATTEMPTS):
            shown = view[0] or seat_ids
            seats = rng.sample(shown, min(p.quantity, len(shown)))
            pipe = r.pipeline(transaction=False)
            for s in seats:
                pipe.set(f"{run}:{s}:lock", user, nx=True, ex=lock_ttl_s)
            got = await pipe.execute()
            commands += len(seats)
            if all(got):
                task = asyncio.ensure_future(pay_and_sell(
                    user, seats, p.think_pay_s * pay_scale, p.abandons))
                pending.add(task)
                task.add_done_callback(pending.discard)
                return
            pipe = r.pipeline(transaction=False)
            for s, ok in zip(seats, got, strict=True):
                if ok:
                    pipe.delete(f"{run}:{s}:lock")
            await pipe.execute()
            commands += sum(1 for ok in got if ok)
        outcomes["refused_and_left"] += 1

    view: list[list[str]] = [list(seat_ids)]

    async def refresh_view() -> None:
        """The seat map a person sees: the seats not sold a second ago."""
        while len(sold_seats) < n_seats:
            await asyncio.sleep(1.0)
            view[0] = [s for s in seat_ids if s not in sold_seats]

    async def worker() -> None:
        nonlocal next_user
        while (next_user < users and time.perf_counter() < deadline
               and len(sold_seats) < n_seats):
            i = next_user
            next_user += 1
            await person(i)

    viewer = asyncio.ensure_future(refresh_view())
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    arrived_s = time.perf_counter() - t0
    if pending:
        await asyncio.wait(list(pending), timeout=max(1.0, deadline - time.perf_counter()))
    elapsed = time.perf_counter() - t0
    viewer.cancel()
    per_seat = Counter(s for s, _, _ in sales)
    await r.aclose()
    return {"users": next_user, "users_all_arrived_s": round(arrived_s, 2),
            "elapsed_s": round(elapsed, 2), "seats": n_seats, "concurrency": concurrency,
            "lock_ttl_s": lock_ttl_s, "sold_distinct": len(per_seat), "sales": len(sales),
            "oversold": sum(c - 1 for c in per_seat.values() if c > 1),
            "seats_sold_twice": sum(1 for c in per_seat.values() if c > 1),
            "unsold_at_end": n_seats - len(per_seat),
            "sellout_s": round(sold_out_at, 2) if sold_out_at is not None else None,
            "redis_commands": commands,
            "redis_commands_per_s": round(commands / max(elapsed, 1e-9)),
            "outcomes": dict(outcomes),
            "note": "no waiting room, nobody is told anything: refused users leave after "
                    f"{NAIVE_ATTEMPTS} tries; stops once every seat is sold (or at the "
                    "timeout): `users` is how many of the crowd had come by then"}


async def redis_set_nx_ceiling(redis_url: str, n: int, pipeline: int = 1000,
                               inflight: int = 2) -> dict[str, Any]:
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    run = f"ceil:{time.time_ns()}"
    nxt = 0

    async def worker() -> None:
        nonlocal nxt
        while nxt < n:
            first, nxt = nxt, min(n, nxt + pipeline)
            pipe = r.pipeline(transaction=False)
            for i in range(first, nxt):
                pipe.set(f"{run}:{i}", "u", nx=True, ex=60)
            await pipe.execute()

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(inflight)])
    elapsed = time.perf_counter() - t0
    await r.aclose()
    return {"ops": n, "elapsed_s": round(elapsed, 3), "set_nx_per_s": round(n / elapsed),
            "pipeline": pipeline, "inflight": inflight}


def kafka_ceilings(bootstrap: str, topic_prefix: str, n: int, acked: int) -> dict[str, Any]:
    """confluent-kafka produce of n join-sized records (acks=all, idempotent), consume them
    back, and `acked` single produces each waited for (the ledger's pattern)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from store.kafka_io import ensure_topic

    topic = f"{topic_prefix}.ceiling.{time.time_ns()}"
    ensure_topic(bootstrap, topic, 4)
    value = json.dumps({"t": "tq0123456789abcdef", "e": "ev0123456789ab", "u": "b123456",
                        "at": 1_800_000_000_000, "unc": 3, "sync": True, "code": None},
                       separators=(",", ":")).encode()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 1_000_000})
    t0 = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, value, str(i).encode())
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    produce_s = time.perf_counter() - t0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ceil-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(4)])
    got = 0
    t0 = time.perf_counter()
    while got < n and time.perf_counter() - t0 < 120:
        got += sum(1 for m in consumer.consume(5000, 0.5) if m.error() is None)
    consume_s = time.perf_counter() - t0
    consumer.close()
    booking = json.dumps({"booking_id": "bk.x", "seat_ids": ["A-1-1", "A-1-2"],
                          "total_cents": 10000, "user_id": "b1"}).encode()
    lat = []
    t0 = time.perf_counter()
    for i in range(acked):
        t1 = time.perf_counter()
        producer.produce(topic, booking, str(i).encode())
        producer.flush(30)
        lat.append(time.perf_counter() - t1)
    acked_s = time.perf_counter() - t0
    return {"records": n, "produce_per_s": round(n / produce_s), "consumed": got,
            "consume_per_s": round(got / max(consume_s, 1e-9)),
            "acked_single_produces": acked, "acked_produce_per_s": round(acked / acked_s),
            "acked_produce_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2) if lat else 0,
            "client": "confluent-kafka, acks=all, idempotent"}
