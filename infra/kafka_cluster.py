"""A three-node KRaft Kafka cluster on loopback: the Kafka of HA mode (`make up HA=1`).

Each node is a combined broker and controller; the three controllers are a static Raft quorum
(`controller.quorum.voters`), so any one node can die (kill -9) and the other two keep a
controller majority, the partitions' leadership and `min.insync.replicas=2`. Every topic the
cluster makes itself (auto-created ones, `__consumer_offsets`, the transaction and share state)
is replicated three times with two in sync; the platform's own topics get the same from
KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS (`store.kafka_io.ensure_topic`).

A node's files live under the stack's state dir like the single broker's, named
`kafka-ha<id>-<port>` (so `infra.stack.down` and `status` find their pid files), and its data
directory is formatted only when new, with the cluster id kept in `kafka-ha.cluster-id`: a
node stopped or killed and started again rejoins the same cluster with its log. The bootstrap
list of all three nodes is written to `kafka-ha.bootstrap` for clients of the stack.

Heaps are small (three JVMs share a developer's machine with Redis, Ray and the app): a node
gets `HEAP` (the single broker gets 1 GiB), fewer network and I/O threads, and a broker that
stops heartbeating is fenced after `SESSION_TIMEOUT_MS`, which bounds how long the partitions
it led stay without a leader after it is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from infra import stack

NODES = 3
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
HEAP = "512m"
SESSION_TIMEOUT_MS = 3000  # Kafka's default 9 s: the RTO after a leader's kill -9
HEARTBEAT_INTERVAL_MS = 500
OFFSETS_PARTITIONS = 10  # __consumer_offsets: Kafka's 50 partitions x 3 replicas is for a fleet
BOOTSTRAP_FILE = "kafka-ha.bootstrap"
CLUSTER_ID_FILE = "kafka-ha.cluster-id"
MARKER = "kafka.Kafka"


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int

    @property
    def name(self) -> str:
        return f"kafka-ha{self.node_id}-{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def nodes_at(base_port: int, count: int = NODES) -> tuple[KafkaNode, ...]:
    """Node i (1-based) listens on base_port + 2(i-1), its controller on the port after it:
    9092..9097 for `make up HA=1`, the first node where the single broker would be."""
    return tuple(KafkaNode(i + 1, base_port + 2 * i, base_port + 2 * i + 1) for i in range(count))


def bootstrap_of(nodes: tuple[KafkaNode, ...]) -> str:
    return ",".join(node.address for node in nodes)


def voters_of(nodes: tuple[KafkaNode, ...]) -> str:
    return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)


def node_properties(node: KafkaNode, nodes: tuple[KafkaNode, ...], data_dir: Path) -> str:
    """server.properties of one node of the cluster."""
    rf, isr = str(REPLICATION_FACTOR), str(MIN_INSYNC_REPLICAS)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters_of(nodes),
        "listeners": f"PLAINTEXT://{node.address},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "unclean.leader.election.enable": "false",  # never a leader that misses acked records
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": "0",
        "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
        "broker.heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.replica.fetchers": "1",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _jvm(node: KafkaNode, d: Path, heap: str) -> list[str]:
    java = shutil.which("java") or "java"
    log4j = d / node.name / "log4j2.yaml"
    return [java, f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={d / node.name}", "-cp", f"{stack.kafka_libs()}/*"]


def _cluster_id(d: Path) -> str:
    path = d / CLUSTER_ID_FILE
    if not path.exists():
        path.write_text(stack.kafka_cluster_id() + "\n")
    return path.read_text().strip()


def _prepare(node: KafkaNode, nodes: tuple[KafkaNode, ...], d: Path,
             heap: str) -> subprocess.Popen[bytes] | None:
    """Write the node's config; start formatting its storage if it is new (None if not)."""
    data_dir = d / node.name / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    props = d / node.name / "server.properties"
    props.write_text(node_properties(node, nodes, data_dir))
    (d / node.name / "log4j2.yaml").write_text(
        stack._KAFKA_LOG4J2.format(log_file=d / f"{node.name}.log"))
    if (data_dir / "meta.properties").exists():
        return None
    return subprocess.Popen(
        [*_jvm(node, d, heap), "kafka.tools.StorageTool", "format", "-t", _cluster_id(d),
         "-c", str(props)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def start_node(node: KafkaNode, nodes: tuple[KafkaNode, ...],
               state: str | os.PathLike[str] | None = None, heap: str = HEAP,
               timeout_s: float = 120.0) -> None:
    """Start one node (again) and wait until it answers; a no-op when it runs."""
    _spawn_nodes((node,), nodes, stack.state_dir(state), heap, timeout_s)


def _spawn_nodes(starting: tuple[KafkaNode, ...], nodes: tuple[KafkaNode, ...], d: Path,
                 heap: str, timeout_s: float) -> None:
    pending = []
    for node in starting:
        if stack._read_pid(d / f"{node.name}.pid", MARKER):
            continue
        for port in (node.port, node.controller_port):
            if stack._port_open(port):
                raise stack.StackError(f"port {port} is taken by a process not started from {d}")
        pending.append(node)
    formats = [(node, _prepare(node, nodes, d, heap)) for node in pending]
    for node, fmt in formats:  # the three storage tools run at once: each is a JVM start
        if fmt is not None:
            out, _ = fmt.communicate(timeout=180)
            if fmt.returncode != 0:
                raise stack.StackError(f"kafka storage format of {node.name} failed: "
                                       f"{out.decode(errors='replace')}")
    pids = {node: stack._spawn([*_jvm(node, d, heap), MARKER, str(d / node.name /
                                                                  "server.properties")],
                               d / f"{node.name}.pid", d / f"{node.name}.out")
            for node in pending}
    for node, pid in pids.items():
        stack._wait(node.name, partial(_answers, node), timeout_s, pid, d / f"{node.name}.out")


def _answers(node: KafkaNode) -> bool:
    return stack._port_open(node.port) and stack.kafka_answers(node.address)


def start_cluster(base_port: int, state: str | os.PathLike[str] | None = None,
                  heap: str = HEAP, timeout_s: float = 180.0) -> str:
    """Start the nodes that are not running; return the bootstrap list once all three are
    registered brokers (so a topic with three replicas can be created)."""
    d = stack.state_dir(state)
    nodes = nodes_at(base_port)
    _spawn_nodes(nodes, nodes, d, heap, timeout_s)
    bootstrap = bootstrap_of(nodes)
    stack._wait("kafka cluster", lambda: len(brokers(bootstrap)) == len(nodes), timeout_s)
    (d / BOOTSTRAP_FILE).write_text(bootstrap + "\n")
    return bootstrap


def running_bootstrap(state: str | os.PathLike[str] | None = None) -> str | None:
    """The bootstrap list of the cluster started in this state dir, if one was."""
    path = stack.state_dir(state) / BOOTSTRAP_FILE
    return path.read_text().strip() if path.exists() else None


def stop_cluster(base_port: int, state: str | os.PathLike[str] | None = None,
                 timeout_s: float = 30.0) -> list[str]:
    """SIGTERM every node at once (one by one, the last ones would wait for a controller
    quorum that is leaving), SIGKILL after timeout_s; the data stays."""
    d = stack.state_dir(state)
    (d / BOOTSTRAP_FILE).unlink(missing_ok=True)
    running = {}
    for node in nodes_at(base_port):
        pid = stack._read_pid(d / f"{node.name}.pid", MARKER)
        (d / f"{node.name}.pid").unlink(missing_ok=True)
        if pid is not None:
            running[node.name] = pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(stack._alive(p) for p in running.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in running.values():
        if stack._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(stack._alive(p) for p in running.values()):
        time.sleep(0.05)
    return sorted(running)


def kill_node(node: KafkaNode, state: str | os.PathLike[str] | None = None) -> None:
    """kill -9 one node (a crash: no controlled shutdown, no flush); its data stays."""
    d = stack.state_dir(state)
    pid = stack._read_pid(d / f"{node.name}.pid", MARKER)
    if pid is None:
        raise stack.StackError(f"{node.name} is not running")
    os.kill(pid, signal.SIGKILL)
    while stack._alive(pid):
        time.sleep(0.05)
    (d / f"{node.name}.pid").unlink(missing_ok=True)


def _admin(bootstrap: str) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketing-kafka-cluster",
                            request_timeout_ms=5000)


def brokers(bootstrap: str) -> list[int]:
    """Node ids of the brokers the cluster's metadata lists (the live, unfenced ones)."""
    admin = _admin(bootstrap)
    try:
        return sorted(int(b["broker_id"]) for b in admin.describe_cluster()["brokers"])
    finally:
        admin.close()


def partition_state(bootstrap: str, topic: str, partition: int) -> tuple[int, list[int]]:
    """(leader node id, in-sync replica ids) of one partition, as the metadata has them."""
    admin = _admin(bootstrap)
    try:
        [described] = admin.describe_topics([topic])
        for p in described["partitions"]:  # kafka-python 3: the protocol's field names
            if p["partition_index"] == partition:
                return int(p["leader_id"]), sorted(p["isr_nodes"])
        raise stack.StackError(f"{topic} has no partition {partition}")
    finally:
        admin.close()
