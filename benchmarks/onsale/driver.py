"""The million-user on-sale, end to end: `python -m benchmarks.onsale --users N --seats S`.

One run: create an event, let the crowd (`crowd.py`) arrive before, at and after on-sale,
the bulk of it as join records produced into the event's joins topic (`producer.py`, the
Kafka boundary) and a sample as real HTTP + SSE clients (`http_sample.py`); admitted bulk users
hold and pay through the seat-block handles in batches (`bulk.py`, the actor boundary).
It runs until every seat is sold and every waiting user has been told, applies the chaos
flags on the way, audits the invariants from the durable records (`audit.py`), measures the
baselines on the same services (`baselines.py`) and writes report.md, report.json and plots
(`report.py`) under --out.

Without --base-url it starts its own Redis, Kafka (KRaft), NTP, Ray and Serve on its own ports
(`benchmarks._common.Bench`) and stops them at the end; with --base-url it drives a running
stack (`make up`; what it needs comes from `infra.stack.client_settings()`) and leaves it up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import REPO, Bench, Ports, machine_info
from benchmarks.onsale import audit, baselines, chaos, crowd, procstack, report
from benchmarks.onsale.bulk import BulkShoppers
from benchmarks.onsale.procstack import ProcStack

NAME = "onsale"
PORTS = Ports(redis=6620, kafka=39292, kafka_controller=39293, http=8620, haproxy_stats=8624,
              haproxy_metrics=9324, fallback_http=8720, fallback_grpc=9720,
              state="/tmp/ticketing-bench-onsale")
NTP_PORT = 11620
SEATS_PER_ROW = 50
MONITOR_S = 0.25


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.onsale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--seats", type=int, default=20_000, help="rounded up to rows of 50")
    ap.add_argument("--base-url", default="", help="drive a running stack (make up) instead")
    ap.add_argument("--out", default="", help="default benchmarks/results/onsale/<timestamp>/")
    ap.add_argument("--chaos", action="append", default=[], help=chaos.__doc__)
    ap.add_argument("--http-clients", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--prequeue-share", type=float, default=0.002)
    ap.add_argument("--prequeue-s", type=float, default=15.0)
    ap.add_argument("--burst-share", type=float, default=0.7)
    ap.add_argument("--burst-s", type=float, default=20.0)
    ap.add_argument("--tail-s", type=float, default=40.0)
    ap.add_argument("--admission-rate", type=float, default=250.0,
                    help="admissions/s (matched to what checkout sustains on 2 cores)")
    ap.add_argument("--hold-ttl", type=int, default=30, help="seconds a hold lives")
    ap.add_argument("--admission-ttl", type=int, default=120,
                    help="own stack: ADMISSION_TTL_S (how long an admission lets its user hold)")
    ap.add_argument("--think-scale", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=900.0, help="longest the on-sale may run")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--naive-concurrency", type=int, default=256)
    ap.add_argument("--lead-s", type=float, default=12.0,
                    help="seconds between creating the event and its first arrivals")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--generator-nice", type=int, default=15,
                    help="nice value of the bulk producer and the HTTP clients (Ray's workers: 15)")
    return ap.parse_args(argv)


# -------------------------------------------------------------------------------------------
# stacks


class OwnStack:
    """Redis, Kafka, NTP, Ray (one node, or two for kill-node) and Serve of our own."""

    def __init__(self, args: argparse.Namespace, two_nodes: bool) -> None:
        self.args, self.two_nodes = args, two_nodes
        self.bench: Bench | None = None
        self.cluster: Any = None
        self.worker_node: Any = None
        self.ntp = ""

    def __enter__(self) -> OwnStack:
        from infra import stack

        Path(PORTS.state).mkdir(parents=True, exist_ok=True)
        self.ntp = stack.start_ntp(NTP_PORT, PORTS.state)
        overrides: dict[str, Any] = dict(
            ntp_servers=(self.ntp,), join_rate_per_s=1e9, status_rate_per_s=1e9,
            user_rate_per_s=1e9, signin_rate_per_s=1e9, admission_ttl_s=self.args.admission_ttl)
        if self.two_nodes:
            overrides["proxy_location"] = "HeadOnly"
        self.bench = Bench(NAME, ray=False, serve=False, ports=PORTS, **overrides)
        try:
            self.bench.__enter__()
            self._start_ray()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    @property
    def settings(self) -> Any:
        assert self.bench is not None
        return self.bench.settings

    def _start_ray(self) -> None:
        import ray

        import serve_app

        os.environ.update(PORTS.serve_env())
        s = self.settings
        if self.two_nodes:
            from ray.cluster_utils import Cluster

            self.cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 2, "include_dashboard": False})
            self.worker_node = self.cluster.add_node(num_cpus=1)
            ray.init(address=self.cluster.address, namespace=s.ray_namespace, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=2, include_dashboard=False,
                     namespace=s.ray_namespace, log_to_driver=False)
        # Ray puts in its own SIGTERM handler, which exits without stopping our services
        import signal

        from benchmarks._common import _raise_interrupt

        signal.signal(signal.SIGTERM, _raise_interrupt)
        serve_app.deploy(s)
        wait_healthy(f"http://127.0.0.1:{s.http_port}")

    def remove_worker_node(self) -> str:
        if self.cluster is None or self.worker_node is None:
            return "no worker node"
        self.cluster.remove_node(self.worker_node)
        self.worker_node = None
        return "worker node removed"

    def restart_redis(self) -> str:
        from infra import stack

        stack.stop_redis(PORTS.redis, PORTS.state)
        stack.start_redis(PORTS.redis, PORTS.state)
        return "redis restarted"

    def restart_kafka(self) -> str:
        from infra import stack

        stack.stop_kafka(PORTS.kafka, PORTS.state)
        stack.start_kafka(PORTS.kafka, PORTS.kafka_controller, PORTS.state)
        return "kafka restarted"

    def __exit__(self, *exc: Any) -> None:
        from infra import stack

        with contextlib.suppress(Exception):
            import ray
            from ray import serve

            if ray.is_initialized():
                with contextlib.suppress(Exception):
                    serve.shutdown()
                ray.shutdown()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.shutdown()
        if self.bench is not None:
            self.bench.__exit__(*exc)
        with contextlib.suppress(Exception):
            stack.stop_ntp(NTP_PORT, PORTS.state)


def wait_healthy(base: str, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{base}/healthz never answered 200")


def attach_stack() -> Any:
    """Settings and Ray of a running `make up` stack."""
    import ray

    from infra import stack

    env = stack.client_env()
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN"):
        if key in env:
            os.environ[key] = env[key]
    settings = stack.client_settings()
    ray.init(address=env["RAY_ADDRESS"], namespace=settings.ray_namespace, log_to_driver=False)
    return settings


# -------------------------------------------------------------------------------------------
# subprocesses


class Child:
    """A subprocess whose stdout lines are read by a thread (latest progress kept)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, cwd=REPO, text=True, bufsize=1)
        self.last: dict[str, str] = {}
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            tag, _, rest = line.strip().partition(" ")
            self.last[tag] = rest
            if tag == "DONE":
                self.done.set()
        self.done.set()

    def say(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
        self.log.close()


# -------------------------------------------------------------------------------------------
# the on-sale


@dataclasses.dataclass
class Run:
    args: argparse.Namespace
    settings: Any
    base_url: str
    out: Path
    own: OwnStack | ProcStack | None
    chaos: list[chaos.Chaos]
    bulk: BulkShoppers | None = None


def venue_body(args: argparse.Namespace, onsale_at: float, block_max: int) -> dict[str, Any]:
    """Sections of at most one block each (rows of 50), prices stepping from the front."""
    rows_total = math.ceil(args.seats / SEATS_PER_ROW)
    rows_per_section = max(1, block_max // SEATS_PER_ROW)
    sections, k = [], 0
    while rows_total > 0:
        rows = min(rows_per_section, rows_total)
        sections.append({"name": f"S{k + 1}", "rows": rows, "seats_per_row": SEATS_PER_ROW,
                         "price_cents": 15000 - 1000 * min(k, 10)})
        rows_total -= rows
        k += 1
    return {"name": f"On-sale {args.users:,} users", "onsale_at": onsale_at,
            "hold_ttl_s": args.hold_ttl, "max_seats_per_user": 6,
            "admission_rate_per_s": args.admission_rate, "sections": sections}


async def create_event(run: Run, body: dict[str, Any]) -> Any:
    import httpx

    from domain.event import Event
    from store import keys, redis_clients

    async with httpx.AsyncClient(base_url=run.base_url, timeout=120) as http:
        response = await http.post("/v1/events", json=body, headers={
            "Authorization": f"Bearer {run.settings.admin_token}"})
        response.raise_for_status()
        event_id = response.json()["event_id"]
    r = redis_clients.primary(run.settings)
    raw = await r.get(keys.event(event_id))
    await r.aclose()
    assert raw is not None, "the event was created but is not in Redis"
    return Event.from_json(raw)


class Monitor:
    """Samples what Redis shows every MONITOR_S (and the children's progress) into a timeline."""

    def __init__(self, run: Run, event: Any, redis: Any, bulk: BulkShoppers,
                 producer: Child, http: Child, onsale_at: float) -> None:
        self.run, self.event, self.redis, self.bulk = run, event, redis, bulk
        self.producer, self.http, self.onsale_at = producer, http, onsale_at
        self.rows: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}
        self.memory: dict[str, float] = {}
        self.stop = False

    async def sample(self) -> dict[str, Any] | None:
        from store import keys

        e = self.event.event_id
        blocks = [b.index for b in self.event.venue.blocks]
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(keys.room(e))
            pipe.llen(keys.queue_prequeue(e))
            pipe.hlen(keys.queue_places(e))
            pipe.llen(keys.queue_log(e))
            pipe.hgetall(keys.available(e))
            for b in blocks:
                pipe.bitcount(keys.block_held(e, b))
            for b in blocks:
                pipe.bitcount(keys.block_sold(e, b))
            got = await pipe.execute()
        except Exception:
            return None
        room = {k.decode(): v.decode() for k, v in got[0].items()}
        held = sum(got[5:5 + len(blocks)])
        sold = sum(got[5 + len(blocks):])
        avail = {int(k): int(v) for k, v in got[4].items()}
        for b, free in avail.items():
            self.bulk.free[b] = free
        produced = self.producer.last.get("P", "0 0 0").split()
        http_states = json.loads(self.http.last.get("PROGRESS", "{}") or "{}")
        general = int(room.get("tail", 0)) - int(room.get("head", 0))
        presale = int(room.get("presale_tail", 0)) - int(room.get("presale_head", 0))
        t = self.bulk.tally
        row = {"t": round(time.time() - self.onsale_at, 3), "produced": int(produced[0]),
               "produce_errors": int(produced[1]),
               "http_joined": sum(v for k, v in http_states.items() if k not in ("new", "join_failed")),
               "http_states": http_states, "waiting": general + presale + int(got[1]),
               "prequeue": int(got[1]), "places": int(got[2]), "admitted": int(got[3]),
               "sold_out": room.get("sold_out") == "1", "lottery_done": room.get("lottery_done") == "1",
               "held": held, "sold": sold, "available": sum(avail.values()),
               "bulk_holds": t.holds, "bulk_checkouts": t.checkouts, "bulk_active": t.active}
        self.rows.append(row)
        self.last = row
        return row

    async def forever(self, bars: Any) -> None:
        from benchmarks._common import descendants

        next_mem = 0.0
        while not self.stop:
            row = await self.sample()
            if row is not None and bars is not None:
                bars.update(row)
            if time.monotonic() >= next_mem:
                next_mem = time.monotonic() + 1.0
                await asyncio.to_thread(self._memory, descendants)
            await asyncio.sleep(MONITOR_S)

    def _memory(self, descendants: Any) -> None:
        from benchmarks._common import _CATEGORIES

        procs = descendants(os.getpid())
        procs[os.getpid()] = "driver"
        for pid, cmd in procs.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            rss = next((int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmHWM:")), 0) / 1024
            if pid == os.getpid():
                name = "driver"
            elif "benchmarks.onsale.producer" in cmd:
                name = "bulk_producer"
            elif "benchmarks.onsale.http_sample" in cmd:
                name = "http_sample_clients"
            else:
                name = next((cat for marker, cat in _CATEGORIES if marker in cmd), "other")
            key = name
            self.memory[key] = max(self.memory.get(key, 0.0), round(rss, 1))


class Bars:
    """tqdm bars: joins produced, admitted, seats sold, HTTP clients told."""

    def __init__(self, users: int, seats: int, http_clients: int, quiet: bool) -> None:
        self.bars: dict[str, Any] = {}
        self._next_line = 0.0
        if quiet:
            return
        from tqdm import tqdm

        self.bars = {
            "joins": tqdm(total=users, desc="joined  ", unit="user", position=0),
            "admitted": tqdm(total=None, desc="admitted", unit="user", position=1),
            "sold": tqdm(total=seats, desc="sold    ", unit="seat", position=2),
            "http": tqdm(total=http_clients, desc="http told", unit="client", position=3)}

    def update(self, row: dict[str, Any]) -> None:
        if not self.bars:
            if time.monotonic() >= self._next_line:  # quiet: a line every 10 s for the log
                self._next_line = time.monotonic() + 10
                print(f"t={row['t']:.0f}s joined={row['produced'] + row['http_joined']:,} "
                      f"waiting={row['waiting']:,} admitted={row['admitted']:,} "
                      f"held={row['held']:,} sold={row['sold']:,} http={row['http_states']}",
                      flush=True)
            return
        told = sum(row["http_states"].get(k, 0) for k in ("admitted", "sold_out", "expired"))
        for key, value in (("joins", row["produced"] + row["http_joined"]),
                           ("admitted", row["admitted"]), ("sold", row["sold"]), ("http", told)):
            bar = self.bars[key]
            bar.n = value
            bar.set_postfix_str(f"t={row['t']:.0f}s waiting={row['waiting']:,} held={row['held']:,}"
                                if key == "joins" else "", refresh=False)
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


async def apply_chaos(run: Run, event: Any, onsale_at: float, marks: list[dict[str, Any]]) -> None:
    from domain import placement

    for c in run.chaos:
        await asyncio.sleep(max(0.0, onsale_at + c.at_s - time.time()))
        t0 = time.time()
        try:
            if c.action in ("kill-block", "kill-room"):
                entity = (placement.block_entity(event.event_id, c.arg) if c.action == "kill-block"
                          else placement.room_entity(event.event_id))
                index = await asyncio.to_thread(kill_owner, run.settings, entity)
                outcome = f"killed host {index} (owner of {entity})"
            elif c.action == "kill-node":
                assert isinstance(run.own, OwnStack)
                outcome = await asyncio.to_thread(run.own.remove_worker_node)
            elif c.action == "restart-redis":
                assert isinstance(run.own, OwnStack)
                outcome = await asyncio.to_thread(run.own.restart_redis)
            elif c.action == "restart-kafka":
                assert isinstance(run.own, OwnStack)
                outcome = await asyncio.to_thread(run.own.restart_kafka)
            elif c.action == "failover-redis":
                assert isinstance(run.own, ProcStack)
                outcome = await asyncio.to_thread(run.own.failover_redis)
            elif c.action == "kill-kafka-broker":
                assert isinstance(run.own, ProcStack)
                outcome = await asyncio.to_thread(run.own.kill_kafka_broker, event.event_id)
            else:  # restart-ray-head, power-loss: the mark's took_s is the kill alone
                assert isinstance(run.own, ProcStack) and run.bulk is not None
                marks.append(await ray_down(run, run.own, run.bulk, c, t0, onsale_at))
                continue
        except Exception as exc:
            outcome = f"failed: {exc!r}"
        marks.append({"label": c.label, "t": round(t0 - onsale_at, 2),
                      "took_s": round(time.time() - t0, 2), "outcome": outcome})


async def ray_down(run: Run, own: ProcStack, bulk: BulkShoppers, c: chaos.Chaos, t0: float,
                   onsale_at: float) -> dict[str, Any]:
    """A fault that takes the stack's Ray away (with the driver's connection to it): the bulk
    users wait at the gate, the driver disconnects, the kill, `up` again (the restart: Ray on
    its GCS Redis, Serve; after a power loss every service), the driver reconnects (the
    hosts' handles are found again) and the gate opens. The RTO runs from the kill's start."""
    from actors import directory

    mark: dict[str, Any] = {"label": c.label, "t": round(t0 - onsale_at, 2)}
    try:
        bulk.pause_ray()
        own.disconnect()
        kill = own.kill_ray if c.action == "restart-ray-head" else own.power_loss
        outcome = await asyncio.to_thread(kill)
        mark["took_s"] = round(time.time() - t0, 2)
        up_s = await asyncio.to_thread(own.restart)
        own.connect()
        d = directory.of(run.settings)
        for index in d.started_hosts():
            d.forget_host(index)
        d.refresh()
        mark["outcome"] = (f"{outcome}; up again in {up_s:g} s, driver reconnected "
                           f"{time.time() - t0:.1f} s after the kill")
    except Exception as exc:
        mark.setdefault("took_s", round(time.time() - t0, 2))
        mark["outcome"] = f"failed: {exc!r}"
    finally:
        bulk.resume_ray()
    return mark


def kill_owner(settings: Any, entity_id: str) -> int:
    """Kill (Ray restarts it) the host that owns the entity, with all it hosts."""
    import ray

    from actors import directory

    d = directory.of(settings)
    d.refresh()
    index = d.owner(entity_id)
    ray.kill(d.host(index), no_restart=False)
    return index


async def onsale(run: Run) -> dict[str, Any]:
    from actors import directory
    from replica.identity import Identity
    from store import redis_clients

    args, s = run.args, run.settings
    shape = crowd.CrowdShape(args.prequeue_share, args.prequeue_s, args.burst_share, args.burst_s,
                             args.tail_s)
    behaviour = crowd.Behaviour(think_scale=args.think_scale)
    times = crowd.arrivals(args.users, shape, args.seed)
    http_idx = crowd.http_sample(times, args.http_clients, crowd.expected_buyers(args.seats) // 2,
                                 args.seed)
    onsale_at = time.time() + args.lead_s + args.prequeue_s
    event = await create_event(run, venue_body(args, onsale_at, s.block_max_seats))
    seats_total = event.venue.seats_total
    print(f"event {event.event_id}: {seats_total:,} seats in {len(event.venue.blocks)} blocks, "
          f"{args.users:,} users ({len(http_idx):,} over HTTP), on sale in "
          f"{onsale_at - time.time():.0f} s", flush=True)
    identity = Identity(s)
    specs = []
    for i in http_idx:
        user = f"h{i}"
        p = behaviour.person(args.seed, int(i), user)
        specs.append({"user_id": user, "arrive_at": onsale_at + float(times[i]),
                      "user_token": identity.dev_token(user), "person": dataclasses.asdict(p)})
    sections = [sec.name for sec in event.sections]
    (run.out / "http_config.json").write_text(json.dumps({
        "base_url": run.base_url, "event_id": event.event_id, "sections": sections,
        "clients": specs}))
    (run.out / "producer_config.json").write_text(json.dumps({
        "users": args.users, "seed": args.seed, "shape": dataclasses.asdict(shape),
        "http_indexes": [int(i) for i in http_idx], "onsale_at": onsale_at,
        "event_id": event.event_id, "topic": s.joins_topic(event.event_id),
        "bootstrap": s.kafka_bootstrap}))
    env = dict(os.environ, ONSALE_TOKEN_SECRET=s.token_secret, PYTHONPATH=str(REPO))
    # The load generators run at the nice value of Ray's workers (15), as every benchmark's
    # baseline does: at 0 they would take the CPU from the system they measure.
    nice = ["nice", "-n", str(max(0, args.generator_nice - os.nice(0)))]
    producer = Child([*nice, sys.executable, "-m", "benchmarks.onsale.producer",
                      str(run.out / "producer_config.json")], env, run.out / "producer.log")
    http = Child([*nice, sys.executable, "-m", "benchmarks.onsale.http_sample",
                  str(run.out / "http_config.json"), str(run.out / "http_results.json")], env,
                 run.out / "http_sample.log")
    r = redis_clients.primary(s, socket_timeout=30)
    bulk = BulkShoppers(s, event, r, behaviour, args.seed,
                        lambda b: directory.seat_block(s, event.event_id, b))
    run.bulk = bulk
    monitor = Monitor(run, event, r, bulk, producer, http, onsale_at)
    bars = Bars(args.users, seats_total, len(http_idx), args.quiet)
    marks: list[dict[str, Any]] = []
    tasks = [asyncio.ensure_future(monitor.forever(bars)),
             asyncio.ensure_future(bulk.follow_admissions()),
             asyncio.ensure_future(apply_chaos(run, event, onsale_at, marks)),
             asyncio.ensure_future(wake_while_producing(s, event.event_id, producer,
                                                        bulk.gate))]
    finished, told_sold_out_at = False, None
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.timeout + args.lead_s + args.prequeue_s:
            await asyncio.sleep(0.5)
            row = monitor.last
            if not row:
                continue
            all_sold = row["sold"] >= seats_total and row["held"] == 0
            if all_sold and not bulk.all_sold:
                bulk.all_sold = True
                http.say("SOLDOUT")
                told_sold_out_at = row["t"]
            states = row["http_states"]
            http_waiting = states.get("new", 0) + states.get("joined", 0) + states.get("shopping", 0)
            everyone_placed = producer.done.is_set() and (
                row["places"] + row["admitted"] >= row["produced"] + row["http_joined"])
            if (all_sold and row["sold_out"] and everyone_placed and http_waiting == 0
                    and bool(states) and bulk.busy == 0):
                finished = True
                break
    finally:
        http.say("STOP")
        await asyncio.to_thread(http.done.wait, 60)
        await bulk.drain(10)
        for t in tasks[1:]:
            t.cancel()
        await asyncio.sleep(1.0)  # a last sample
        monitor.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        bars.close()
        await asyncio.to_thread(producer.close, 60)
        await asyncio.to_thread(http.close, 30)
    ended_at = time.time()
    producer_rc = producer.proc.returncode
    if producer_rc != 0:
        print(f"the bulk producer failed (exit {producer_rc}): see {run.out}/producer.log",
              flush=True)
        finished = False
    final = await monitor.sample() or monitor.last
    http_results = json.loads((run.out / "http_results.json").read_text()) \
        if (run.out / "http_results.json").exists() else {"clients": []}
    print("auditing ...", flush=True)
    audited = await asyncio.to_thread(audit_run, s, event, r, bulk, http_results, onsale_at)
    unlogged = await asyncio.to_thread(joins_not_in_topic, s, event, times, http_idx, onsale_at)
    if unlogged:
        print(f"{len(unlogged)} bulk joins acknowledged but not in the joins topic: {unlogged[:20]}",
              flush=True)
    await r.aclose()
    return {"event": event, "onsale_at": onsale_at, "ended_at": ended_at, "finished": finished,
            "told_sold_out_at_s": told_sold_out_at, "timeline": monitor.rows,
            "final": final, "marks": marks, "bulk": bulk.tally, "http": http_results,
            "audit": audited, "memory_mb": monitor.memory, "http_indexes": len(http_idx),
            "producer": json.loads(producer.last.get("DONE", "{}") or "{}") | {
                "exit_code": producer_rc},
            "shape": dataclasses.asdict(shape), "behaviour": dataclasses.asdict(behaviour)}


# -------------------------------------------------------------------------------------------
# audit from the durable records


def read_topic(bootstrap: str, topic: str, timeout_s: float = 300.0) -> list[Any]:
    """Every record of a topic, with an independent consumer (no group, from the start)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"audit-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "fetch.max.bytes": 32 * 2**20, "max.partition.fetch.bytes": 8 * 2**20})
    meta = consumer.list_topics(topic, timeout=30).topics[topic]
    parts = sorted(meta.partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in parts}
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list[Any] = []
    pos = {p: 0 for p in parts}
    deadline = time.monotonic() + timeout_s
    while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
        for m in consumer.consume(10000, 1.0):
            if m.error() is None:
                out.append(m.value())
                pos[int(m.partition() or 0)] = int(m.offset() or 0) + 1
    consumer.close()
    return out


async def wake_while_producing(s: Any, event_id: str, producer: Child, gate: Any) -> None:
    """The bulk producer writes what ingress replicas would, and they wake the event's room
    and ingest on their joins (`RoomWaker`: at most every half passivation time). Without
    it nothing would wake an ingest that passivated, or was lost, between two bursts."""
    from replica.queue_client import RoomWaker

    wake = RoomWaker(s)
    while not producer.done.is_set():
        await gate.wait()  # not while the driver is disconnected from Ray (a fault)
        with contextlib.suppress(Exception):
            await wake(event_id)
        await asyncio.sleep(0.5)


def joins_not_in_topic(s: Any, event: Any, times: Any, http_idx: Any,
                       onsale_at: float) -> list[tuple[str, float]]:
    """The bulk users (and their arrival, s after on-sale) whose join is not in the topic."""
    from domain.ids import ticket_id_for

    skip = {int(i) for i in http_idx}
    expected = {ticket_id_for(s.token_secret, event.event_id, f"b{i}"): (f"b{i}", float(t))
                for i, t in enumerate(times) if i not in skip}
    for value in read_topic(s.kafka_bootstrap, s.joins_topic(event.event_id)):
        expected.pop(json.loads(value)["t"], None)
    return sorted(expected.values(), key=lambda u: u[1])


def audit_run(s: Any, event: Any, r: Any, bulk: BulkShoppers, http_results: dict[str, Any],
              onsale_at: float) -> dict[str, Any]:
    from store import keys, redis_clients

    sync: Any = redis_clients.primary_sync(s, socket_timeout=120)
    e = event.event_id
    t0 = time.perf_counter()
    joins_records = 0
    first: dict[str, tuple[int, int]] = {}  # ticket -> (earliest stamp ms, its uncertainty ms)
    for value in read_topic(s.kafka_bootstrap, s.joins_topic(e)):
        j = json.loads(value)
        joins_records += 1
        known = first.get(j["t"])
        if known is None or j["at"] < known[0]:
            first[j["t"]] = (int(j["at"]), int(j["unc"]))
    log = [json.loads(x) for x in sync.lrange(keys.queue_log(e), 0, -1)]
    places = [k.decode() for k in sync.hkeys(keys.queue_places(e))]
    prequeue = [x.decode().split("|", 1)[0] for x in sync.lrange(keys.queue_prequeue(e), 0, -1)]
    room = {k.decode(): v.decode() for k, v in sync.hgetall(keys.room(e)).items()}
    ledger_raw = read_topic(s.kafka_bootstrap, s.ledger_topic)
    bookings = [b for b in (json.loads(v) for v in ledger_raw) if b.get("event_id") == e]
    sync.close()
    seats = {sid for b in event.venue.blocks for sid in b.seat_ids()}
    confirmed = list(bulk.tally.confirmed) + [c["booking_id"] for c in http_results["clients"]
                                               if c.get("booking_id")]
    ledger = audit.audit_ledger(bookings, seats, confirmed)
    log_tickets = [x["ticket_id"] for x in log]
    queue = audit.audit_queue(first.keys(), log_tickets, places + prequeue,
                              room.get("sold_out") == "1")
    # fairness: true arrival intervals; the pre-queue (lottery) is left out
    onsale_ms = onsale_at * 1000
    rank = {t: i for i, t in enumerate(dict.fromkeys(log_tickets))}
    http_by_ticket = {c["ticket_id"]: c for c in http_results["clients"] if c.get("ticket_id")}
    lo, hi, rk = [], [], []
    for t, (at, unc) in first.items():
        if at < onsale_ms:
            continue
        c = http_by_ticket.get(t)
        if c is not None:  # the client's own send..receive window (its true arrival is in it)
            a, b = c["join_send"] * 1000, c["join_recv"] * 1000
        else:
            a, b = at - unc, at + unc
        lo.append(a)
        hi.append(b)
        rk.append(rank.get(t, math.inf))
    share, inverted, ordered = audit.inversion_share(np.array(lo), np.array(hi), np.array(rk))
    sold = ledger.seats_sold
    turned_away = queue.told_sold_out + bulk.tally.outcomes.get("no_seats_after_admission", 0)
    return {
        "joins_records": joins_records, "joined_users": queue.joined,
        "joins_at_ms": sorted(at for at, _ in first.values()),
        "admitted_at_ms": [x["admitted_at_ms"] for x in log],
        "admitted_at_by_seq": {x["seq"]: x["admitted_at_ms"] for x in log},
        "ledger": dataclasses.asdict(ledger), "queue": dataclasses.asdict(queue),
        "fairness": {"share": share, "inverted_pairs": inverted, "ordered_pairs": ordered,
                     "users_compared": len(lo),
                     "prequeue_users_left_out": sum(1 for at, _ in first.values() if at < onsale_ms),
                     "how": "pairs ordered beyond the clock uncertainty (bulk: stamp +- 3 ms; "
                            "HTTP: the client's send..receive window) admitted in the other "
                            "order, or the earlier never admitted"},
        "unsold_while_demand": audit.unsold_while_demand(len(seats), sold, turned_away),
        "sale_times": sorted(b["confirmed_at"] for b in bookings),
        "audit_s": round(time.perf_counter() - t0, 1)}


# -------------------------------------------------------------------------------------------


async def measure_baselines(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    args, s = run.args, run.settings
    event = result["event"]
    seat_ids = [sid for b in event.venue.blocks for sid in b.seat_ids()]
    out: dict[str, Any] = {}
    steps = [
        ("naive_set_nx", "naive SET NX EX, no waiting room", lambda: baselines.naive(
            s.redis_url, seat_ids, args.users, crowd.Behaviour(think_scale=args.think_scale),
            args.seed, args.hold_ttl, args.naive_concurrency, timeout_s=min(args.timeout, 180.0))),
        ("redis_set_nx_ceiling", "raw Redis SET NX EX",
         lambda: baselines.redis_set_nx_ceiling(s.redis_url, 300_000)),
        ("kafka_ceiling", "raw Kafka produce / consume / acked produce",
         lambda: asyncio.to_thread(baselines.kafka_ceilings, s.kafka_bootstrap,
                                   s.kafka_topic_prefix, min(args.users, 500_000), 500))]
    for key, label, step in steps:
        print(f"baseline: {label} ...", flush=True)
        try:
            out[key] = await step()
        except Exception as exc:  # keep the on-sale's results and the other baselines
            out[key] = {"error": repr(exc)}
    return out


def run_against(settings: Any, base_url: str, args: argparse.Namespace, out: Path,
                own: OwnStack | ProcStack | None = None) -> dict[str, Any]:
    """The on-sale, the baselines and the report against a stack that is up (Ray connected);
    returns report.json's content. The integration test calls this on the test session's stack."""
    plan = chaos.parse(args.chaos)
    chaos.check_allowed(plan, own_stack=own is not None)
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    t_start = time.time()
    run = Run(args, settings, base_url.rstrip("/"), out, own, plan)
    result = asyncio.run(onsale(run))
    result["baselines"] = {} if args.no_baselines else asyncio.run(measure_baselines(run, result))
    info["loadavg_at_end"] = list(os.getloadavg())
    return report.write(out, args, info, result, own_stack=own is not None,
                        wall_s=time.time() - t_start)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = chaos.parse(args.chaos)
    chaos.check_allowed(plan, own_stack=not args.base_url)
    out = Path(args.out) if args.out else (
        REPO / "benchmarks" / "results" / "onsale" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    kind = chaos.stack_kind(plan)
    own: OwnStack | ProcStack | None = None
    try:
        if args.base_url:
            summary = run_against(attach_stack(), args.base_url, args, out)
        elif kind == "process":  # every service a process, as `make up` runs them
            actions = {c.action for c in plan}
            own = ProcStack(args, redis_ha=bool(actions & set(procstack.REDIS_HA)),
                            kafka_cluster=bool(actions & set(procstack.KAFKA_CLUSTER)))
            own.__enter__()
            summary = run_against(own.settings, f"http://127.0.0.1:{own.settings.http_port}",
                                  args, out, own)
        else:
            own = OwnStack(args, two_nodes=any(c.action == "kill-node" for c in plan)).__enter__()
            summary = run_against(own.settings, f"http://127.0.0.1:{own.settings.http_port}",
                                  args, out, own)
    finally:
        if own is not None:
            own.__exit__(None, None, None)
        else:
            with contextlib.suppress(Exception):
                import ray

                ray.shutdown()
    print(report.headline_text(summary))
    print(f"wrote {out}/report.md, report.json and plots")
    ok = (summary["oversold"] == 0 and summary["lost_users"] == 0
          and summary["admitted_twice"] == 0 and summary["finished"])
    return 0 if ok else 1
