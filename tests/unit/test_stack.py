"""The parts of infra/stack.py that need no service."""

from infra.stack import kafka_cluster_id


def test_a_kafka_cluster_id_never_starts_with_a_dash_the_storage_tool_would_take_as_an_option():
    draws = iter([b"\xf8" + bytes(15), b"\x00" * 16])  # the first encodes to "-A..."
    assert kafka_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAA"


def test_a_kafka_cluster_id_is_22_url_safe_characters():
    cluster_id = kafka_cluster_id()
    assert len(cluster_id) == 22 and "=" not in cluster_id


def test_ray_ports_default_to_make_ups_and_name_only_the_agent_ports_that_are_set():
    from infra import stack

    default = stack.RayPorts()
    assert (default.gcs, default.gcs_redis, default.client, default.metrics_export) == (
        stack.RAY_GCS_PORT, stack.RAY_GCS_REDIS_PORT, stack.RAY_CLIENT_PORT,
        stack.RAY_METRICS_EXPORT_PORT)
    assert default.extra_args() == ()
    own = stack.RayPorts(gcs=1, agent=52650, runtime_env=52670)
    assert own.extra_args() == ("--dashboard-agent-listen-port=52650",
                                "--runtime-env-agent-port=52670")
