"""cluster.yaml and serve_config.yaml pass Ray's own validation (no cloud credentials needed)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVE_SWITCHES = (
    "RAY_SERVE_ENABLE_HA_PROXY=1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED=1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED=0",
    "RAY_SERVE_HAPROXY_NBTHREAD=1",
    "RAY_SERVE_HAPROXY_MAXCONN=",
)


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def test_cluster_yaml_passes_ray_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    # validate_config expects defaults filled in, as `ray up` does (prepare_config).
    prepared = prepare_config(_load("cluster.yaml"))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"
    worker = prepared["available_node_types"]["worker"]
    assert 0 < worker["min_workers"] <= worker["max_workers"] <= prepared["max_workers"]


def test_cluster_yaml_starts_ray_with_serve_switches_and_installs_project() -> None:
    raw = _load("cluster.yaml")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = " ".join(raw[key])
        for switch in SERVE_SWITCHES:
            assert switch in start, (key, switch)
        assert "ulimit -n" in start
        for hardening in ("RAY_AUTH_MODE=token", "RAY_SERVE_HAPROXY_BINARY_PATH=",
                          "CLIENT_ADDR_HEADER="):
            assert hardening in start, (key, hardening)
    assert any("haproxy_harden.install_wrapper" in cmd for cmd in raw["setup_commands"])
    assert any("pip install" in cmd and "ticketing" in cmd for cmd in raw["setup_commands"])


def test_validator_catches_a_broken_cluster_yaml() -> None:
    """The check above is not vacuous: the same validator rejects a bad field."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = prepare_config(_load("cluster.yaml"))
    broken["available_node_types"]["worker"]["min_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(copy.deepcopy(broken))


def test_serve_config_parses_with_serve_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(_load("serve_config.yaml"))
    (app,) = schema.applications
    assert app.import_path == "serve_app:app"
    assert app.route_prefix == "/"
    assert schema.http_options.port == 8000


def test_serve_config_import_path_exists() -> None:
    import serve_app

    assert hasattr(serve_app, "app")
