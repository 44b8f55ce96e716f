"""A catalog of many events on one 2-core machine: what an idle event costs, and event creation.

One run, the project's own stack (Redis, Kafka, Ray with the pool of host actors, Serve):
  1. the empty stack's processes, memory (RSS of every process it started + Redis) and idle
     CPU over `--idle-s` seconds;
  2. `--events` small idle events (100 seats, on sale in 2030) created through
     `POST /v1/events`, timing every create; at each checkpoint (10, 100, 1,000 …) the same
     measurements again, so the cost curve per event is (checkpoint - empty) / events;
  3. `--hot` of them made hot (holds through `POST /v1/events/{id}/holds`), measured once more;
  4. `--stadiums` 60,000-seat events (12 sections x 50 rows x 100 seats) created on the same
     stack, each timed from the request to its first hold and its first seat map.

Targets (issue 9): ≤ 2 MB of memory and ≤ 0.0005 core of idle CPU per idle event, and the
1,000th event created in ≤ 0.5 s (p99 of the creates around it); (issue 14) a 60,000-seat
event created in ≤ 1 s.

    python -m benchmarks.bench_catalog [--events 1000] [--idle-s 20] [--hot 5] [--stadiums 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks._common import (
    Bench,
    Ports,
    admission_token,
    cpu_delta,
    cpu_snapshot,
    descendants,
    lat_summary_ms,
    machine_info,
    write_result,
)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_by_category() -> dict[str, float]:
    """MiB resident per kind of process we started (host actors, replicas, Ray, Redis, Kafka)."""
    from benchmarks._common import _CATEGORIES

    out: dict[str, float] = {}
    for pid, cmd in descendants(os.getpid()).items():
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        name = next((cat for marker, cat in _CATEGORIES if marker in cmd), "other")
        out[name] = out.get(name, 0.0) + rss / 2**20
    return {k: round(v, 1) for k, v in sorted(out.items())}


def measure(r: redis.Redis, idle_s: float) -> dict[str, Any]:
    time.sleep(3)  # past the creates' own work (and any passivation)
    before, t0 = cpu_snapshot(), time.perf_counter()
    time.sleep(idle_s)
    cores = cpu_delta(before, cpu_snapshot(), time.perf_counter() - t0)
    rss = rss_by_category()
    return {"processes": len(descendants(os.getpid())), "rss_mib": rss,
            "rss_mib_total": round(sum(rss.values()), 1),
            "redis_used_mib": round(int(r.info("memory")["used_memory"]) / 2**20, 2),
            "idle_cpu_cores": cores, "idle_cpu_cores_total": round(sum(cores.values()), 4),
            "loadavg": list(os.getloadavg())}


def per_event(point: dict[str, Any], empty: dict[str, Any], events: int) -> dict[str, float]:
    memory = point["rss_mib_total"] - empty["rss_mib_total"] + (
        point["redis_used_mib"] - empty["redis_used_mib"])
    cpu = point["idle_cpu_cores_total"] - empty["idle_cpu_cores_total"]
    return {"memory_mib_per_event": round(memory / events, 4),
            "idle_cpu_cores_per_event": round(cpu / events, 6),
            "processes_per_event": round((point["processes"] - empty["processes"]) / events, 4)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--hot", type=int, default=5)
    parser.add_argument("--stadiums", type=int, default=5)
    parser.add_argument("--out", default="bench_catalog", help="results file name, no .json")
    args = parser.parse_args()
    checkpoints = [n for n in (10, 100, 1000, 10_000) if n <= args.events] or [args.events]
    result: dict[str, Any] = {"machine": machine_info(), "args": vars(args)}
    # ports of its own, so it can run beside the other benchmarks
    ports = Ports(redis=6430, kafka=39192, kafka_controller=39193, http=8230,
                  haproxy_stats=8434, haproxy_metrics=9134, fallback_http=8530,
                  fallback_grpc=9530, state="/tmp/ticketing-bench-catalog")
    with Bench("bench_catalog", ray=True, serve=True, ports=ports,
               passivate_after_s=10.0) as bench:
        s = bench.settings
        base = f"http://127.0.0.1:{s.http_port}"
        r = redis.Redis.from_url(s.redis_url)
        admin = {"Authorization": f"Bearer {s.admin_token}"}
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(120):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            empty = measure(r, args.idle_s)
            result["empty"] = empty
            print("empty", empty, flush=True)
            body = {"name": "Idle", "onsale_at": "2030-01-01T20:00:00Z", "sections": [
                {"name": "A", "rows": 5, "seats_per_row": 20, "price_cents": 5000}]}
            created: list[str] = []
            latencies: list[float] = []
            result["checkpoints"] = {}
            for n in range(1, args.events + 1):
                t = time.perf_counter()
                response = http.post("/v1/events", json=body, headers=admin)
                latencies.append(time.perf_counter() - t)
                assert response.status_code == 201, response.text
                created.append(response.json()["event_id"])
                if n in checkpoints:
                    point = measure(r, args.idle_s)
                    window = latencies[max(0, n - 50):n]
                    point["create_latency_last_50_ms"] = lat_summary_ms(window)
                    point["per_idle_event"] = per_event(point, empty, n)
                    result["checkpoints"][str(n)] = point
                    print(n, point, flush=True)
            result["create_latency_all_ms"] = lat_summary_ms(latencies)
            hot = created[:args.hot]
            held = 0
            for event_id in hot:
                token = admission_token(s, f"fan-{event_id}", event_id)
                response = http.post(f"/v1/events/{event_id}/holds", headers={
                    "Authorization": f"Bearer {token}"}, json={"section": "A", "quantity": 2})
                held += response.status_code == 201
            result["hot"] = {"events": len(hot), "holds_ok": held,
                             **measure(r, args.idle_s)}
            print("hot", result["hot"], flush=True)
            result["stadiums"] = stadiums(http, s, admin, args.stadiums)
            print("stadiums", result["stadiums"], flush=True)
    last = result["checkpoints"][str(checkpoints[-1])]
    result["summary"] = {
        "events": args.events, **last["per_idle_event"],
        "create_p99_ms_at_last_checkpoint": last["create_latency_last_50_ms"]["p99_ms"],
        "create_p50_ms_at_last_checkpoint": last["create_latency_last_50_ms"]["p50_ms"],
        "targets": {"memory_mib_per_event": 2.0, "idle_cpu_cores_per_event": 0.0005,
                    "create_p99_ms": 500},
        "create_median_ms_all": round(statistics.median(latencies) * 1000, 2),
        "stadium_create_p99_ms": result["stadiums"]["create_ms"]["p99_ms"],
        "stadium_target_create_ms": 1000}
    print("summary", result["summary"], flush=True)
    print(write_result(args.out, result))
    return 0


STADIUM = {"name": "Stadium", "onsale_at": "2030-01-01T20:00:00Z", "sections": [
    {"name": chr(ord("A") + i), "rows": 50, "seats_per_row": 100, "price_cents": 5000 + 500 * i}
    for i in range(12)]}


def stadiums(http: httpx.Client, s: Any, admin: dict[str, str], count: int) -> dict[str, Any]:
    """Create `count` 60,000-seat events: the create call, then (a fan's first steps) a hold
    of 2 in section A (its block activates) and the compact seat map."""
    creates: list[float] = []
    first_holds: list[float] = []
    first_maps: list[float] = []
    for n in range(count):
        t = time.perf_counter()
        response = http.post("/v1/events", json=STADIUM, headers=admin)
        creates.append(time.perf_counter() - t)
        assert response.status_code == 201, response.text
        event_id = response.json()["event_id"]
        token = admission_token(s, f"fan-{n}", event_id)
        t = time.perf_counter()
        held = http.post(f"/v1/events/{event_id}/holds", headers={
            "Authorization": f"Bearer {token}"}, json={"section": "A", "quantity": 2})
        first_holds.append(time.perf_counter() - t)
        assert held.status_code == 201, held.text
        t = time.perf_counter()
        seat_map = http.get(f"/v1/events/{event_id}/seats", params={"format": "compact"})
        first_maps.append(time.perf_counter() - t)
        assert seat_map.status_code == 200, seat_map.text
    return {"events": count, "seats_each": 60_000, "create_ms": lat_summary_ms(creates),
            "first_hold_ms": lat_summary_ms(first_holds),
            "first_compact_map_ms": lat_summary_ms(first_maps)}


if __name__ == "__main__":
    sys.exit(main())
