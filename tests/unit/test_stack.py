"""The parts of infra/stack.py that need no service."""

from infra.stack import kafka_cluster_id


def test_a_kafka_cluster_id_never_starts_with_a_dash_the_storage_tool_would_take_as_an_option():
    draws = iter([b"\xf8" + bytes(15), b"\x00" * 16])  # the first encodes to "-A..."
    assert kafka_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAA"


def test_a_kafka_cluster_id_is_22_url_safe_characters():
    cluster_id = kafka_cluster_id()
    assert len(cluster_id) == 22 and "=" not in cluster_id
