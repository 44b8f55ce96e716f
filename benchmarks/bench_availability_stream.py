"""How many availability-stream (SSE) clients one machine holds, and the lag of a seat change.

Side by side in one run, on the same Redis and the same change stream:
  * serve   - the project's app (`serve_app.deploy`): HAProxy (MAXCONN 7900) -> one Serve
              replica -> `store.seat_feed` (one XREAD per event, in-process fan-out); :8300.
  * uvicorn - benchmarks/_uvicorn_sse_app.py: the same `store.seat_feed` fan-out on plain
              Starlette + uvicorn, 1 worker, no Ray, no HAProxy; :8301.
For each: `--clients` streams are opened by two load-generator processes
(benchmarks/_sse_clients.py, raw asyncio sockets) at `--ramp` per second; seats are then held
through the API at `--rate` per second for `--duration` s; every client closes and reconnects
at once with Last-Event-ID (counting errors, and resumes vs snapshots); then `--after` s more
of changes. Lag = arrival of the first event that covers a change minus the change's time,
which is the Redis stream entry id written by the hold's Lua script (ms, same clock).
Everything is on loopback, on its own ports: Redis 6430, Kafka 49092/49093, Serve 8300,
uvicorn 8301, HAProxy stats 8434 / metrics 9134. Bounded: about 5 minutes.

    python -m benchmarks.bench_availability_stream [--clients 7500] [--rate 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks._common import cpu_seconds, descendants
from infra import credentials, stack

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
NAME = "bench_availability_stream"
_OFFSET = int(os.environ.get("TICKETING_BENCH_PORT_OFFSET", "0"))  # run beside a test suite
STATE = "/tmp/ticketing-bench-sse" + (f"-{_OFFSET}" if _OFFSET else "")
GC_PROBE_DIR = Path(STATE) / f"gc-probe-{os.getpid()}"
REDIS_PORT, KAFKA_PORT, KAFKA_CONTROLLER_PORT = 6430 + _OFFSET, 49092 + _OFFSET, 49093 + _OFFSET
SERVE_PORT, UVICORN_PORT = 8300 + _OFFSET, 8301 + _OFFSET
MAXCONN = 7900  # HAProxy needs ~2.5 fds per stream: 2.5 * 7900 + 30 <= 20,000 (hard nofile)
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
    "RAY_SERVE_HAPROXY_MAXCONN": str(MAXCONN),
    **stack.serve_ports_env(8434 + _OFFSET, 9134 + _OFFSET, 8436 + _OFFSET, 9136 + _OFFSET),
    # A reconnect storm overflows the replica's accept backlog for a few seconds: let HAProxy
    # wait for it (connect timeout) instead of marking the only replica down after 3 layer-4
    # errors and failing over to the backup Python proxy (which answered 500s).
    "RAY_SERVE_HAPROXY_OBSERVE_MARK_DOWN_ENABLED": "0",
    "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S": "30",
    "RAY_USAGE_STATS_ENABLED": "0",
}
EVENTS = {  # --seats: the theatre of the first runs, or the stadium of issue 14
    500: {"name": "SSE bench", "sections": [
        {"name": "A", "rows": 10, "seats_per_row": 50, "price_cents": 5000}]},
    60_000: {"name": "SSE bench stadium", "sections": [
        {"name": chr(65 + k), "rows": 50, "seats_per_row": 100, "price_cents": 5000}
        for k in range(12)]}}
CATEGORIES = [("haproxy", "haproxy"), ("ServeReplica", "serve_replica"),
              ("_sse_clients", "load_generator"), ("uvicorn", "uvicorn"),
              ("redis-server", "redis"), ("EntityHost", "entity_hosts"),
              ("ServeController", "serve_controller"), ("kafka.Kafka", "kafka"),
              ("raylet", "raylet"), ("gcs_server", "gcs_server"),
              ("dashboard", "ray_agents"), ("log_monitor", "ray_agents"),
              ("monitor.py", "ray_agents")]


# -------------------------------------------------------------------------------------------
# numbers

def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


SETTLE_S = 3.0  # after the steady changes, before all streams reconnect


def worst_lag_shares(worst_ms: list[float]) -> dict[str, float]:
    """Share of clients whose worst lag (while all streams were open) was over each bound:
    whether a few clients fall far behind, or everyone a little."""
    n = max(1, len(worst_ms))
    return {f"over_{bound}_ms": round(sum(x > bound for x in worst_ms) / n, 4)
            for bound in (1000, 2000, 5000, 10000)}


def by_second(results: list[dict[str, Any]], phase: str = "steady") -> dict[str, float]:
    """Each load generator's p99 by the second a change was made in (the worst of them,
    seconds counted from the phase's first change): whether the lag grows during the run."""
    merged: dict[int, float] = {}
    for r in results:
        for second, p99 in r[f"{phase}_p99_ms_by_second"].items():
            merged[int(second)] = max(merged.get(int(second), 0.0), p99)
    first = min(merged, default=0)
    return {str(second - first): p99 for second, p99 in sorted(merged.items())}


def lag_summary(lags_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(lags_ms, 50), 1), "p90_ms": round(pct(lags_ms, 90), 1),
            "p99_ms": round(pct(lags_ms, 99), 1), "max_ms": round(max(lags_ms, default=0), 1),
            "n": len(lags_ms)}


def cpu_by_category() -> dict[str, float]:
    """CPU seconds used so far by each kind of process in our own process tree (Ray, HAProxy,
    Redis, Kafka, uvicorn, load generators), not by anything else on the machine."""
    out: dict[str, float] = {}
    for pid in descendants(os.getpid()):
        proc = Path(f"/proc/{pid}")
        with contextlib.suppress(OSError, IndexError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            name = next((cat for marker, cat in CATEGORIES if marker in cmd),
                        f"other: {cmd[:60].strip()}")  # named, so a busy stranger shows
            out[name] = out.get(name, 0.0) + cpu_seconds(pid)
    return out


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {k: round((after.get(k, 0) - before.get(k, 0)) / seconds, 3)
            for k in sorted(set(before) | set(after))
            if (after.get(k, 0) - before.get(k, 0)) / seconds >= 0.005}


# -------------------------------------------------------------------------------------------
# services

class Services:
    """Redis, Kafka, Ray + Serve and uvicorn on the benchmark's ports; all stopped on exit."""

    def __init__(self, replicas: int = 1, uvicorn: bool = True,
                 block_max_seats: int | None = None, delta_interval_s: float = 0.2,
                 delta_phases: int = 4, gc_freeze_interval_s: float = 1.0,
                 gc_probe: bool = False) -> None:
        self.gc_freeze_interval_s, self.gc_probe = gc_freeze_interval_s, gc_probe
        self.uvicorn: subprocess.Popen[bytes] | None = None
        self.settings: Any = None
        self.replicas = replicas
        self.with_uvicorn = uvicorn
        self.block_max_seats = block_max_seats
        self.delta_interval_s = delta_interval_s
        self.delta_phases = delta_phases

    def __enter__(self) -> Services:
        from infra import stack

        signal.signal(signal.SIGTERM, _interrupt)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < 2.5 * MAXCONN + 30:
            raise SystemExit(f"nofile hard limit {hard} is too low for MAXCONN {MAXCONN}")
        try:
            redis_url = stack.start_redis(REDIS_PORT, STATE)
            client = redis.Redis.from_url(redis_url)
            client.flushall()
            client.close()
            bootstrap = stack.start_kafka(KAFKA_PORT, KAFKA_CONTROLLER_PORT, STATE)
            from domain.settings import Settings

            self.settings = Settings.from_env(
                environ={}, redis_url=redis_url, kafka_bootstrap=bootstrap,
                kafka_topic_prefix=f"ssebench{int(time.time())}", http_port=SERVE_PORT,
                serve_replicas=self.replicas, seat_delta_interval_s=self.delta_interval_s,
                seat_delta_phases=self.delta_phases,
                gc_freeze_interval_s=self.gc_freeze_interval_s,
                **credentials.random_settings_secrets(),
                **({"block_max_seats": self.block_max_seats} if self.block_max_seats else {}))
            # HAProxy as `make up` runs it (through the hardening wrapper), with the per-address
            # connection cap lifted: every client of this benchmark comes from 127.0.0.1.
            os.environ.update(stack.serve_env(dict(
                os.environ, **SERVE_ENV, TICKETING_STATE_DIR=STATE,
                INGRESS_CONN_PER_ADDR_MAX=str(2 * MAXCONN))))
            if self.gc_probe:  # every process of this Ray cluster, not this one
                os.environ["GCPROBE_DIR"] = str(GC_PROBE_DIR)
                os.environ["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(REPO / "benchmarks" / "_gc_probe"), str(REPO),
                                os.environ.get("PYTHONPATH")) if p)
            import ray

            ray.init(address="local", num_cpus=2, include_dashboard=False,
                     namespace=self.settings.ray_namespace, log_to_driver=False)
            import serve_app

            serve_app.deploy(self.settings)
            env = dict(os.environ, REDIS_URL=redis_url, PYTHONPATH=str(REPO),
                       TICKETING_TOKEN_SECRET=self.settings.token_secret,
                       TICKETING_ADMIN_TOKEN=self.settings.admin_token,
                       SEAT_DELTA_INTERVAL_S=str(self.delta_interval_s),
                       SEAT_DELTA_PHASES=str(self.delta_phases),
                       GC_FREEZE_INTERVAL_S=str(self.gc_freeze_interval_s))
            with open(Path(STATE) / "uvicorn.log", "ab") as log:
                if not self.with_uvicorn:
                    _wait_http(f"http://127.0.0.1:{SERVE_PORT}/healthz")
                    return self
                self.uvicorn = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "benchmarks._uvicorn_sse_app:app",
                     "--host", "127.0.0.1", "--port", str(UVICORN_PORT), "--backlog", "8192",
                     "--no-access-log", "--log-level", "warning"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    cwd=REPO)
            _wait_http(f"http://127.0.0.1:{SERVE_PORT}/healthz")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        from infra import stack

        if self.uvicorn is not None:
            self.uvicorn.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.uvicorn.wait(10)
            if self.uvicorn.poll() is None:
                self.uvicorn.kill()
        import ray

        if ray.is_initialized():  # only our own local Ray: serve.shutdown() on a driver that
            # never connected would auto-connect to another cluster on this machine and stop it
            with contextlib.suppress(Exception):
                from ray import serve

                serve.shutdown()
            with contextlib.suppress(Exception):
                ray.shutdown()
        with contextlib.suppress(Exception):
            stack.stop_kafka(KAFKA_PORT, STATE)
        with contextlib.suppress(Exception):
            stack.stop_redis(REDIS_PORT, STATE)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} never answered 200")


# -------------------------------------------------------------------------------------------
# one server's run

class Changes:
    """Holds one seat per request through the API at a steady rate (requests overlap, so 100
    a second do not wait on each other), then reads when each change happened from the
    event's change stream: its entry id's ms part is when the hold's Lua script ran."""

    def __init__(self, settings: Any, event_id: str, event: dict[str, Any],
                 via: str = "actor") -> None:
        from domain import tokens
        from replica.identity import Identity

        self._settings = settings
        self._event_id = event_id
        self._via = via
        self._event: Any = None
        self._seats = [f"{s['name']}-{r}-{n}" for s in event["sections"]
                       for r in range(1, s["rows"] + 1) for n in range(1, s["seats_per_row"] + 1)]
        self._redis = redis.Redis.from_url(settings.redis_url)
        self._next = 0
        self.changed_at: dict[int, float] = {}
        self.failed: dict[str, int] = {}  # hold requests that did not make a change, by reason
        identity = Identity(settings)
        self._token = lambda user: identity.sign(tokens.Claims(
            tokens.ADMISSION, user, event_id, time.time() + 3600, ""))

    async def _one(self, http: httpx.AsyncClient, seat: str, user: str) -> bool:
        if self._via == "actor":
            return await self._one_by_actor(seat, user)
        try:
            response = await http.post(
                f"/v1/events/{self._event_id}/holds", json={"seat_ids": [seat]},
                headers={"Authorization": f"Bearer {self._token(user)}"}, timeout=60)
        except httpx.HTTPError as error:  # counted, not fatal: the streams are what is measured
            self.failed[type(error).__name__] = self.failed.get(type(error).__name__, 0) + 1
            return False
        if response.status_code != 201:
            self.failed[str(response.status_code)] = self.failed.get(str(response.status_code), 0) + 1
        return response.status_code == 201

    async def _one_by_actor(self, seat: str, user: str) -> bool:
        """The hold straight to its seat block (as a Serve replica sends it), so the rate of
        changes does not depend on how much CPU the streams leave the replicas' hold path."""
        from actors import directory
        from domain.event import Event
        from domain.holds import Hold
        from domain.ids import HoldRef
        from domain.inventory import HoldRequest
        from store import keys

        if self._event is None:
            raw: Any = self._redis.get(keys.event(self._event_id))
            self._event = Event.from_json(raw)
        block = self._event.venue.block_for_seats([seat]).index
        hold_id = HoldRef(self._event_id, block, secrets.token_hex(8)).hold_id
        try:
            [result] = await directory.seat_block(self._settings, self._event_id, block).hold.remote(
                [(hold_id, HoldRequest(user, (seat,)))])
        except Exception as error:  # counted, not fatal: the streams are what is measured
            self.failed[type(error).__name__] = self.failed.get(type(error).__name__, 0) + 1
            return False
        if not isinstance(result, Hold):
            self.failed[type(result).__name__] = self.failed.get(type(result).__name__, 0) + 1
        return isinstance(result, Hold)

    async def run(self, http: httpx.AsyncClient, seconds: float, per_s: float) -> int:
        from store import keys

        start, sent, tasks = time.monotonic(), 0, []
        while time.monotonic() - start < seconds:
            seat = self._seats[self._next % len(self._seats)]
            self._next += 1
            tasks.append(asyncio.ensure_future(self._one(http, seat, f"u{self._next}")))
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / per_s - time.monotonic()))
        made = sum(await asyncio.gather(*tasks))
        log: Any = self._redis.xrange(keys.seat_changes(self._event_id))
        for entry_id, fields in log:
            self.changed_at[int(fields[b"v"])] = int(entry_id.split(b"-")[0]) / 1000
        return made


async def spawn_clients(port: int, event_id: str, clients: int, procs: int,
                        ramp: float, fmt: str = "json") -> list[asyncio.subprocess.Process]:
    path = f"/v1/events/{event_id}/availability/stream?format={fmt}"
    return [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks._sse_clients", "--port", str(port), "--path", path,
        "--clients", str(clients // procs + (1 if i < clients % procs else 0)),
        "--ramp", str(ramp / procs), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=REPO, limit=2**28) for i in range(procs)]


async def expect(procs: list[asyncio.subprocess.Process], tag: str,
                 timeout_s: float) -> list[dict[str, Any]]:
    async def one(proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        if not line.startswith(tag + " "):
            raise RuntimeError(f"load generator said {line[:200]!r}, expected {tag}")
        result: dict[str, Any] = json.loads(line[len(tag) + 1:])
        return result

    return list(await asyncio.wait_for(asyncio.gather(*[one(p) for p in procs]), timeout_s))


def send(procs: list[asyncio.subprocess.Process], line: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write((line + "\n").encode())


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                bucket = out.setdefault(key, {})
                for k, v in value.items():
                    bucket[k] = bucket.get(k, 0) + v
            elif key.startswith("seconds"):
                out[key] = max(out.get(key, 0), value)
            else:
                out[key] = out.get(key, 0) + value
    return out


async def run_server(name: str, port: int, settings: Any, args: argparse.Namespace,
                     admin: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{SERVE_PORT}", timeout=30,
                                 limits=httpx.Limits(max_connections=512)) as http:
        event = EVENTS[args.seats]
        created = await http.post("/v1/events", json=event, headers=admin,
                                  timeout=300)  # a stadium's actors start in ~20-30 s
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        changes = Changes(settings, event_id, event, args.changes_via)
        print(f"[{name}] opening {args.clients} streams", flush=True)
        procs = await spawn_clients(port, event_id, args.clients, args.procs, args.ramp,
                                    args.format)
        try:
            connected = merged(await expect(procs, "CONNECTED", 300))
            print(f"[{name}] connected: {connected}", flush=True)
            await asyncio.sleep(2)
            before, t0, t0_wall = cpu_by_category(), time.monotonic(), time.time()
            made = await changes.run(http, args.duration, args.rate)
            steady_cpu = cores_used(before, cpu_by_category(), time.monotonic() - t0)
            print(f"[{name}] {made} changes; cpu {steady_cpu}; reconnecting all", flush=True)
            await asyncio.sleep(SETTLE_S)  # the last changes reach every stream before it closes
            steady_versions = set(changes.changed_at)
            send(procs, "RECONNECT")
            reconnected = merged(await expect(procs, "RECONNECTED", 300))
            print(f"[{name}] reconnected: {reconnected}", flush=True)
            made_after = await changes.run(http, args.after, args.rate)
            await asyncio.sleep(2.0)
            changes_file = Path(STATE) / f"changes-{name}.json"
            changes_file.write_text(json.dumps(changes.changed_at))
            send(procs, f"STOP {changes_file} {max(steady_versions, default=0)}")
            results = await expect(procs, "RESULT", 300)
            pauses = (gc_pauses("ServeReplica", t0_wall) if args.gc_probe and name == "serve"
                      else None)
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    steady = [x for r in results for x in r["lags_ms"]["steady"]]
    after = [x for r in results for x in r["lags_ms"]["after"]]
    delta_bytes, deltas = sum(r["delta_bytes"] for r in results), sum(r["deltas"] for r in results)
    return {"streams_requested": args.clients, "connect": connected,
            "held_to_the_end": sum(r["connected_at_end"] for r in results),
            "changes": made + made_after, "changes_before_reconnect": len(steady_versions),
            "changes_per_s_asked": args.rate, "hold_requests_failed": changes.failed,
            "lag_all": lag_summary(steady + after),
            "lag_steady": lag_summary(steady),  # changes while every stream was open
            "lag_after_reconnect": lag_summary(after),  # after all streams reconnected at once
            "clients_by_worst_steady_lag": worst_lag_shares(
                [x for r in results for x in r["worst_steady_ms"]]),
            "steady_p99_ms_by_second": by_second(results),
            "after_reconnect_p99_ms_by_second": by_second(results, "after"),
            "undelivered_change_client_pairs": sum(r["missed"] for r in results),
            "reconnect_all_at_once": reconnected, "cpu_cores_during_changes": steady_cpu,
            "delta_wire_bytes": {  # one change is one seat held (a one-seat hold)
                "per_delta": round(delta_bytes / max(1, deltas), 1),
                "per_changed_seat": round(delta_bytes / max(1, args.clients * (made + made_after)),
                                          2)},
            **({"gc_pauses_serve_replicas": pauses} if pauses is not None else {})}


def gc_pauses(marker: str, changes_from: float) -> list[dict[str, Any]]:
    """The probe's record of each process whose command line has `marker`, its pauses over
    20 ms timed in seconds from the first seat change (negative: while streams connected)."""
    out = []
    for path in sorted(GC_PROBE_DIR.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if marker in record["cmd"]:
                record["pauses_over_20_ms"] = [[round(t - changes_from, 2), g, ms]
                                               for t, g, ms in record["pauses_over_20_ms"]]
                record["total_s"] = round(record["total_s"], 3)
                record["max_ms"] = round(record["max_ms"], 1)
                out.append(record)
    return out


def machine() -> dict[str, Any]:
    import ray

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
            "python": sys.version.split()[0], "ray": ray.__version__,
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "somaxconn": Path("/proc/sys/net/core/somaxconn").read_text().strip(),
            "loadavg_at_start": list(os.getloadavg()), "git_commit": commit,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def replica_http_port() -> int:
    """The port the (first) Serve replica of our tree listens on itself (Ray's direct ingress,
    from 30000 up): the `serve_direct` run's clients connect there, past HAProxy."""
    listening = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
            listening[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            if b"ServeReplica" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    port = listening.get(target[len("socket:["):-1], 0)
                    if target.startswith("socket:[") and 30000 <= port < 40000:
                        return port
    raise RuntimeError("no Serve replica listening on a port of its own")


async def bench(services: Services, args: argparse.Namespace) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {services.settings.admin_token}"}
    runs = {}
    servers = args.servers.split(",")
    for name in ("serve", "serve_direct", "uvicorn"):
        if name in servers:
            port = {"serve": SERVE_PORT, "uvicorn": UVICORN_PORT}.get(name) or replica_http_port()
            runs[name] = await run_server(name, port, services.settings, args, admin)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=7500)
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--ramp", type=float, default=600.0, help="new streams per second")
    parser.add_argument("--rate", type=float, default=2.0, help="seat changes per second")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--servers", default="serve,uvicorn",
                        help="runs, in this order: serve (through HAProxy), serve_direct (the "
                             "same replica on its own port, past HAProxy), uvicorn")
    parser.add_argument("--replicas", type=int, default=1, help="Serve HTTP replicas")
    parser.add_argument("--seats", type=int, choices=sorted(EVENTS), default=500,
                        help="event size: 500 (one section) or 60000 (12 x 50 x 100)")
    parser.add_argument("--format", choices=("json", "compact"), default="json",
                        help="availability stream form the clients ask for")
    parser.add_argument("--block-max-seats", type=int, default=0,
                        help="seats per seat-block actor (0: the default, 2,000)")
    parser.add_argument("--changes-via", choices=("actor", "http"), default="actor",
                        help="how seat changes are made: holds sent to the seat block as a Serve "
                             "replica does (default), or POST /holds through the same replicas")
    parser.add_argument("--delta-interval-s", type=float, default=0.2,
                        help="seat_delta_interval_s of both servers (the coalescing window)")
    parser.add_argument("--delta-phases", type=int, default=4,
                        help="seat_delta_phases of both servers (1: every stream in one burst)")
    parser.add_argument("--gc-freeze-interval-s", type=float, default=1.0,
                        help="gc_freeze_interval_s of the Serve replicas (replica/gc_policy.py; "
                             "0: only Serve's freeze at start-up, as before it)")
    parser.add_argument("--gc-probe", action="store_true",
                        help="record the Serve replicas' garbage-collection pauses "
                             "(benchmarks/_gc_probe) into the results")
    parser.add_argument("--out", default="", help="results file name (default from the knobs)")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": NAME, "machine": machine(), "parameters": {
        **vars(args), "event_seats": args.seats,
        "haproxy_maxconn": MAXCONN,
        "serve": f"HAProxy ingress, throughput-optimized, {args.replicas} replica(s)",
        "uvicorn": "1 worker, same store.seat_feed fan-out, same Redis",
        "lag": "first arrival of an event covering the change minus the change's Redis "
               "stream entry time (the hold's Lua script), per client and change"}}
    with Services(args.replicas, uvicorn="uvicorn" in args.servers.split(","),
                  block_max_seats=args.block_max_seats or None,
                  delta_interval_s=args.delta_interval_s,
                  delta_phases=args.delta_phases,
                  gc_freeze_interval_s=args.gc_freeze_interval_s,
                  gc_probe=args.gc_probe) as services:
        result["runs"] = asyncio.run(bench(services, args))
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    default = f"{NAME}.json" if args.replicas == 1 else f"{NAME}_{args.replicas}replicas.json"
    path = RESULTS / (args.out or default)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["runs"], indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
