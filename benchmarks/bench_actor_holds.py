"""One seat-block actor's hold throughput by batch size, vs the seed design's naive Redis locks.

Phases (all against the same Redis, in one run):
  1. holds, ours   — `seat_block.hold.remote([...])` with batches of 64/256/1024 holds of one seat
                     (explicit seat ids, and best-available `quantity=1`), `--inflight` calls
                     outstanding; one hold_batch function call per batch. One fresh block
                     (20,000 seats) per configuration.
  2. holds, naive  — `SET ticket:<seat>:lock <user> NX EX 600` per seat from an asyncio client:
                     unpipelined (64 concurrent coroutines) and pipelined (64/256/1024 per
                     pipeline, the same in-flight count as ours).
  3. checkout, uncontended — ours: as a Serve replica sends them, gathered per block by size or
                     time into one `seat_block.checkouts.remote([...])` call, which the block
                     pays (payment record, card claim per checkout), writes to the Kafka ledger
                     in one acks=all produce and confirms in one fenced Lua call per batch;
                     naive: GET lock == user, SET sold, DEL lock per checkout. Same number of
                     holds, same concurrency.
  4. checkout race — S seats, U users per seat racing (hold, then pay, then confirm), holds that
                     live 1 s and a payment step of 1.2 s (longer than the hold), until a deadline.
                     Ours: the actor with hold_ttl_s=1 and its `after_ledger` delay hook;
                     naive: SET NX PX 1000, GET lock == user, (payment), SET sold, DEL lock.
                     Double sales are counted from the Kafka ledger (ours) and from the buyers'
                     successes per seat (both).

    python -m benchmarks.bench_actor_holds [--seats 20000] [--cap-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from benchmarks._common import (
    Bench,
    cpu_delta,
    cpu_snapshot,
    create_event,
    kill_event_actors,
    lat_summary_ms,
    machine_info,
    write_result,
)

NAME = "bench_actor_holds"
SEATS_PER_ROW = 100


def seat_of(section: str, i: int) -> str:
    return f"{section}-{i // SEATS_PER_ROW + 1}-{i % SEATS_PER_ROW + 1}"


# -------------------------------------------------------------------------------------------
# phase 1: ours


async def ours_holds(handle: Any, event_id: str, section: str, batch: int, inflight: int,
                     mode: str, seats: int, cap_s: float, user_prefix: str) -> dict[str, Any]:
    from domain.holds import Hold
    from domain.ids import HoldRef
    from domain.inventory import HoldRequest

    next_i = 0
    latencies: list[float] = []
    ok: list[Hold] = []
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + cap_s

    def make_batch() -> list[Any]:
        nonlocal next_i
        items = []
        for _ in range(min(batch, seats - next_i)):
            i = next_i
            next_i += 1
            user = f"{user_prefix}{i % 1000}"
            request = (HoldRequest(user, (seat_of(section, i),), 0) if mode == "explicit"
                       else HoldRequest(user, (), 1))
            items.append((HoldRef(event_id, 0, secrets.token_hex(8)).hold_id, request))
        return items

    async def worker() -> None:
        while next_i < seats and time.monotonic() < deadline:
            items = make_batch()
            t0 = time.perf_counter()
            results = await handle.hold.remote(items)
            latencies.append(time.perf_counter() - t0)
            for r in results:
                if isinstance(r, Hold):
                    ok.append(r)
                else:
                    errors[type(r).__name__] += 1

    before, t0 = cpu_snapshot(), time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(inflight)])
    elapsed = time.perf_counter() - t0
    seats_held = sum(len(h.seat_ids) for h in ok)
    return {"mode": mode, "batch": batch, "inflight_calls": inflight, "seats_held": seats_held,
            "errors": dict(errors), "elapsed_s": round(elapsed, 3),
            "seat_holds_per_s": round(seats_held / elapsed, 1), "calls": len(latencies),
            "call_latency": lat_summary_ms(latencies),
            "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed), "_holds": ok}


# -------------------------------------------------------------------------------------------
# phase 2: naive


async def naive_holds(redis: Any, run: str, seats: int, pipeline: int, inflight: int,
                      cap_s: float) -> dict[str, Any]:
    """pipeline=0: one awaited SET per seat from `inflight` coroutines; else pipelines."""
    next_i = 0
    latencies: list[float] = []
    held = 0
    refused = 0
    deadline = time.monotonic() + cap_s

    async def single() -> None:
        nonlocal next_i, held, refused
        while next_i < seats and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            got = await redis.set(f"ticket:{run}-{i}:lock", f"u{i % 1000}", nx=True, ex=600)
            latencies.append(time.perf_counter() - t0)
            held, refused = held + bool(got), refused + (not got)

    async def piped() -> None:
        nonlocal next_i, held, refused
        while next_i < seats and time.monotonic() < deadline:
            n = min(pipeline, seats - next_i)
            first, next_i = next_i, next_i + n
            pipe = redis.pipeline(transaction=False)
            for i in range(first, first + n):
                pipe.set(f"ticket:{run}-{i}:lock", f"u{i % 1000}", nx=True, ex=600)
            t0 = time.perf_counter()
            replies = await pipe.execute()
            latencies.append(time.perf_counter() - t0)
            got = sum(1 for r in replies if r)
            held, refused = held + got, refused + n - got

    before, t0 = cpu_snapshot(), time.perf_counter()
    await asyncio.gather(*[(piped() if pipeline else single()) for _ in range(inflight)])
    elapsed = time.perf_counter() - t0
    return {"mode": "pipelined" if pipeline else "unpipelined", "batch": pipeline or 1,
            "concurrency": inflight, "seats_held": held, "refused": refused,
            "elapsed_s": round(elapsed, 3), "seat_holds_per_s": round(held / elapsed, 1),
            "round_trips": len(latencies),
            ("pipeline_latency" if pipeline else "set_latency"): lat_summary_ms(latencies),
            "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}


# -------------------------------------------------------------------------------------------
# phase 3: uncontended checkout


async def ours_checkout(handle: Any, holds: list[Any], concurrency: int,
                        settings: Any) -> dict[str, Any]:
    """As a Serve replica sends them (`replica.client.BookingClient.checkout`): the checkouts
    in flight are gathered by size or time (CHECKOUT_BATCH_MAX / _WAIT_MS) and sent as one
    `checkouts` call to the block, which pays them and writes them to the ledger as one batch."""
    from actors.batching import Batcher

    async def send(items: list[tuple[str, str, str, str]]) -> list[Any]:
        return list(await handle.checkouts.remote(items))

    batcher: Batcher[tuple[str, str, str, str], Any] = Batcher(
        send, settings.checkout_batch_max, settings.checkout_batch_wait_ms / 1000)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    queue = list(holds)

    async def worker() -> None:
        while queue:
            hold = queue.pop()
            t0 = time.perf_counter()
            try:
                await batcher.submit((hold.hold_id, hold.user_id, "k-" + hold.hold_id[-16:],
                                      "tok_visa_" + hold.hold_id[-16:]))  # a card each
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:
                errors[type(exc).__name__] += 1

    before, t0 = cpu_snapshot(), time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    batches = await handle.checkout_batches.remote()
    return {"checkouts": len(latencies), "errors": dict(errors), "concurrency": concurrency,
            "elapsed_s": round(elapsed, 3), "checkouts_per_s": round(len(latencies) / elapsed, 1),
            "latency": lat_summary_ms(latencies),
            "ledger_batches": len(batches),
            "mean_batch": round(sum(batches) / len(batches), 1) if batches else 0,
            "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}


async def naive_checkout(redis: Any, run: str, n: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    failed = 0
    queue = list(range(n))

    async def worker() -> None:
        nonlocal failed
        while queue:
            i = queue.pop()
            user = f"u{i % 1000}"
            t0 = time.perf_counter()
            if (await redis.get(f"ticket:{run}-{i}:lock")) == user.encode():
                await redis.set(f"ticket:{run}-{i}:sold", user)
                await redis.delete(f"ticket:{run}-{i}:lock")
                latencies.append(time.perf_counter() - t0)
            else:
                failed += 1

    before, t0 = cpu_snapshot(), time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    return {"checkouts": len(latencies), "failed": failed, "concurrency": concurrency,
            "elapsed_s": round(elapsed, 3), "checkouts_per_s": round(len(latencies) / elapsed, 1),
            "latency": lat_summary_ms(latencies),
            "cpu_cores_by_process": cpu_delta(before, cpu_snapshot(), elapsed)}


# -------------------------------------------------------------------------------------------
# phase 4: the race


def _double_sales(sales: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    """sales: (seat, user, locked_at, sold_at). A seat with >1 sale is a double sale; a later
    sale whose lock was taken before the previous sale finished overlapped it (TTL race), else
    it came after it (nothing checked 'sold')."""
    by_seat: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for sale in sales:
        by_seat[sale[0]].append(sale)
    overlapping = sequential = 0
    for seat_sales in by_seat.values():
        seat_sales.sort(key=lambda s: s[3])
        for prev, cur in itertools.pairwise(seat_sales):
            if cur[2] < prev[3]:
                overlapping += 1
            else:
                sequential += 1
    return {"sales": len(sales), "seats_sold": len(by_seat),
            "seats_sold_more_than_once": sum(1 for v in by_seat.values() if len(v) > 1),
            "extra_sales": len(sales) - len(by_seat),
            "extra_sales_overlapping_an_earlier_sale": overlapping,
            "extra_sales_after_an_earlier_sale": sequential}


async def ours_race(settings: Any, handle: Any, event: Any, users_per_seat: int,
                    deadline_s: float, pay_s: float) -> dict[str, Any]:
    from domain.holds import Hold
    from domain.ids import HoldRef
    from domain.inventory import HoldRequest
    from store.ledger import read_bookings

    await handle.set_delay.remote("after_ledger", pay_s)
    seats = list(event.venue.blocks[0].seat_ids())
    sales: list[tuple[str, str, float, float]] = []
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + deadline_s

    async def user(n: int) -> None:
        seat, name = seats[n % len(seats)], f"r{n}"
        await asyncio.sleep(random.uniform(0, 0.3))
        while time.monotonic() < deadline:
            hold_id = HoldRef(event.event_id, 0, secrets.token_hex(8)).hold_id
            result = (await handle.hold.remote([(hold_id, HoldRequest(name, (seat,), 0))]))[0]
            if isinstance(result, Hold):
                locked = time.monotonic()
                outcomes["hold_ok"] += 1
                try:
                    await handle.checkout.remote(hold_id, name, "k" + hold_id[-16:],
                                                 "tok_visa_" + hold_id[-16:])  # a card each
                    sales.append((seat, name, locked, time.monotonic()))
                    outcomes["checkout_ok"] += 1
                    return
                except Exception as exc:
                    outcomes["checkout_" + type(getattr(exc, "cause", exc)).__name__] += 1
            else:
                outcomes["hold_" + type(result).__name__] += 1
            await asyncio.sleep(random.uniform(0.2, 0.4))

    t0 = time.perf_counter()
    await asyncio.gather(*[user(n) for n in range(len(seats) * users_per_seat)])
    elapsed = time.perf_counter() - t0
    await handle.set_delay.remote("after_ledger", 0)
    ledger = await asyncio.to_thread(read_bookings, settings.kafka_bootstrap,
                                     settings.ledger_topic, event.event_id, 0, 30)
    per_seat = Counter(s for b in ledger for s in b["seat_ids"])
    return {"seats": len(seats), "users": len(seats) * users_per_seat, "hold_ttl_s": 1,
            "payment_s": pay_s, "elapsed_s": round(elapsed, 2), "outcomes": dict(outcomes),
            "client_view": _double_sales(sales), "ledger_bookings": len(ledger),
            "ledger_seats_booked_more_than_once": sum(1 for c in per_seat.values() if c > 1),
            "double_sales": sum(c - 1 for c in per_seat.values() if c > 1)
            + _double_sales(sales)["extra_sales"]}


async def naive_race(redis: Any, n_seats: int, users_per_seat: int, deadline_s: float,
                     pay_s: float) -> dict[str, Any]:
    sales: list[tuple[str, str, float, float]] = []
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + deadline_s

    async def user(n: int) -> None:
        seat, name = f"race-{n % n_seats}", f"r{n}"
        await asyncio.sleep(random.uniform(0, 0.3))
        while time.monotonic() < deadline:
            if await redis.set(f"ticket:{seat}:lock", name, nx=True, px=1000):
                locked = time.monotonic()
                outcomes["hold_ok"] += 1
                if (await redis.get(f"ticket:{seat}:lock")) == name.encode():
                    await asyncio.sleep(pay_s)  # the payment
                    await redis.set(f"ticket:{seat}:sold", name)
                    await redis.delete(f"ticket:{seat}:lock")
                    sales.append((seat, name, locked, time.monotonic()))
                    outcomes["checkout_ok"] += 1
                    return
                outcomes["checkout_lock_lost"] += 1
            else:
                outcomes["hold_taken"] += 1
            await asyncio.sleep(random.uniform(0.2, 0.4))

    t0 = time.perf_counter()
    await asyncio.gather(*[user(n) for n in range(n_seats * users_per_seat)])
    elapsed = time.perf_counter() - t0
    view = _double_sales(sales)
    return {"seats": n_seats, "users": n_seats * users_per_seat, "lock_ttl_s": 1,
            "payment_s": pay_s, "elapsed_s": round(elapsed, 2), "outcomes": dict(outcomes),
            "client_view": view, "double_sales": view["extra_sales"]}


# -------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    import ray
    from redis.asyncio import Redis

    from actors import directory

    redis = Redis.from_url(settings.redis_url, max_connections=2048)
    # Ray starts its workers (the actors) at nice 15; the naive client runs in this process,
    # so it takes the same nice value, or it would win the CPU on a shared machine
    import os

    os.nice(max(0, args.driver_nice - os.nice(0)))
    configs = [("explicit", b, args.inflight) for b in (64, 256, 1024)] + [
        ("best", b, args.inflight) for b in (64, 256, 1024)]
    rows = args.seats // SEATS_PER_ROW
    event = await asyncio.to_thread(create_event, settings, {
        "name": "actor-holds", "max_seats_per_user": 50, "sections": [
            {"name": f"H{k}", "rows": rows, "seats_per_row": SEATS_PER_ROW, "price_cents": 5000}
            for k in range(len(configs))]})
    out: dict[str, Any] = {"ours": [], "naive": []}
    kept: list[Any] = []
    for k, (mode, batch, inflight) in enumerate(configs):
        handle = directory.seat_block(settings, event.event_id, k)
        res = await ours_holds(handle, event.event_id, f"H{k}", batch, inflight, mode,
                               args.seats, args.cap_s, f"c{k}u")
        holds = res.pop("_holds")
        if mode == "explicit" and batch == 256:
            kept = holds
            checkout_handle = handle
        out["ours"].append(res)
        print("ours", json.dumps(res), flush=True)
    for pipeline in (0, 64, 256, 1024):
        res = await naive_holds(redis, f"p{pipeline}", args.seats, pipeline,
                                64 if pipeline == 0 else args.inflight, args.cap_s)
        out["naive"].append(res)
        print("naive", json.dumps(res), flush=True)
    checkout = {
        "ours": await ours_checkout(checkout_handle, kept[:args.checkouts], args.concurrency,
                                    settings),
        "naive": await naive_checkout(redis, "p256", min(args.checkouts, len(kept)),
                                      args.concurrency)}
    print("checkout", json.dumps(checkout), flush=True)
    await asyncio.to_thread(kill_event_actors, settings, event)
    race_event = await asyncio.to_thread(create_event, settings, {
        "name": "race", "max_seats_per_user": 50, "hold_ttl_s": 1, "sections": [
            {"name": "R", "rows": 1, "seats_per_row": args.race_seats, "price_cents": 5000}]})
    race_handle = directory.seat_block(settings, race_event.event_id, 0)
    race = {"ours": await ours_race(settings, race_handle, race_event, args.users_per_seat,
                                    args.race_s, args.pay_s),
            "naive": await naive_race(redis, args.race_seats, args.users_per_seat, args.race_s,
                                      args.pay_s)}
    print("race", json.dumps(race), flush=True)
    await asyncio.to_thread(kill_event_actors, settings, race_event)
    await redis.aclose()
    del ray
    return {"holds": out, "checkout_uncontended": checkout, "checkout_race": race}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seats", type=int, default=20_000, help="seats per hold configuration")
    ap.add_argument("--cap-s", type=float, default=5.0, help="time cap per hold configuration")
    ap.add_argument("--inflight", type=int, default=2, help="actor calls / pipelines in flight")
    ap.add_argument("--checkouts", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32, help="concurrent checkouts")
    ap.add_argument("--race-seats", type=int, default=50)
    ap.add_argument("--users-per-seat", type=int, default=8)
    ap.add_argument("--race-s", type=float, default=8.0)
    ap.add_argument("--pay-s", type=float, default=1.2)
    ap.add_argument("--driver-nice", type=int, default=15,
                    help="nice value of this process (Ray workers run at 15)")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine_info(),
                              "parameters": vars(args)}
    with Bench(NAME, ray=True, serve=False, block_max_seats=20_000) as bench:
        result.update(asyncio.run(run(args, bench.settings)))
    ours = result["holds"]["ours"]
    naive = result["holds"]["naive"]
    best = max(ours, key=lambda r: r["seat_holds_per_s"])
    result["summary"] = {
        "ours_seat_holds_per_s": {f'{r["mode"]}/{r["batch"]}': r["seat_holds_per_s"]
                                  for r in ours},
        "ours_call_p50_p99_ms": {f'{r["mode"]}/{r["batch"]}': [r["call_latency"]["p50_ms"],
                                                               r["call_latency"]["p99_ms"]]
                                 for r in ours},
        "naive_seat_holds_per_s": {f'{r["mode"]}/{r["batch"]}': r["seat_holds_per_s"]
                                   for r in naive},
        "best_ours": f'{best["mode"]}/{best["batch"]}: {best["seat_holds_per_s"]}',
        "target_seat_holds_per_s": 10_000,
        "checkout_per_s": {k: v["checkouts_per_s"]
                           for k, v in result["checkout_uncontended"].items()},
        "checkout_p50_p99_ms": {k: [v["latency"]["p50_ms"], v["latency"]["p99_ms"]]
                                for k, v in result["checkout_uncontended"].items()},
        "race_double_sales": {k: v["double_sales"] for k, v in result["checkout_race"].items()},
    }
    path = write_result(NAME, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
