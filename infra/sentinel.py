"""Redis HA on loopback: a primary, two replicas and three Sentinels (`make up HA=1`).

Debian's redis-server binary runs the Sentinels too (`redis-server sentinel.conf --sentinel`;
no redis-sentinel package is needed). The Sentinels monitor the primary under one name
(REDIS_MASTER_NAME); when QUORUM of them have not heard it for DOWN_AFTER_MS, one of them
promotes the most up-to-date replica and points the other replica at it. Every platform
client asks the Sentinels where the primary is (store/redis_clients.py), so it follows.

The timings suit tests and a laptop (a dead primary is replaced in ~2-3 s); production would
use a few seconds more to ride out a GC pause or a network blip without a failover:

- DOWN_AFTER_MS 1000: a primary silent this long is down (subjectively; QUORUM Sentinels
  agreeing make it objectively down and start a failover).
- FAILOVER_TIMEOUT_MS 5000: a failover that has not finished by then is retried by another
  Sentinel (also the least time between two failovers of the same primary).
- every node (any may become primary) refuses writes while fewer than MIN_REPLICAS_TO_WRITE
  replicas have acknowledged within MIN_REPLICAS_MAX_LAG_S: a primary cut off from its
  replicas stops taking writes a failover would lose.

Who is primary changes at run time (Sentinel rewrites the nodes' and its own configs); a
restart (`up --ha` after `down` or a crash) asks the Sentinels, or reads what they last wrote,
and starts each node as primary or replica accordingly.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from infra import stack

MASTER_NAME = "ticketing"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
MIN_REPLICAS_TO_WRITE = 1
MIN_REPLICAS_MAX_LAG_S = 5
# `make up HA=1`: the primary on REDIS_URL's port (6379), the replicas on the next two ports
# (6380, 6381), the Sentinels 20000 above the three (26379-26381).
SENTINEL_PORT_SHIFT = 20000
REPLICA_PORTS = (6380, 6381)
SENTINEL_PORTS = (26379, 26380, 26381)


def topology_ports(primary_port: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(replica ports, Sentinel ports) of the topology whose primary starts on primary_port."""
    nodes = (primary_port, primary_port + 1, primary_port + 2)
    return nodes[1:], tuple(port + SENTINEL_PORT_SHIFT for port in nodes)
# What `up --ha` tells every client of the stack (read back by infra.stack.client_env).
ENV_FILE = "redis-ha.env"


def node_conf_extra() -> str:
    return (f"min-replicas-to-write {MIN_REPLICAS_TO_WRITE}\n"
            f"min-replicas-max-lag {MIN_REPLICAS_MAX_LAG_S}\n")


def settings_env(sentinel_ports: tuple[int, ...], master_name: str = MASTER_NAME,
                 ) -> dict[str, str]:
    """The settings every client of this topology needs (domain/settings.py)."""
    return {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in sentinel_ports),
            "REDIS_MASTER_NAME": master_name, "REDIS_WAIT_REPLICAS": "1"}


def _sentinel_conf(port: int, work: Path, primary_port: int, master_name: str) -> str:
    return "\n".join([
        "bind 127.0.0.1",
        f"port {port}",
        "daemonize no",
        f"dir {work}",
        f"logfile {work.parent / f'sentinel-{port}.log'}",
        f"sentinel monitor {master_name} 127.0.0.1 {primary_port} {QUORUM}",
        f"sentinel down-after-milliseconds {master_name} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {master_name} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {master_name} 1",
        "",
    ])


def sentinel_master(port: int, master_name: str = MASTER_NAME,
                    timeout_s: float = 1.0) -> dict[str, str] | None:
    """What the Sentinel on 127.0.0.1:port knows of the primary (None if it does not answer)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                         decode_responses=True, retry=Retry(NoBackoff(), 0))
    try:
        state = client.execute_command("SENTINEL", "MASTER", master_name)
    except redis.RedisError:
        return None
    finally:
        client.close()
    if isinstance(state, dict):
        return {str(k): str(v) for k, v in state.items()}
    items = list(state)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def current_primary(state: Path, sentinel_ports: tuple[int, ...], default_port: int,
                    master_name: str = MASTER_NAME) -> int:
    """The primary's port: as a running Sentinel reports it, else as the Sentinels last wrote
    into their configs, else default_port (a new topology)."""
    for port in sentinel_ports:
        master = sentinel_master(port, master_name)
        if master and master.get("port"):
            return int(master["port"])
    for port in sentinel_ports:
        conf = state / f"sentinel-{port}" / "sentinel.conf"
        if conf.exists():
            for line in conf.read_text().splitlines():
                parts = line.split()
                if parts[:3] == ["sentinel", "monitor", master_name] and len(parts) >= 5:
                    return int(parts[4])
    return default_port


def start(primary_port: int, replica_ports: tuple[int, ...], sentinel_ports: tuple[int, ...],
          state: str | os.PathLike[str] | None = None, master_name: str = MASTER_NAME,
          timeout_s: float = 30.0) -> dict[str, str]:
    """Start (what is not running of) the nodes and the Sentinels; return once every Sentinel
    monitors the primary with all the replicas and the other Sentinels, so a failover can run.

    Returns service name -> where, as infra.stack.up() reports."""
    d = stack.state_dir(state)
    nodes = (primary_port, *replica_ports)
    primary = current_primary(d, sentinel_ports, primary_port, master_name)
    if primary not in nodes:
        raise stack.StackError(f"the Sentinels name 127.0.0.1:{primary} primary, which is not "
                               f"one of this topology's nodes {nodes}")
    started = {"redis": stack.start_redis(primary, d, extra=node_conf_extra())}
    for port in nodes:
        if port != primary:
            started[f"redis-replica-{port}"] = stack.start_redis_replica(
                port, primary, d, extra=node_conf_extra())
    for port in sentinel_ports:
        started[f"sentinel-{port}"] = start_sentinel(port, primary, d, master_name)
    expected = (str(len(nodes) - 1), str(len(sentinel_ports) - 1))

    def ready() -> bool:
        for port in sentinel_ports:
            master = sentinel_master(port, master_name)
            if master is None or (master.get("num-slaves"),
                                  master.get("num-other-sentinels")) != expected:
                return False
        return True

    stack._wait("redis sentinels", ready, timeout_s)
    (d / ENV_FILE).write_text("".join(
        f"{k}={v}\n" for k, v in settings_env(sentinel_ports, master_name).items()))
    return started


def start_sentinel(port: int, primary_port: int, state: Path,
                   master_name: str = MASTER_NAME, timeout_s: float = 20.0) -> str:
    """Start one Sentinel on 127.0.0.1:port; its config is written only the first time (it
    keeps what it learned there: the current primary, the replicas, the other Sentinels)."""
    name = f"sentinel-{port}"
    pid_file = state / f"{name}.pid"
    address = f"127.0.0.1:{port}"
    if stack._read_pid(pid_file, "redis-server"):
        return address
    if stack._port_open(port):
        raise stack.StackError(f"port {port} is taken by a process not started from {state}")
    work = state / name
    work.mkdir(exist_ok=True)
    conf = work / "sentinel.conf"
    if not conf.exists():
        conf.write_text(_sentinel_conf(port, work, primary_port, master_name))
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    pid = stack._spawn([redis_server, str(conf), "--sentinel"], pid_file,
                       state / f"{name}.out")
    stack._wait(name, lambda: sentinel_master(port, master_name) is not None, timeout_s, pid,
                state / f"{name}.log")
    return address


def stop(state: str | os.PathLike[str] | None = None) -> list[str]:
    """Stop the Sentinels first (so none starts a failover while the nodes stop), then
    forget the topology's client settings; infra.stack.down() stops the nodes."""
    d = stack.state_dir(state)
    stopped = []
    for pid_file in sorted(d.glob("sentinel-*.pid")):
        if stack._terminate(pid_file, "redis-server"):
            stopped.append(pid_file.stem)
    (d / ENV_FILE).unlink(missing_ok=True)
    return stopped


def client_env(state: Path) -> dict[str, str]:
    """The HA settings `up --ha` wrote for this state dir ({} when it runs no HA)."""
    try:
        lines = (state / ENV_FILE).read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def kill_primary(state: Path, sentinel_ports: tuple[int, ...],
                 master_name: str = MASTER_NAME) -> int:
    """SIGKILL the node the Sentinels name primary (a crash: no shutdown, no AOF flush);
    returns its port. For tests and chaos runs."""
    import signal

    port = current_primary(state, sentinel_ports, -1, master_name)
    pid = stack._read_pid(state / f"redis-{port}.pid", "redis-server")
    if pid is None:
        raise stack.StackError(f"the primary 127.0.0.1:{port} is not running from {state}")
    os.kill(pid, signal.SIGKILL)
    while stack._alive(pid):
        time.sleep(0.01)
    return port
