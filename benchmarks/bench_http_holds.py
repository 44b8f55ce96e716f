"""POST /v1/events/{id}/holds through the project's Serve ingress vs plain uvicorn + Starlette.

Side by side in one run, on the same Redis, with the same load generator (wrk, 1 thread):
  * serve   — the project's app (`serve_app.deploy`): HAProxy -> Serve replica -> a batcher
              per seat block -> seat-block actor -> one hold_batch function call per batch;
              127.0.0.1:8200.
  * uvicorn — benchmarks/_uvicorn_holds_app.py, 1 worker in a subprocess on 127.0.0.1:8201:
              the same token check, body parser, BlockInventory planning and hold_batch,
              one Lua call per request, no actor.
Each request holds one seat (`{"section":"A","quantity":1}`) with one of many pre-minted
admission tokens (round-robin, distinct users). Phases: saturation (closed loop, -c64), then a
paced run of each at about half of the Serve saturation throughput (wrk `delay()` per
connection: closed loop with think time, so no coordinated-omission correction). Afterwards every
event's holds are read back from Redis (and the Serve events from GET /v1/events/{id}/seats) to
check that no seat was held twice and that the 201 count matches the held seats.

    python -m benchmarks.bench_http_holds [--duration 15] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks._common import (
    HTTP_PORT,
    STATE,
    Bench,
    admission_token,
    machine_info,
    niceness_by_process,
    run_wrk,
    write_result,
)

UVICORN_PORT = 8201
NAME = "bench_http_holds"
HOLD_BODY = '{"section":"A","quantity":1}'

WRK_LUA = r"""
local tokens = {%(tokens)s}
local ntokens = #tokens
local path = "%(path)s"
local body = '%(body)s'
local delay_ms = %(delay_ms)s
local i = 0
c201, c409, cother, last_other, last_other_body = 0, 0, 0, 0, ""
request = function()
  i = i + 1
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. tokens[(i %% ntokens) + 1],
                                   ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, resp)
  if status == 201 then c201 = c201 + 1
  elseif status == 409 then c409 = c409 + 1
  else
    cother = cother + 1
    last_other = status
    last_other_body = string.sub(resp or "", 1, 200)
  end
end
if delay_ms > 0 then
  delay = function() return delay_ms end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local a, b, c, lo, lb = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    a = a + t:get("c201"); b = b + t:get("c409"); c = c + t:get("cother")
    if t:get("cother") > 0 then lo = t:get("last_other"); lb = t:get("last_other_body") end
  end
  io.write("BENCHOTHER " .. lo .. " " .. string.gsub(lb, "\n", " ") .. "\n")
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"s201":%%d,"s409":%%d,"other_status":%%d,' ..
    '"err_connect":%%d,"err_read":%%d,"err_write":%%d,"err_timeout":%%d,"err_status":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"p999_us":%%d,"max_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, a, b, c, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def wrk(port: int, event_id: str, tokens: list[str], seconds: float, connections: int,
        delay_ms: float = 0.0, tag: str = "") -> dict[str, Any]:
    lua = WRK_LUA % {
        "tokens": ",".join(f'"{t}"' for t in tokens), "path": f"/v1/events/{event_id}/holds",
        "body": HOLD_BODY, "delay_ms": f"{delay_ms:.3f}"}
    run = run_wrk(Path(STATE) / f"wrk-{tag or event_id}.lua", lua, port, seconds, connections)
    raw, secs = run.raw, run.seconds
    return {"connections": connections, "duration_s": round(secs, 2),
            "delay_ms_per_connection": round(delay_ms, 3), "requests": raw["requests"],
            "req_per_s": round(raw["requests"] / secs, 1),
            "holds_201_per_s": round(raw["s201"] / secs, 1),
            "status_201": raw["s201"], "status_409": raw["s409"],
            "other_status": raw["other_status"], "last_other_status": run.last_other_status,
            "socket_errors": run.socket_errors(),
            "latency_ms": run.latency_ms(("p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                                          "mean_us")),
            "cpu_cores_by_process": run.cpu}


def wait_http(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s}s")


def event_body(name: str, rows: int, seats_per_row: int) -> dict[str, Any]:
    return {"name": name, "max_seats_per_user": 50, "sections": [
        {"name": "A", "rows": rows, "seats_per_row": seats_per_row, "price_cents": 5000}]}


def create_serve_event(settings: Any, body: dict[str, Any]) -> str:
    r = httpx.post(f"http://127.0.0.1:{HTTP_PORT}/v1/events", json=body, timeout=120,
                   headers={"Authorization": f"Bearer {settings.admin_token}"})
    r.raise_for_status()
    return str(r.json()["event_id"])


def create_plain_event(settings: Any, body: dict[str, Any]) -> str:
    """An event with no actors, for the uvicorn baseline (the only writer of its blocks)."""
    from domain.event import parse_event
    from domain.ids import new_event_id
    from store import keys

    event = parse_event(body, new_event_id(), time.time(), settings.hold_ttl_s, 50, 200_000, 50)
    r = redis.Redis.from_url(settings.redis_url)
    r.set(keys.event(event.event_id), event.to_json())
    r.zadd(keys.events_index(), {event.event_id: time.time()})
    r.hset(keys.available(event.event_id),
           mapping={str(b.index): b.seats_total for b in event.venue.blocks})
    for b in event.venue.blocks:
        r.set(keys.block_epoch(event.event_id, b.index), 1)
    r.close()
    return event.event_id


def audit(settings: Any, event_id: str, expected_201: int, in_flight_max: int,
          via_http: bool) -> dict[str, Any]:
    """No seat held twice: every hold record's seats are distinct and match the bitmap; the
    records number the 201s wrk saw plus at most the requests in flight when wrk stopped."""
    from domain.event import Event
    from store import keys
    from store.codec import text

    r = redis.Redis.from_url(settings.redis_url)
    event = Event.from_json(text(r.get(keys.event(event_id))))
    seats: list[tuple[int, int]] = []
    records = 0
    held_bits = 0
    for b in event.venue.blocks:
        held_bits += r.bitcount(keys.block_held(event_id, b.index))
        for record in r.hvals(keys.block_holds(event_id, b.index)):
            _status, _, body = text(record).partition("|")
            records += 1
            seats.extend((b.index, s) for s in json.loads(body)[1])
    r.close()
    out: dict[str, Any] = {
        "event_id": event_id, "status_201_total": expected_201, "hold_records": records,
        "seats_in_records": len(seats), "distinct_seats_in_records": len(set(seats)),
        "held_bits": held_bits}
    if via_http:
        t0 = time.monotonic()
        resp = httpx.get(f"http://127.0.0.1:{HTTP_PORT}/v1/events/{event_id}/seats", timeout=120)
        out["seats_endpoint_s"] = round(time.monotonic() - t0, 2)
        out["seats_endpoint_bytes"] = len(resp.content)
        out["seats_endpoint_held"] = sum(1 for s in resp.json()["seats"] if s["status"] == "held")
    out["no_seat_held_twice"] = (len(seats) == len(set(seats)) == held_bits == records
                                 and out.get("seats_endpoint_held", held_bits) == held_bits)
    out["records_minus_201s"] = records - expected_201
    out["records_match_201s_within_in_flight"] = 0 <= records - expected_201 <= in_flight_max
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--users", type=int, default=4000, help="distinct tokens per event")
    ap.add_argument("--paced-fraction", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=2, help="alternating saturation rounds")
    ap.add_argument("--uvicorn-nice", type=int, default=-1,
                    help="nice value of the uvicorn process (-1: that of the Serve replica)")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine_info(), "parameters": {
        **vars(args), "load_generator": "wrk 4.1.0 -t1 (Debian), Lua script, round-robin tokens",
        "request": f"POST /v1/events/{{id}}/holds {HOLD_BODY}",
        "serve": "HAProxy ingress, throughput-optimized, 1 replica, hold_batch_max 64 / 2 ms",
        "uvicorn": "1 worker, uvloop + httptools, same Redis, same hold_batch function per request"}}
    with Bench(NAME, ray=True, serve=True, block_max_seats=100_000) as bench:
        s = bench.settings
        wait_http(f"http://127.0.0.1:{HTTP_PORT}/healthz", 120)
        env = dict(os.environ, BENCH_REDIS_URL=s.redis_url, BENCH_TOKEN_SECRET=s.token_secret)
        # Ray runs its workers (the Serve replica, the actors) at nice 15; on a shared machine
        # that alone costs them CPU, so the baseline runs at the same nice value by default
        nice = args.uvicorn_nice if args.uvicorn_nice >= 0 else niceness_by_process().get(
            "serve_replica", 0)
        result["parameters"]["uvicorn_nice"] = nice
        bench.spawn(["nice", "-n", str(nice), sys.executable, "-m", "uvicorn",
                     "benchmarks._uvicorn_holds_app:app",
                     "--host", "127.0.0.1", "--port", str(UVICORN_PORT), "--workers", "1",
                     "--no-access-log", "--log-level", "warning"], env,
                    f"{STATE}/uvicorn-{UVICORN_PORT}.log")
        wait_http(f"http://127.0.0.1:{UVICORN_PORT}/healthz", 60)
        events = {
            "serve_sat": create_serve_event(s, event_body("serve-sat", 1000, 100)),
            "serve_paced": create_serve_event(s, event_body("serve-paced", 500, 100)),
            "uvicorn_sat": create_plain_event(s, event_body("uv-sat", 1000, 100)),
            "uvicorn_paced": create_plain_event(s, event_body("uv-paced", 500, 100)),
        }
        toks = {k: [admission_token(s, f"u{i}", ev) for i in range(args.users)]
                for k, ev in events.items()}
        ports = {"serve": HTTP_PORT, "uvicorn": UVICORN_PORT}
        runs: dict[str, Any] = {}
        count201: dict[str, int] = dict.fromkeys(events, 0)
        for app in ("serve", "uvicorn"):
            key = f"{app}_sat"
            warm = wrk(ports[app], events[key], toks[key], args.warmup, args.connections,
                       tag=f"{key}-warm")
            count201[key] += warm["status_201"]
        # alternate the two apps, round after round: the machine's other load drifts
        for rnd in range(args.rounds):
            for app in ("serve", "uvicorn"):
                key = f"{app}_sat"
                run = wrk(ports[app], events[key], toks[key], args.duration, args.connections,
                          tag=key)
                runs[f"{app}_saturation_round{rnd + 1}"] = run
                count201[key] += run["status_201"]
                print(app, "saturation", rnd + 1, json.dumps(run), flush=True)
        for app in ("serve", "uvicorn"):
            rs = [runs[f"{app}_saturation_round{r + 1}"] for r in range(args.rounds)]
            runs[f"{app}_saturation"] = {
                "req_per_s": round(statistics.median(r["req_per_s"] for r in rs), 1),
                "latency_ms": {q: round(statistics.median(r["latency_ms"][q] for r in rs), 2)
                               for q in ("p50", "p99")},
                "aggregate": "median over rounds"}
        ratios = [runs[f"serve_saturation_round{r + 1}"]["req_per_s"]
                  / runs[f"uvicorn_saturation_round{r + 1}"]["req_per_s"]
                  for r in range(args.rounds)]
        target = args.paced_fraction * runs["serve_saturation"]["req_per_s"]
        for app in ("serve", "uvicorn"):
            key = f"{app}_paced"
            # one short calibration run (also the warm-up): per-connection cycle = delay +
            # latency, so correct the delay by the latency seen at about the target rate
            delay = max(0.0, args.connections * 1000 / target - 2.0)
            cal = wrk(ports[app], events[key], toks[key], max(3.0, args.warmup),
                      args.connections, delay_ms=delay, tag=f"{key}-cal")
            count201[key] += cal["status_201"]
            latency = args.connections * 1000 / max(cal["req_per_s"], 1.0) - delay
            delay = max(0.0, args.connections * 1000 / target - latency)
            runs[key] = wrk(ports[app], events[key], toks[key], args.duration, args.connections,
                            delay_ms=delay, tag=key)
            runs[key]["target_req_per_s"] = round(target, 1)
            count201[key] += runs[key]["status_201"]
            print(app, "paced", json.dumps(runs[key]), flush=True)
        runs_per_event = {k: 1 + args.rounds if k.endswith("sat") else 2 for k in events}
        result["niceness_by_process"] = niceness_by_process()
        audits = {k: audit(s, ev, count201[k], args.connections * runs_per_event[k],
                           via_http=k.startswith("serve"))
                  for k, ev in events.items()}
    sat_s, sat_u = runs["serve_saturation"], runs["uvicorn_saturation"]
    result["runs"] = runs
    result["audit"] = audits
    result["summary"] = {
        "serve_req_per_s": sat_s["req_per_s"], "uvicorn_req_per_s": sat_u["req_per_s"],
        "ratio_serve_over_uvicorn": round(statistics.median(ratios), 3),
        "ratio_per_round": [round(r, 3) for r in ratios],
        "ratio_target": 0.25,
        "serve_p50_ms_saturated": sat_s["latency_ms"]["p50"],
        "serve_p99_ms_saturated": sat_s["latency_ms"]["p99"],
        "uvicorn_p50_ms_saturated": sat_u["latency_ms"]["p50"],
        "uvicorn_p99_ms_saturated": sat_u["latency_ms"]["p99"],
        "serve_paced_req_per_s": runs["serve_paced"]["req_per_s"],
        "serve_paced_fraction_of_max": round(runs["serve_paced"]["req_per_s"]
                                             / sat_s["req_per_s"], 3),
        "serve_p99_ms_paced": runs["serve_paced"]["latency_ms"]["p99"],
        "uvicorn_p99_ms_paced": runs["uvicorn_paced"]["latency_ms"]["p99"],
        "p99_target_ms": 50,
        "no_seat_held_twice": all(a["no_seat_held_twice"] for a in audits.values()),
        "hold_records_match_201s": all(a["records_match_201s_within_in_flight"]
                                       for a in audits.values()),
    }
    path = write_result(NAME, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
