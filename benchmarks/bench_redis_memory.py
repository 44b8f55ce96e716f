"""Redis memory per held seat: hold N seats through a seat-block actor in holds of 1, 2, 4 seats.

For each hold size a fresh event (one block of N seats) is created and its actor is ready; then
`INFO memory` is read, every seat is held (batches of 1024 holds, explicit adjacent seats,
distinct users with 48 seats each), and `INFO memory` is read again. The delta of used_memory
(and of used_memory_dataset, which leaves out client buffers) is divided by the seats held.
`MEMORY USAGE <key> SAMPLES 0` of each of the block's keys is recorded too. For comparison the
seed design's naive lock (`SET ticket:<seat>:lock <user> NX EX 600`, one key per seat) is
measured the same way.

    python -m benchmarks.bench_redis_memory [--seats 50000]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from typing import Any

import ray
import redis

from benchmarks._common import Bench, create_event, kill_event_actors, machine_info, write_result
from store.codec import text

NAME = "bench_redis_memory"
SEATS_PER_ROW = 100
SEATS_PER_USER = 48  # under the cap of 50, divisible by 1, 2 and 4


def memory(r: redis.Redis) -> dict[str, int]:
    time.sleep(0.5)  # let client query/output buffers of the last big call shrink
    info = r.info("memory")
    return {k: int(info[k]) for k in ("used_memory", "used_memory_dataset")}


def key_usage(r: redis.Redis, names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        out[name] = {"type": text(r.type(name)), "bytes": r.memory_usage(name, samples=0),
                     "encoding": text(r.object("encoding", name) or b"")
                     if r.exists(name) else None}
    return out


def hold_all(settings: Any, event: Any, quantity: int, batch: int) -> dict[str, Any]:
    from actors import directory
    from domain.holds import Hold
    from domain.ids import HoldRef
    from domain.inventory import HoldRequest

    block = event.venue.blocks[0]
    handle = directory.seat_block(settings, event.event_id, 0)
    seats = list(block.seat_ids())
    requests = []
    for first in range(0, len(seats), quantity):
        user = f"q{quantity}u{first // SEATS_PER_USER}"
        requests.append((HoldRef(event.event_id, 0, secrets.token_hex(8)).hold_id,
                         HoldRequest(user, tuple(seats[first:first + quantity]), 0)))
    held = holds = failed = 0
    t0 = time.perf_counter()
    for i in range(0, len(requests), batch):
        answers: list[Any] = ray.get(handle.hold.remote(requests[i:i + batch]), timeout=120)
        for result in answers:
            if isinstance(result, Hold):
                holds += 1
                held += len(result.seat_ids)
            else:
                failed += 1
    return {"holds": holds, "seats_held": held, "failed": failed,
            "elapsed_s": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    from store import keys

    ap = argparse.ArgumentParser()
    ap.add_argument("--seats", type=int, default=50_000, help="seats held per hold size")
    ap.add_argument("--batch", type=int, default=1024, help="holds per actor call")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine_info(),
                              "parameters": vars(args), "hold_sizes": {}}
    with Bench(NAME, ray=True, serve=False, block_max_seats=args.seats) as bench:
        s = bench.settings
        r = redis.Redis.from_url(s.redis_url)
        for quantity in (1, 2, 4):
            event = create_event(s, {
                "name": f"mem-{quantity}", "max_seats_per_user": 50, "sections": [
                    {"name": f"M{quantity}", "rows": args.seats // SEATS_PER_ROW,
                     "seats_per_row": SEATS_PER_ROW, "price_cents": 5000}]})
            e = event.event_id
            names = [keys.block_held(e, 0), keys.block_holds(e, 0), keys.user_seats(e),
                     keys.block_sold(e, 0), keys.available(e), keys.block_epoch(e, 0)]
            before_keys = key_usage(r, names)
            before = memory(r)
            held = hold_all(s, event, quantity, args.batch)
            after = memory(r)
            after_keys = key_usage(r, names)
            seats = held["seats_held"]
            key_delta = sum((after_keys[n]["bytes"] or 0) - (before_keys[n]["bytes"] or 0)
                            for n in names)
            sample = r.hget(keys.block_holds(e, 0), r.hkeys(keys.block_holds(e, 0))[0])
            result["hold_sizes"][str(quantity)] = {
                **held, "used_memory_delta": after["used_memory"] - before["used_memory"],
                "used_memory_dataset_delta": (after["used_memory_dataset"]
                                              - before["used_memory_dataset"]),
                "bytes_per_seat": round((after["used_memory"] - before["used_memory"])
                                        / seats, 1),
                "dataset_bytes_per_seat": round((after["used_memory_dataset"]
                                                 - before["used_memory_dataset"]) / seats, 1),
                "bytes_per_hold": round((after["used_memory"] - before["used_memory"])
                                        / held["holds"], 1),
                "memory_usage_keys_delta_per_seat": round(key_delta / seats, 1),
                "keys_after": after_keys, "sample_hold_record": text(sample),
                "sample_hold_record_bytes": len(text(sample))}
            print(quantity, json.dumps(result["hold_sizes"][str(quantity)]), flush=True)
            kill_event_actors(s, event)
        # the seed design's naive lock: one key per seat
        before = memory(r)
        pipe = r.pipeline(transaction=False)
        for i in range(args.seats):
            pipe.set(f"ticket:naive-{i}:lock", f"u{i // SEATS_PER_USER}", nx=True, ex=600)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.execute()
        after = memory(r)
        result["naive_set_nx_ex"] = {
            "seats_held": args.seats,
            "used_memory_delta": after["used_memory"] - before["used_memory"],
            "bytes_per_seat": round((after["used_memory"] - before["used_memory"])
                                    / args.seats, 1),
            "dataset_bytes_per_seat": round((after["used_memory_dataset"]
                                             - before["used_memory_dataset"]) / args.seats, 1),
            "memory_usage_one_key": r.memory_usage("ticket:naive-0:lock", samples=0)}
        r.close()
    result["summary"] = {
        "bytes_per_held_seat": {q: v["bytes_per_seat"] for q, v in result["hold_sizes"].items()},
        "dataset_bytes_per_held_seat": {q: v["dataset_bytes_per_seat"]
                                        for q, v in result["hold_sizes"].items()},
        "bytes_per_hold": {q: v["bytes_per_hold"] for q, v in result["hold_sizes"].items()},
        "naive_bytes_per_seat": result["naive_set_nx_ex"]["bytes_per_seat"],
        "target_bytes_per_seat": 200,
    }
    path = write_result(NAME, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
