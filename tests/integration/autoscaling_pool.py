"""The autoscaling scenario of the host pool, on a Ray cluster of its own (run by a test).

The test session already has a Ray cluster connected in the pytest process, and Ray's fake
multi-node autoscaler needs a head started by `ray start --head --autoscaling-config` (its
monitor is what launches and terminates the fake nodes), so this runs as a subprocess:

1. starts a head (own GCS and client ports, own temp dir under --state-dir, no dashboard) with
   one CPU and one "hostnode": room for host 0 only. Every process of that cluster, the fake
   worker nodes included, shares the session id of its `ray start`, written to
   <state-dir>/ray.sid, so `infra.stack.stop_ray(state_dir)` stops exactly this cluster;
2. creates events through their owners: the pool wants one host per event, hosts 1.. cannot
   fit, stay pending, and that demand makes the autoscaler add worker nodes;
3. once the hosts answer and are members, activates the events' seat blocks and records on
   which node each one is active;
4. closes the events: the pool shrinks to host 0, the retired hosts stop, and the idle worker
   nodes are terminated.

`ray start` turns Ray's token auth on, and Ray reads its auth settings when it is imported:
run this with RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH naming a token of this cluster's own
(`auth_env` makes them). Settings (JSON) come on stdin; the last stdout line is
`RESULT <json>`; the cluster is stopped before it exits, whatever happened (the test stops it
again from the sid file if this process itself was killed).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import redis
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider

from actors import directory
from domain import placement
from domain.event import Event
from domain.settings import Settings
from domain.venue import Section
from infra import stack
from store import keys

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_RESOURCE = "hostnode"
PROVIDER = "tests.integration.autoscaling_pool.FixedPortsFakeProvider"  # not __main__'s name
OBJECT_STORE_BYTES = 100_000_000  # each fake node's plasma store (Ray's default is 30% of RAM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class FixedPortsFakeProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider, each node's agent ports fixed before it starts.

    A raylet with dynamic agent ports waits for its agents to write them to files before it
    registers, and a node gets 30 s to register: more than a loaded 2-core box may need, and a
    launch that fails so leaves a half-started node behind. (The head gets fixed ports from
    `ray start`'s options.) Loaded by the autoscaler's monitor as an "external" provider.
    """

    def _create_node_with_resources_and_labels(self, node_config: Any, tags: Any, count: Any,
                                               resources: Any, labels: Any) -> None:
        parameter = ray._private.parameter
        make_params = parameter.RayParams

        def with_fixed_ports(*args: Any, **kwargs: Any) -> Any:
            kwargs.update(metrics_agent_port=free_port(), metrics_export_port=free_port(),
                          dashboard_agent_listen_port=free_port(),
                          runtime_env_agent_port=free_port())
            return make_params(*args, **kwargs)

        with self.lock:  # the provider builds one node at a time under this (reentrant) lock
            parameter.RayParams = with_fixed_ports  # type: ignore[misc,assignment]
            try:
                super()._create_node_with_resources_and_labels(node_config, tags, count,
                                                               resources, labels)
            finally:
                parameter.RayParams = make_params  # type: ignore[misc]


def autoscaling_config(gcs_address: str, max_workers: int) -> dict[str, Any]:
    """Ray's fake_multinode example config: worker nodes fit one host each (one CPU, and the
    resource hosts need); idle ones go after 3 s."""
    return {
        "cluster_name": "ticketing-autoscale",
        "max_workers": max_workers,
        "provider": {"type": "external", "module": PROVIDER,
                     "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": gcs_address},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1, NODE_RESOURCE: 1}, "node_config": {},
                                 "max_workers": 0},
            "ray.worker.host": {"resources": {"CPU": 1, NODE_RESOURCE: 1,
                                              "object_store_memory": OBJECT_STORE_BYTES},
                                "node_config": {}, "min_workers": 0, "max_workers": max_workers},
        },
        "head_node_type": "ray.head.default",
        "auth": {}, "docker": {}, "upscaling_speed": 1.0, "idle_timeout_minutes": 0.05,
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [], "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    }


def auth_env(state: Path) -> dict[str, str]:
    """Environment for this module: a new Ray auth token, mode 600, in the state dir."""
    state.mkdir(parents=True, exist_ok=True)
    token = state / "ray-auth-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def start_head(state: Path, max_workers: int) -> str:
    """`ray start --head` with the fake autoscaler, in a new session; the GCS address."""
    state.mkdir(parents=True, exist_ok=True)
    gcs_address = f"{ray.util.get_node_ip_address()}:{free_port()}"
    config = state / "autoscaling.json"
    config.write_text(json.dumps(autoscaling_config(gcs_address, max_workers)))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # a loaded 2-core box starts a node's agents in tens of seconds: Ray's raylet would give up
    env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1",
               RAY_USAGE_STATS_ENABLED="0", RAY_agent_register_timeout_ms="180000",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH"))
                                          if p))
    sibling = Path(sys.executable).with_name("ray")
    ray_cli = str(sibling) if sibling.exists() else shutil.which("ray") or "ray"
    cmd = [ray_cli, "start", "--head", f"--port={gcs_address.rsplit(':', 1)[1]}",
           "--num-cpus=1", f"--resources={json.dumps({NODE_RESOURCE: 1})}",
           f"--object-store-memory={OBJECT_STORE_BYTES}", f"--autoscaling-config={config}",
           f"--temp-dir={state / 'ray'}", f"--ray-client-server-port={free_port()}",
           "--include-dashboard=false", "--disable-usage-stats",
           # fixed agent ports: the raylet waits for no port file (which a loaded box can take
           # longer to write than it waits), and Ray's default 52365 may be another cluster's
           f"--metrics-export-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
           f"--dashboard-agent-listen-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}"]
    with open(state / "ray-start.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (state / "ray.sid").write_text(f"{proc.pid}\n")
    if proc.wait(timeout=180) != 0:
        raise RuntimeError(f"ray start failed; see {state / 'ray-start.log'}")
    return gcs_address


def wait_until(what: str, check: Callable[[], Any], timeout_s: float,
               every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(every_s)


def alive_nodes() -> int:
    return sum(1 for n in ray.nodes() if n["Alive"])


def event_with_block_on(host: int, members: set[int], serial: int) -> Event:
    """An event whose block 0 rendezvous-hashes to `host` over `members`: the spread over
    nodes is then decided by the ids, not left to chance."""
    for n in range(serial * 10_000, (serial + 1) * 10_000):
        event_id = f"ev{n:012x}"
        if placement.owner(placement.block_entity(event_id, 0), members) == host:
            return Event(event_id, f"Autoscaling {host}", time.time(), 600, 6,
                         (Section("A", 2, 10, 1000),), 10)
    raise LookupError("no such event id")


def run(settings: Settings, state: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    wanted = settings.host_pool_max
    gcs_address = start_head(state, max_workers=wanted - 1)
    mark("head_started")
    ray.init(address=gcs_address, namespace=settings.ray_namespace, log_to_driver=False)
    store = redis.Redis.from_url(settings.redis_url)
    store.flushdb()

    def members() -> set[int]:
        return {int(m) for m in store.smembers(keys.pool_members())}

    pool = directory.of(settings)
    ray.get(pool.host(0).ping.remote(), timeout=120)
    wait_until("host 0 publishes itself", lambda: members() == {0}, 30)
    nodes_at_start = alive_nodes()
    everyone = set(range(wanted))
    events = [event_with_block_on(i, everyone, i) for i in range(wanted)]
    for event in events:
        ray.get(directory.event_owner(settings, event).create.remote(event), timeout=60)
    mark("events_created")

    members_on_one_node: list[int] = []

    def grown() -> bool:
        current, nodes = members(), alive_nodes()
        if nodes == 1:  # while only the head runs, hosts 1.. cannot run: they are pending
            members_on_one_node[:] = sorted(current)
        return current == everyone and nodes == wanted

    wait_until("the autoscaler adds nodes and the pool grows", grown, 240, every_s=1)
    mark("pool_grown")
    pool.refresh()
    blocks = [directory.seat_block(settings, e.event_id, b.index)
              for e in events for b in e.venue.blocks]
    ray.get([b.ping.remote() for b in blocks], timeout=120)

    def placed() -> dict[str, str] | None:
        """Entity -> node, once every block is active on its owner and nowhere else."""
        where: dict[str, str] = {}
        for index in sorted(everyone):
            host = pool.host(index)
            node = ray.get(host.node.remote(), timeout=30)
            for entity in ray.get(host.active.remote(), timeout=30):
                if entity.startswith("block:"):
                    if entity in where or placement.owner(entity, everyone) != index:
                        return None  # a hand-off still under way
                    where[entity] = node
        return where if len(where) == len(blocks) else None

    where = wait_until("every block is active on its owner", placed, 60)
    mark("blocks_placed")
    host_nodes = {i: ray.get(pool.host(i).node.remote(), timeout=30) for i in sorted(everyone)}
    peak_nodes = alive_nodes()

    for event in events:
        ray.get(directory.event_owner(settings, event).close.remote(), timeout=60)
    mark("events_closed")
    wait_until("the pool shrinks to host 0", lambda: members() == {0}, 60)

    def retired_gone() -> bool:
        for index in sorted(everyone - {0}):
            try:
                ray.get_actor(directory.host_name(index), namespace=settings.ray_namespace)
                return False
            except ValueError:
                continue
        return True

    wait_until("the retired hosts stop", retired_gone, 60)
    mark("pool_shrunk")
    wait_until("the idle nodes are terminated", lambda: alive_nodes() == nodes_at_start, 180,
               every_s=1)
    mark("nodes_gone")
    return {
        "nodes_at_start": nodes_at_start, "peak_nodes": peak_nodes,
        "members_on_one_node": members_on_one_node, "entity_nodes": where,
        "host_nodes": host_nodes, "members_after": sorted(members()),
        "nodes_after": alive_nodes(), "open_events_after": store.zcard(keys.open_events()),
        "timings_s": timings,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in json.loads(sys.stdin.read()).items()}
    settings = Settings(**fields)
    settings.validate()
    state = Path(args.state_dir)
    try:
        result = run(settings, state)
    except Exception as error:  # reported to the test, which fails with it
        result = {"error": f"{type(error).__name__}: {error}"}
    finally:
        ray.shutdown()
        stack.stop_ray(state)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
