"""The parts of infra/kafka_cluster.py (HA mode's three-node Kafka) that need no service."""

from pathlib import Path

from infra.kafka_cluster import bootstrap_of, node_properties, nodes_at, voters_of
from infra.stack import gcs_ft_env


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_the_nodes_take_pairs_of_ports_from_the_base_the_single_broker_would_use():
    nodes = nodes_at(9092)
    assert [(n.node_id, n.port, n.controller_port) for n in nodes] == [
        (1, 9092, 9093), (2, 9094, 9095), (3, 9096, 9097)]
    assert bootstrap_of(nodes) == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


def test_every_node_is_a_broker_and_a_voter_of_one_three_controller_quorum():
    nodes = nodes_at(29092)
    configs = [props(node_properties(n, nodes, Path("/d"))) for n in nodes]
    assert {c["controller.quorum.voters"] for c in configs} == {voters_of(nodes)}
    assert voters_of(nodes) == "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert all(c["process.roles"] == "broker,controller" for c in configs)
    assert [c["advertised.listeners"] for c in configs] == [
        f"PLAINTEXT://127.0.0.1:{n.port}" for n in nodes]


def test_every_topic_the_cluster_makes_itself_has_three_replicas_and_two_in_sync():
    nodes = nodes_at(9092)
    config = props(node_properties(nodes[0], nodes, Path("/d")))
    for name in ("default.replication.factor", "offsets.topic.replication.factor",
                 "transaction.state.log.replication.factor",
                 "share.coordinator.state.topic.replication.factor"):
        assert config[name] == "3", name
    for name in ("min.insync.replicas", "transaction.state.log.min.isr",
                 "share.coordinator.state.topic.min.isr"):
        assert config[name] == "2", name
    assert config["unclean.leader.election.enable"] == "false"


def test_a_killed_broker_is_fenced_within_seconds_not_kafkas_default_nine():
    nodes = nodes_at(9092)
    config = props(node_properties(nodes[0], nodes, Path("/d")))
    assert int(config["broker.session.timeout.ms"]) <= 3000
    assert int(config["broker.heartbeat.interval.ms"]) < int(config["broker.session.timeout.ms"])


def test_the_head_keeps_its_gcs_in_the_redis_it_is_given_under_its_own_namespace():
    assert gcs_ft_env(6387) == {"RAY_REDIS_ADDRESS": "127.0.0.1:6387",
                                "RAY_external_storage_namespace": "ticketing"}
