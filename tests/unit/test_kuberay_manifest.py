"""deploy/kuberay/rayservice.yaml is a RayService KubeRay accepts as written.

Checked against the `openAPIV3Schema` KubeRay publishes in its operator module (fetched by
`infra/kuberay.py` through the Go module proxy), including the rule the API server applies
silently: a field the schema does not know is pruned, so a typo would vanish without an error.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from domain.settings import Settings
from infra import kuberay

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
SECRET_SETTINGS = {"TICKETING_TOKEN_SECRET", "TICKETING_ADMIN_TOKEN", "TICKETING_SIGNING_KEYS"}
SETTING_NAMES = {f.metadata["env"] for f in fields(Settings)}


def _documents() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def rayservice_schema() -> dict[str, Any]:
    return kuberay.schema("rayservices", "v1")


def _pruned(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of fields the API server would drop: not in the schema's properties."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = []
        for key, item in value.items():
            if props is not None and key in props:
                out += _pruned(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += _pruned(item, extra, f"{path}.{key}")
            elif props is not None:
                out.append(f"{path}.{key}")
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for i, item in enumerate(value) for p in _pruned(item, schema["items"], f"{path}[{i}]")]
    return []


def test_the_rayservice_is_valid_against_kuberays_published_crd_schema(
        rayservice_schema: dict[str, Any]) -> None:
    service = _documents()["RayService"]
    assert service["apiVersion"] == "ray.io/v1"
    jsonschema.Draft7Validator(rayservice_schema).validate(service)


def test_the_rayservice_has_no_field_kuberay_would_silently_drop(
        rayservice_schema: dict[str, Any]) -> None:
    service = _documents()["RayService"]
    assert _pruned({k: v for k, v in service.items() if k != "metadata"}, rayservice_schema) == []


def test_a_misspelt_field_is_caught(rayservice_schema: dict[str, Any]) -> None:
    service = _documents()["RayService"]
    service["spec"]["rayClusterConfig"]["enableInTreeAutoscalling"] = True
    assert _pruned(service["spec"], rayservice_schema["properties"]["spec"]) == [
        ".rayClusterConfig.enableInTreeAutoscalling"]


def test_a_wrong_type_or_a_missing_required_field_is_refused(
        rayservice_schema: dict[str, Any]) -> None:
    wrong_type, missing = _documents()["RayService"], _documents()["RayService"]
    wrong_type["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplicas"] = "one"
    del missing["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    for service in (wrong_type, missing):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(rayservice_schema).validate(service)


def test_the_rayservice_serves_what_serve_config_yaml_serves() -> None:
    from ray.serve.schema import ServeDeploySchema

    embedded = yaml.safe_load(_documents()["RayService"]["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert embedded == yaml.safe_load((ROOT / "serve_config.yaml").read_text())


def test_the_cluster_autoscales_keeps_its_gcs_and_runs_ray_at_the_pinned_version() -> None:
    cluster = _documents()["RayService"]["spec"]["rayClusterConfig"]
    import ray

    assert cluster["rayVersion"] == ray.__version__
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"]
    workers = cluster["workerGroupSpecs"][0]
    assert 1 <= workers["minReplicas"] <= workers["maxReplicas"]
    config = _documents()["ConfigMap"]["data"]
    assert workers["resources"][config["HOST_RESOURCE"]] == "1"  # hosts run on workers only
    assert "num-cpus" in cluster["headGroupSpec"]["rayStartParams"]  # no hosts on the head


def test_every_configured_name_is_a_setting_or_a_ray_switch_and_no_secret_is_in_it() -> None:
    config = _documents()["ConfigMap"]["data"]
    assert set(config) - SETTING_NAMES <= {k for k in config if k.startswith("RAY_")}
    assert not set(config) & (SECRET_SETTINGS | {"RAY_AUTH_TOKEN"})
    settings = Settings(**{f.name: config[f.metadata["env"]] for f in fields(Settings)
                           if f.metadata["env"] in config and f.type == "str"},
                        token_secret="x" * 40, admin_token="y" * 40)
    assert settings.host_resource == "ticketing_host"


def test_secrets_come_only_from_the_secret_named_in_the_header() -> None:
    service = _documents()["RayService"]
    text = MANIFEST.read_text()
    for name in SECRET_SETTINGS | {"RAY_AUTH_TOKEN"}:
        assert f"--from-file={name}=" in text  # the header says how to create each
    cluster = service["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for group in pods:
        for container in group["template"]["spec"]["containers"]:
            refs = {next(iter(source)): next(iter(source.values()))["name"]
                    for source in container["envFrom"]}
            assert refs == {"configMapRef": "ticketing-config", "secretRef": "ticketing-secrets"}
            assert "env" not in container  # no literal values next to the secret
