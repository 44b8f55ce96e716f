"""Shared plumbing of the benchmarks: services, Ray, events, results, CPU accounting.

Every benchmark runs its own Redis (127.0.0.1:6420) and Kafka (127.0.0.1:39092) under
/tmp/ticketing-bench (or the `Ports` it passes), and (when it needs actors) its own local Ray;
`Bench` stops all of it on exit, also on failure or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import credentials

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STATE = "/tmp/ticketing-bench"
REDIS_PORT = 6420
KAFKA_PORT = 39092
KAFKA_CONTROLLER_PORT = 39093
HTTP_PORT = 8200

# What benchmarks set apart from `infra.stack.SERVE_ENV` (the rest comes from there).
SERVE_ENV = {"RAY_SERVE_HAPROXY_MAXCONN": "4000", "RAY_USAGE_STATS_ENABLED": "0"}


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, nearest rank; NaN-free (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def lat_summary_ms(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(seconds, 50) * 1000, 3), "p99_ms": round(pct(seconds, 99) * 1000, 3),
            "max_ms": round(max(seconds, default=0) * 1000, 3), "n": len(seconds)}


def machine_info() -> dict[str, Any]:
    import ray
    import redis

    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    mem_kb = 0
    with contextlib.suppress(OSError, StopIteration):
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text()
                          .splitlines() if line.startswith("MemTotal")))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    # what the run measured: results an earlier run wrote do not make the app's tree dirty
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!benchmarks/results"],
                           capture_output=True, text=True).stdout.strip()
    server = subprocess.run(["redis-server", "--version"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "mem_gb": round(mem_kb / 2**20, 1),
            "loadavg_at_start": list(os.getloadavg()), "kernel": platform.release(),
            "python": sys.version.split()[0], "ray": ray.__version__, "redis_py": redis.__version__,
            "redis_server": server, "git_commit": commit, "app_tree_dirty": bool(dirty),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result.setdefault("machine", {})["loadavg_at_end"] = list(os.getloadavg())
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    return path


# -------------------------------------------------------------------------------------------
# CPU accounting of our own process tree (Ray workers, HAProxy, Redis, Kafka, wrk, uvicorn)

_CATEGORIES = [("haproxy", "haproxy"), ("ServeReplica", "serve_replica"),
               ("ServeController", "serve_controller"), ("SeatBlock", "seat_block_actor"),
               ("EventOwner", "event_owner_actor"), ("raylet", "raylet"),
               ("gcs_server", "gcs_server"), ("redis-server", "redis"),
               ("kafka.Kafka", "kafka"), ("wrk", "wrk"), ("uvicorn", "uvicorn"),
               ("JoinIngest", "ingest_actor"), ("WaitingRoom", "waiting_room_actor"),
               ("EntityHost", "host_actor")]


def descendants(root: int) -> dict[int, str]:
    parent: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    out, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in out:
                with contextlib.suppress(OSError):
                    out[child] = (Path(f"/proc/{child}/cmdline").read_bytes()
                                  .replace(b"\0", b" ").decode(errors="replace"))
                frontier.append(child)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far per category of process, over our own process tree."""
    totals: dict[str, float] = {}
    procs = descendants(os.getpid())
    procs[os.getpid()] = "driver"
    for pid, cmd in procs.items():
        try:
            used = cpu_seconds(pid)
        except OSError:
            continue
        name = "driver" if pid == os.getpid() else next(
            (cat for marker, cat in _CATEGORIES if marker in cmd), "other")
        totals[name] = totals.get(name, 0.0) + used
    return totals


def niceness_by_process() -> dict[str, int]:
    """The nice value of each category of our processes (Ray starts its workers at 15)."""
    out: dict[str, int] = {}
    for pid, cmd in descendants(os.getpid()).items():
        with contextlib.suppress(OSError, IndexError, ValueError):
            nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
            name = next((cat for marker, cat in _CATEGORIES if marker in cmd), "other")
            if name != "other":
                out[name] = nice
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used per category between two snapshots (1.0 = one full core)."""
    keys = sorted(set(before) | set(after))
    return {k: round((after.get(k, 0) - before.get(k, 0)) / seconds, 3) for k in keys
            if abs(after.get(k, 0) - before.get(k, 0)) / seconds >= 0.005}


# -------------------------------------------------------------------------------------------
# services


@dataclass(frozen=True)
class Ports:
    """Where one benchmark's services listen (defaults: the shared ones above). A benchmark that
    may run beside others picks its own set. With HAProxy ingress Serve also starts a fallback
    proxy (Ray's default 127.0.0.1:8500 HTTP / 9500 gRPC): two Rays on one host clash there
    unless each names its own (`fallback_http`, `fallback_grpc`; 0 = Ray's default)."""

    redis: int = REDIS_PORT
    kafka: int = KAFKA_PORT
    kafka_controller: int = KAFKA_CONTROLLER_PORT
    http: int = HTTP_PORT
    haproxy_stats: int = 8424
    haproxy_metrics: int = 9124
    fallback_http: int = 0
    fallback_grpc: int = 0
    state: str = STATE

    def serve_env(self) -> dict[str, str]:
        """Serve's switches as `make up` sets them (`infra.stack.serve_env`: the hardened
        HAProxy, which waits for a busy replica instead of marking it down after three connect
        errors and failing over to Serve's Python proxy), on this benchmark's ports. The
        per-address connection cap is lifted: every simulated client comes from 127.0.0.1."""
        from infra import stack

        env = dict(SERVE_ENV, TICKETING_STATE_DIR=self.state, INGRESS_CONN_PER_ADDR_MAX="100000",
                   **stack.serve_ports_env(self.haproxy_stats, self.haproxy_metrics,
                                           self.fallback_http, self.fallback_grpc))
        return stack.serve_env(dict(os.environ, **env))


class Bench:
    """Context manager: Redis + Kafka (+ Ray, + Serve), all stopped on exit."""

    def __init__(self, name: str, ray: bool = True, serve: bool = False, *,
                 ports: Ports | None = None, **overrides: Any) -> None:
        self.name = name
        self.with_ray = ray
        self.with_serve = serve
        self.ports = ports or Ports()
        self.overrides = overrides
        self.children: list[subprocess.Popen[Any]] = []
        self.settings: Any = None

    def __enter__(self) -> Bench:
        from infra import stack

        signal.signal(signal.SIGTERM, _raise_interrupt)
        _raise_nofile()
        try:
            P = self.ports
            redis_url = stack.start_redis(P.redis, P.state)
            import redis

            r = redis.Redis.from_url(redis_url)
            r.flushall()
            r.script_flush()
            r.close()
            # 39092/39093 lie in the ephemeral port range: a passing outbound connection can
            # hold one of them for a moment ("Address already in use"), so retry the start
            for attempt in range(3):
                _wait_port_unused(P.kafka, P.kafka_controller)
                try:
                    bootstrap = stack.start_kafka(P.kafka, P.kafka_controller, P.state)
                    break
                except stack.StackError:
                    stack.stop_kafka(P.kafka, P.state)
                    if attempt == 2:
                        raise
                    time.sleep(3)
            from domain.settings import Settings

            self.settings = Settings.from_env(
                environ={}, redis_url=redis_url, kafka_bootstrap=bootstrap,
                kafka_topic_prefix=f"bench{int(time.time())}", http_port=P.http,
                **credentials.random_settings_secrets() | self.overrides)
            if self.with_ray:
                os.environ.update(P.serve_env())
                import ray

                ray.init(address="local", num_cpus=2, include_dashboard=False,
                         namespace=self.settings.ray_namespace, log_to_driver=False)
            if self.with_serve:
                import serve_app

                serve_app.deploy(self.settings)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def spawn(self, cmd: list[str], env: dict[str, str], log_file: str) -> subprocess.Popen[Any]:
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.children.append(proc)
        return proc

    def __exit__(self, *exc: Any) -> None:
        from infra import stack

        for proc in self.children:
            with contextlib.suppress(Exception):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self.with_ray:
            import ray

            if self.with_serve:
                with contextlib.suppress(Exception):
                    from ray import serve

                    serve.shutdown()
            with contextlib.suppress(Exception):
                ray.shutdown()
        with contextlib.suppress(Exception):
            stack.stop_kafka(self.ports.kafka, self.ports.state)
        with contextlib.suppress(Exception):
            stack.stop_redis(self.ports.redis, self.ports.state)


def _ports_in_use(*ports: int) -> set[int]:
    """Ports some TCP socket (any state, TIME_WAIT included) has as its local port."""
    used = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                port = int(line.split()[1].rsplit(":", 1)[1], 16)
                if port in ports:
                    used.add(port)
    return used


def _wait_port_unused(*ports: int, timeout_s: float = 70.0) -> None:
    """Wait out sockets (e.g. a TIME_WAIT of someone's outbound connection) on our ports."""
    deadline = time.monotonic() + timeout_s
    while _ports_in_use(*ports) and time.monotonic() < deadline:
        time.sleep(1)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -------------------------------------------------------------------------------------------
# events and tokens


def create_event(settings: Any, body: dict[str, Any]) -> Any:
    """Create an event through its owner actor (as POST /v1/events does); wait for its blocks."""
    import ray

    from actors import directory
    from domain.event import parse_event
    from domain.ids import new_event_id

    event = parse_event(body, new_event_id(), time.time(), settings.hold_ttl_s,
                        settings.max_seats_per_user, settings.block_max_seats,
                        settings.max_quantity)
    created: Any = ray.get(directory.event_owner(settings, event).create.remote(event), timeout=120)
    return created


def kill_event_actors(settings: Any, event: Any) -> None:
    """Close the event: its entities stop on the pool's hosts."""
    import ray

    from actors import directory

    with contextlib.suppress(Exception):
        ray.get(directory.event_owner(settings, event.event_id).close.remote(), timeout=60)


def admission_token(settings: Any, user_id: str, event_id: str) -> str:
    from domain import tokens
    from replica.identity import Identity

    return Identity(settings).sign(tokens.Claims(
        tokens.ADMISSION, user_id, event_id, time.time() + 3600, ""))


@dataclass(frozen=True)
class WrkRun:
    """One wrk run's raw counters (from the script's BENCHJSON line) and the CPU it cost."""

    raw: dict[str, Any]
    seconds: float
    last_other_status: str
    cpu: dict[str, float]

    def socket_errors(self) -> dict[str, int]:
        return {k[4:]: self.raw[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")}

    def latency_ms(self, keys: tuple[str, ...]) -> dict[str, float]:
        return {k[:-3]: round(self.raw[k] / 1000, 2) for k in keys}


def run_wrk(script: Path, lua: str, port: int, seconds: float, connections: int) -> WrkRun:
    """Write `lua` to `script`, run wrk -t1 against 127.0.0.1:port, parse what it printed."""
    import json
    import re

    script.write_text(lua)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}"]
    before, t0 = cpu_snapshot(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu = cpu_delta(before, cpu_snapshot(), time.monotonic() - t0)
    match = re.search(r"BENCHJSON (\{.*\})", out.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    raw = json.loads(match.group(1))
    other = re.search(r"BENCHOTHER (\d+) ?(.*)", out.stdout)
    last = f"{other.group(1)} {other.group(2)[:200]}" if other and raw["other_status"] else ""
    return WrkRun(raw, raw["duration_us"] / 1e6, last, cpu)
