"""POST /v1/events/{id}/queue (join the waiting room) through Serve's HAProxy ingress, side by side.

One run, its own Redis (6450), Kafka (29592/29593), NTP (chronyd, 11450) and local Ray with the
HAProxy ingress on 127.0.0.1:8505 (fallback proxy 8506/9506, stats 8454, metrics 9154):
  * serve_join    — the project's app (`serve_app.deploy`, --replicas): NTP stamp, ticket and
                    token, batched produce to the event's joins topic, 202 after the broker's ack.
  * serve_trivial — a trivial JSON handler (parse body, answer 202 JSON) deployed as a second
                    Serve application behind the same HAProxy (`/trivial`): the ingress ceiling.
  * serve_trivial_wait — the same handler parked on a future that a shared timer resolves every
                    `join_batch_wait_ms` (`/trivial/wait`): the ceiling of any handler that waits
                    for a batched ack, with none of a join's work.
  * serve_verify_wait — that wait handler after checking the request's user token as the app
                    does (`replica.identity.Identity.user`: an ES256 signature, each join a new
                    user): the ceiling of a handler that must know who joins.
  * uvicorn_join  — benchmarks/_uvicorn_joins_app.py, 1 worker at the replica's nice value: the
                    same `QueueClient.join` with no Ray.
  * uvicorn_trivial — the same trivial handler on that uvicorn.
wrk -t1 -c128 with a Lua script posting as distinct signed-in users (dev user tokens minted
before the run), rate
limits off (`join_rate_per_s` 1e9). Each target first gets --warmup seconds of load (the broker
JIT-compiles its request path in the first minute), then rounds alternate the targets.
Afterwards the joins topic's end offsets are summed: every 202 of a join is a record the broker
acknowledged. With --replicas N > 1 the result is written as bench_http_joins_<N>replicas.json,
with --disconnect-disabled the name ends in _disconnect_disabled. With --profile, py-spy samples
the serving replica through each Serve target's first measured round (benchmarks/_profile.py):
where a join's time goes against the wait-only handler's, as shares and as microseconds of the
replica per request, written as bench_http_joins_profiled.json (sampling slows the replica a
little, so these runs' rates are not the headline).

    python -m benchmarks.bench_http_joins [--duration 10] [--rounds 2] [--connections 128]
                                          [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx

from benchmarks._common import (
    Bench,
    machine_info,
    niceness_by_process,
    run_wrk,
    write_result,
)
from benchmarks._profile import JOIN_PARTS, Sampled, per_request_us, replica_pid, shares
from benchmarks.bench_http_holds import wait_http
from benchmarks.bench_waiting_room import PORTS

NAME = "bench_http_joins"
UVICORN_PORT = 8507
NTP_PORT = 11450

WRK_LUA = r"""
local path = "%(path)s"
local tokens = {}  -- one signed-in user per join: dev user tokens minted before the run
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local i = 0
c202, cother, last_other, last_other_body = 0, 0, 0, ""
request = function()
  i = i + 1
  local token = tokens[(i - 1) %% #tokens + 1]
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. token%(extra_header)s}, '{}')
end
response = function(status, headers, resp)
  if status == 202 then c202 = c202 + 1
  else
    cother = cother + 1
    last_other = status
    last_other_body = string.sub(resp or "", 1, 200)
  end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local a, c, lo, lb = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    a = a + t:get("c202"); c = c + t:get("cother")
    if t:get("cother") > 0 then lo = t:get("last_other"); lb = t:get("last_other_body") end
  end
  io.write("BENCHOTHER " .. lo .. " " .. string.gsub(lb, "\n", " ") .. "\n")
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"s202":%%d,"other_status":%%d,' ..
    '"err_connect":%%d,"err_read":%%d,"err_write":%%d,"err_timeout":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, a, c, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def user_tokens(settings: Any, prefix: str, count: int) -> Path:
    """A file of `count` dev user tokens (users <prefix><n>), one per line, for wrk to send."""
    from replica.identity import Identity

    identity = Identity(settings)
    path = Path(PORTS.state) / f"tokens-{prefix}.txt"
    path.write_text("".join(identity.dev_token(f"{prefix}{n}") + "\n" for n in range(count)))
    return path


def wrk(port: int, path: str, prefix: str, seconds: float, connections: int,
        disconnect_disabled: bool = False, settings: Any = None) -> dict[str, Any]:
    extra = ', ["x-request-disconnect-disabled"] = "?1"' if disconnect_disabled else ""
    tokens = user_tokens(settings, prefix, int(seconds * 4000) + 1000)  # above any rate seen
    lua = WRK_LUA % {"path": path, "tokens": tokens, "extra_header": extra}
    run = run_wrk(Path(PORTS.state) / f"wrk-joins-{prefix}.lua", lua, port, seconds, connections)
    raw, secs = run.raw, run.seconds
    return {"requests": raw["requests"], "duration_s": round(secs, 2),
            "req_per_s": round(raw["requests"] / secs, 1),
            "accepted_202_per_s": round(raw["s202"] / secs, 1), "status_202": raw["s202"],
            "other_status": raw["other_status"], "last_other_status": run.last_other_status,
            "socket_errors": run.socket_errors(),
            "latency_ms": run.latency_ms(("p50_us", "p99_us", "max_us")),
            "cpu_cores_by_process": run.cpu}


def deploy_trivial(wait_ms: float, settings: Any) -> None:
    """A trivial JSON handler as a second Serve application behind the same HAProxy; under
    /trivial/wait/ it first parks on a future that a shared timer resolves every `wait_ms`,
    the wait pattern of a join (a batched ack) without any of its work."""
    from ray import serve
    from ray.serve.schema import LoggingConfig

    def build() -> Any:
        import asyncio

        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from replica.identity import Identity

        identity = Identity(settings)
        parked: list[asyncio.Future[None]] = []

        def release() -> None:
            batch, parked[:] = list(parked), []
            for future in batch:
                if not future.done():
                    future.set_result(None)

        async def trivial(request: Request) -> Response:
            body = json.loads(await request.body())
            return JSONResponse({"ok": True, "user_id": body.get("user_id")}, status_code=202)

        async def trivial_wait(request: Request) -> Response:
            body = json.loads(await request.body())
            loop = asyncio.get_running_loop()
            parked.append(loop.create_future())
            if len(parked) == 1:
                loop.call_later(wait_ms / 1000, release)
            await parked[-1]
            return JSONResponse({"ok": True, "user_id": body.get("user_id")}, status_code=202)

        async def verify_wait(request: Request) -> Response:
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            await identity.user(bearer)
            return await trivial_wait(request)

        return Starlette(routes=[Route("/verify/wait/{rest:path}", verify_wait, methods=["POST"]),
                                 Route("/wait/{rest:path}", trivial_wait, methods=["POST"]),
                                 Route("/{rest:path}", trivial, methods=["POST"])])

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=10_000,
                      logging_config=LoggingConfig(enable_access_log=False))
    @serve.ingress()
    class Trivial:
        def __serve_build_asgi_app__(self) -> Any:
            return build()

    serve.run(cast(Any, Trivial).bind(), name="trivial", route_prefix="/trivial", blocking=False)


def profile_of(sampled: Sampled, run: dict[str, Any]) -> dict[str, Any]:
    """A round's samples as shares of the replica's time and microseconds per request."""
    stacks = sampled.stacks()
    share = shares(stacks, JOIN_PARTS)
    return {"req_per_s": run["req_per_s"], "replica_cores": round(sampled.cores, 3),
            "samples": sum(stacks.values()), "share_pct": share,
            "us_per_request": per_request_us(share, sampled.cores, run["req_per_s"])}


def topic_records(bootstrap: str, topic: str, partitions: int) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-count"})
    total = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions))
    c.close()
    return total


def main(argv: list[str] | None = None) -> int:
    from infra import stack

    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=15.0,
                    help="seconds of load per target before timing (the broker JIT-compiles)")
    ap.add_argument("--connections", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=1, help="Serve replicas of the app")
    ap.add_argument("--only", default="", help="comma list of targets to run (default: all)")
    ap.add_argument("--disconnect-disabled", action="store_true",
                    help="send x-request-disconnect-disabled: ?1 (what a proxy in front can add: "
                    "Serve then runs the handler without watching for the client leaving)")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the serving replica through each Serve target's first round")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine_info(), "parameters": {
        **vars(args), "load_generator": "wrk -t1, Lua script, distinct signed-in users",
        "serve": "HAProxy ingress, throughput-optimized, Api (--replicas) + Trivial (1) apps",
        "uvicorn": "1 worker, uvloop + httptools, at the replica's nice value",
        "join_rate_per_s": 1e9}}
    ntp = stack.start_ntp(NTP_PORT, PORTS.state)
    try:
        with Bench(NAME, ray=True, serve=True, ports=PORTS, join_rate_per_s=1e9, user_rate_per_s=1e9,
                   ntp_servers=(ntp,), serve_replicas=args.replicas) as bench:
            s = bench.settings
            base = f"http://127.0.0.1:{PORTS.http}"
            wait_http(f"{base}/healthz", 120)
            deploy_trivial(s.join_batch_wait_ms, s)
            r = httpx.post(f"{base}/v1/events", timeout=120,
                           headers={"Authorization": f"Bearer {s.admin_token}"},
                           json={"name": "joins", "sections": [{"name": "A", "rows": 10,
                                                               "seats_per_row": 100,
                                                               "price_cents": 5000}]})
            r.raise_for_status()
            event_id = r.json()["event_id"]
            import ray

            nice = niceness_by_process().get("serve_replica", 0)
            result["parameters"]["uvicorn_nice"] = nice
            env = dict(os.environ, BENCH_REDIS_URL=s.redis_url,
                       BENCH_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
                       BENCH_TOPIC_PREFIX=s.kafka_topic_prefix, BENCH_TOKEN_SECRET=s.token_secret,
                       BENCH_ADMIN_TOKEN=s.admin_token,
                       BENCH_NTP_SERVERS=ntp, BENCH_JOIN_RATE="1e9",
                       # its room waker reaches this run's Ray, not another on the machine
                       RAY_ADDRESS=ray.get_runtime_context().gcs_address)
            bench.spawn(["nice", "-n", str(nice), sys.executable, "-m", "uvicorn",
                         "benchmarks._uvicorn_joins_app:app", "--host", "127.0.0.1", "--port",
                         str(UVICORN_PORT), "--workers", "1", "--no-access-log", "--log-level",
                         "warning"], env, f"{PORTS.state}/uvicorn-{UVICORN_PORT}.log")
            wait_http(f"http://127.0.0.1:{UVICORN_PORT}/healthz", 60)
            # one join each, so both have measured the clock and connected the producer
            for port in (PORTS.http, UVICORN_PORT):
                first = user_tokens(s, f"first{port}-", 1).read_text().strip()
                httpx.post(f"http://127.0.0.1:{port}/v1/events/{event_id}/queue", json={},
                           headers={"Authorization": f"Bearer {first}"},
                           timeout=60).raise_for_status()
            targets = {
                "serve_join": (PORTS.http, f"/v1/events/{event_id}/queue"),
                "serve_trivial": (PORTS.http, f"/trivial/v1/events/{event_id}/queue"),
                "serve_trivial_wait": (PORTS.http, f"/trivial/wait/v1/events/{event_id}/queue"),
                "serve_verify_wait": (PORTS.http,
                                      f"/trivial/verify/wait/v1/events/{event_id}/queue"),
                "uvicorn_join": (UVICORN_PORT, f"/v1/events/{event_id}/queue"),
                "uvicorn_trivial": (UVICORN_PORT, f"/trivial/v1/events/{event_id}/queue")}
            if args.only:
                targets = {k: v for k, v in targets.items() if k in args.only.split(",")}
            joins_202 = 2
            for name, (port, path) in targets.items():
                warm = wrk(port, path, f"{name}-warm-", args.warmup, args.connections,
                           args.disconnect_disabled, s)
                joins_202 += warm["status_202"] if name.endswith("join") else 0
            runs: dict[str, Any] = {}
            profiles: dict[str, Any] = {}
            for rnd in range(args.rounds):
                for name, (port, path) in targets.items():
                    app = "ticketing" if name == "serve_join" else "trivial"
                    sampled = (Sampled(replica_pid(app), args.duration - 1,
                                       Path(PORTS.state) / f"py-spy-{name}.raw")
                               if args.profile and rnd == 0 and name.startswith("serve_")
                               else contextlib.nullcontext())
                    with sampled:
                        run = wrk(port, path, f"{name}-r{rnd}-", args.duration, args.connections,
                                  args.disconnect_disabled, s)
                    if isinstance(sampled, Sampled):
                        profiles[name] = profile_of(sampled, run)
                    runs[f"{name}_round{rnd + 1}"] = run
                    joins_202 += run["status_202"] if name.endswith("join") else 0
                    print(name, rnd + 1, json.dumps(run), flush=True)
            for name in targets:
                rs = [runs[f"{name}_round{i + 1}"] for i in range(args.rounds)]
                runs[name] = {"req_per_s": round(statistics.median(x["req_per_s"] for x in rs), 1),
                              "p50_ms": statistics.median(x["latency_ms"]["p50"] for x in rs),
                              "p99_ms": statistics.median(x["latency_ms"]["p99"] for x in rs),
                              "non_202": sum(x["other_status"] for x in rs),
                              "aggregate": "median over rounds"}
            time.sleep(1)
            records = topic_records(s.kafka_bootstrap, s.joins_topic(event_id), s.join_partitions)
            result["niceness_by_process"] = niceness_by_process()
            result["audit"] = {"join_202s": joins_202, "records_in_joins_topic": records,
                               "every_202_is_a_record": records >= joins_202,
                               "records_minus_202s": records - joins_202}
    finally:
        stack.stop_ntp(NTP_PORT, PORTS.state)
    result["runs"] = runs
    if profiles:
        result["profile"] = {"method": (
            "py-spy record --nonblocking -r 100 -f raw on the serving replica through the "
            "target's first measured round; share_pct: percent of samples whose stack passes "
            "through the part (inclusive; 'of which' lies inside the part above it); "
            "us_per_request: share x the replica's CPU cores / requests per s"), **profiles}

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(runs[f"{a}_round{i + 1}"]["req_per_s"]
                                       / runs[f"{b}_round{i + 1}"]["req_per_s"]
                                       for i in range(args.rounds)), 3)

    result["summary"] = {
        **{f"{k}_req_per_s": runs[k]["req_per_s"] for k in targets},
        **{f"{k}_p99_ms": runs[k]["p99_ms"] for k in targets},
        **{f"ratio_{a}_over_{b}": ratio(a, b) for a, b in (
            ("serve_join", "serve_trivial"), ("serve_join", "serve_trivial_wait"),
            ("serve_join", "serve_verify_wait"), ("serve_verify_wait", "serve_trivial_wait"),
            ("serve_join", "uvicorn_join"), ("uvicorn_join", "uvicorn_trivial"))
           if a in targets and b in targets},
        "target_joins_per_s": 5000, **result["audit"]}
    result["parameters"]["join_batch_wait_ms"] = s.join_batch_wait_ms
    name = NAME if args.replicas == 1 else f"{NAME}_{args.replicas}replicas"
    name += "_profiled" if args.profile else ""
    written = write_result(name + ("_disconnect_disabled" if args.disconnect_disabled else ""),
                           result)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
