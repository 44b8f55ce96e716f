"""The on-sale's own stack as `make up` runs one: every service a process of its own, started
by `infra.stack.up()` (and the `start_*` of `infra.stack`, `infra.sentinel`,
`infra.kafka_cluster`) on the benchmark's own ports and state dir, Ray a `ray start --head`
with its GCS on a Redis of its own (GCS fault tolerance), Serve deployed into it. The driver
is a client of that Ray, not its head, so the faults that take processes of the stack away
can be made to it:

  failover-redis      Redis HA (a primary, two replicas, three Sentinels): kill -9 the primary
  kill-kafka-broker   the three-node KRaft cluster (RF 3, min ISR 2): kill -9 the broker that
                      leads the most partitions of the event's joins topic and the ledger
  restart-ray-head    kill -9 the whole Ray (the head: GCS, raylet, workers, hosts, Serve), then
                      start it again on its GCS Redis (`up()`); Serve comes back
  power-loss          kill -9 every process of the stack at once, then `up()` again

The in-process stack (`driver.OwnStack`: Redis, Kafka and NTP processes, Ray in the driver)
stays the one for the other faults.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from infra import stack

STATE = "/tmp/ticketing-bench-procstack"
# Own ports, apart from `make up` (6379, 9092, 6385, 8000, ...), the test stacks at port
# offsets 0 to 1000 (6391-7411, 19092-20097, 29092-30097, 8100-9264, 26401-27403) and the
# in-process on-sale stack (driver.PORTS: 6620, 39292, 8620).
REDIS_PORT = 6640  # replica(s) on 6641 (6642); Sentinels on 26640-26642 (infra.sentinel)
KAFKA_PORT = 29640  # one broker: 29640 + controller 29641; three: 29640-29645
NTP_PORT = 11640
HTTP_PORT = 8640
HAPROXY_STATS, HAPROXY_METRICS, FALLBACK_HTTP, FALLBACK_GRPC = 8644, 9344, 8740, 9740
# (below the ephemeral range, 32768-60999, where an outbound connection may hold a port, and
# above Ray's worker ports, 10002-19999)
RAY_PORTS = stack.RayPorts(gcs=6645, gcs_redis=6647, client=20640, metrics_export=22640,
                           agent=22650, agent_grpc=22660, runtime_env=22670)
# faults -> what the stack runs in: Redis HA, the Kafka cluster
REDIS_HA = ("failover-redis",)
KAFKA_CLUSTER = ("kill-kafka-broker",)


class ProcStack:
    """Start, fault and stop the benchmark's process stack; `settings` as the app has them."""

    def __init__(self, args: Any, redis_ha: bool = False, kafka_cluster: bool = False,
                 state: str = STATE) -> None:
        self.args, self.redis_ha, self.kafka_cluster = args, redis_ha, kafka_cluster
        self.state = Path(state)
        self.env: dict[str, str] = {}
        self.settings: Any = None
        self.address = f"127.0.0.1:{RAY_PORTS.gcs}"

    # -- start and stop ------------------------------------------------------------------
    def __enter__(self) -> ProcStack:
        self._clear()
        self.state.mkdir(parents=True)
        try:
            self.env = self._env()
            # Ray reads these when it is first imported: the stack's token, and a Ray API called
            # while the driver is disconnected (a fault) must fail, not start a local Ray of
            # its own (Ray's auto-init)
            for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN"):
                if key in self.env:
                    os.environ[key] = self.env[key]
            os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
            from ray._private import auto_init_hook

            auto_init_hook.enable_auto_connect = False  # if Ray was imported before
            self.start()
            self.connect()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _clear(self) -> None:
        """A previous run's leftovers in our own state dir: stopped, and its data removed."""
        if self.state.exists():
            with contextlib.suppress(Exception):
                stack.down(self.state, RAY_PORTS)
            shutil.rmtree(self.state, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        from benchmarks._common import SERVE_ENV
        from infra import credentials, kafka_cluster, sentinel

        a = self.args
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
        env.update(SERVE_ENV)
        env.update(stack.serve_ports_env(HAPROXY_STATS, HAPROXY_METRICS, FALLBACK_HTTP,
                                         FALLBACK_GRPC))
        env.update({
            "TICKETING_STATE_DIR": str(self.state), "HTTP_PORT": str(HTTP_PORT),
            "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "NTP_SERVERS": f"127.0.0.1:{NTP_PORT}", "KAFKA_TOPIC_PREFIX": "onsale",
            "JOIN_RATE_PER_S": "1e9", "STATUS_RATE_PER_S": "1e9", "USER_RATE_PER_S": "1e9",
            "SIGNIN_RATE_PER_S": "1e9", "ADMISSION_TTL_S": str(a.admission_ttl),
            # every simulated client comes from 127.0.0.1 (as driver.PORTS' serve_env)
            "INGRESS_CONN_PER_ADDR_MAX": "100000"})
        if self.redis_ha:
            env.update(sentinel.settings_env(self._sentinel_ports()))
        else:
            env["REDIS_REPLICA_URLS"] = f"redis://127.0.0.1:{REDIS_PORT + 1}/0"
        if self.kafka_cluster:
            nodes = kafka_cluster.nodes_at(KAFKA_PORT)
            env["KAFKA_BOOTSTRAP"] = kafka_cluster.bootstrap_of(nodes)
            env["KAFKA_REPLICATION_FACTOR"] = str(kafka_cluster.REPLICATION_FACTOR)
            env["KAFKA_MIN_INSYNC_REPLICAS"] = str(kafka_cluster.MIN_INSYNC_REPLICAS)
        else:
            env["KAFKA_BOOTSTRAP"] = f"127.0.0.1:{KAFKA_PORT}"
        credentials.ensure(self.state)
        return credentials.stack_env(env, self.state)

    @staticmethod
    def _sentinel_ports() -> tuple[int, ...]:
        from infra import sentinel

        return sentinel.topology_ports(REDIS_PORT)[1]

    def start(self) -> None:
        """Start what is not running, as `make up` does (the first start, and the restart after
        a power loss): the data services by their infra start functions on our ports, then
        `infra.stack.up()`, which checks them and starts Ray (GCS on its Redis) and Serve."""
        from infra import kafka_cluster, sentinel

        d = self.state
        if self.redis_ha:
            replicas, sentinels = sentinel.topology_ports(REDIS_PORT)
            sentinel.start(REDIS_PORT, replicas, sentinels, d)
        else:
            stack.start_redis(REDIS_PORT, d)
            stack.start_redis_replica(REDIS_PORT + 1, REDIS_PORT, d)
        if self.kafka_cluster:
            kafka_cluster.start_cluster(KAFKA_PORT, d)
        else:
            stack.start_kafka(KAFKA_PORT, KAFKA_PORT + 1, d)
        stack.start_ntp(NTP_PORT, d)
        stack.up(env=dict(self.env), state=d, ha=self.redis_ha, ports=RAY_PORTS)
        if self.settings is None:
            from domain.settings import Settings

            self.settings = Settings.from_env(self.env)

    def connect(self) -> None:
        """Connect this process (the on-sale's driver) to the stack's Ray, as a client."""
        import ray

        from benchmarks._common import _raise_interrupt

        ray.init(address=self.address, namespace=self.settings.ray_namespace,
                 log_to_driver=False)
        # Ray puts in its own SIGTERM handler, which exits without stopping our services
        signal.signal(signal.SIGTERM, _raise_interrupt)

    @staticmethod
    def disconnect() -> None:
        import ray

        if ray.is_initialized():
            with contextlib.suppress(Exception):
                ray.shutdown()

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()
        with contextlib.suppress(Exception):
            stack.down(self.state, RAY_PORTS)

    # -- faults --------------------------------------------------------------------------
    def failover_redis(self) -> str:
        from infra import sentinel

        port = sentinel.kill_primary(self.state, self._sentinel_ports())
        return f"kill -9 of the Redis primary 127.0.0.1:{port} (Sentinel promotes a replica)"

    def kill_kafka_broker(self, event_id: str) -> str:
        """kill -9 the broker leading the most partitions of the event's joins and the ledger."""
        from infra import kafka_cluster

        s = self.settings
        bootstrap = s.kafka_bootstrap
        led: dict[int, list[str]] = {}
        for topic in (s.joins_topic(event_id), s.ledger_topic):
            for p in range(_partitions(bootstrap, topic)):
                leader, _ = kafka_cluster.partition_state(bootstrap, topic, p)
                led.setdefault(leader, []).append(f"{topic}[{p}]")
        node_id = max(led, key=lambda n: len(led[n]))
        node = next(n for n in kafka_cluster.nodes_at(KAFKA_PORT) if n.node_id == node_id)
        kafka_cluster.kill_node(node, self.state)
        return (f"kill -9 of broker {node_id} ({node.address}), leader of "
                f"{len(led[node_id])} partitions: {', '.join(led[node_id][:8])}")

    def kill_ray(self) -> str:
        return f"kill -9 of the Ray head's {stack.kill_ray(self.state)} processes"

    def power_loss(self) -> str:
        return f"kill -9 of all {stack.power_loss(self.state)} processes of the stack"

    def restart(self) -> float:
        """`up` again after a fault (what is running is left as it is); seconds it took."""
        t0 = time.monotonic()
        self.start()
        return round(time.monotonic() - t0, 2)


def _partitions(bootstrap: str, topic: str) -> int:
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    return len(meta.topics[topic].partitions)
