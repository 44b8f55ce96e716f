"""Every port a Serve stack binds besides its public one is named in one place."""

from infra import stack


def test_a_stack_names_its_haproxy_and_fallback_proxy_ports_together() -> None:
    assert stack.serve_ports_env(8414, 9114, 8140, 9140) == {
        "RAY_SERVE_HAPROXY_STATS_PORT": "8414", "RAY_SERVE_HAPROXY_METRICS_PORT": "9114",
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": "8140", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": "9140"}


def test_a_fallback_port_of_zero_leaves_rays_default() -> None:
    assert stack.serve_ports_env(8424, 9124) == {
        "RAY_SERVE_HAPROXY_STATS_PORT": "8424", "RAY_SERVE_HAPROXY_METRICS_PORT": "9124"}
