"""KubeRay's published CRD schemas, fetched the way the project fetches every piece it needs.

The RayService manifest (`deploy/kuberay/rayservice.yaml`) is checked against the
`openAPIV3Schema` KubeRay itself publishes for `ray.io/v1` RayService. The CRDs ship inside the
operator's Go module (`config/crd/bases/`), which the Go module proxy serves, so
`go mod download` is the download: pinned, checksummed by the Go sum database, cached.

    python -m infra.kuberay      # download (once) and print the CRD directory
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

OPERATOR_MODULE = "github.com/ray-project/kuberay/ray-operator"
OPERATOR_VERSION = "v1.5.0"  # KubeRay 1.5: RayService v1 with gcsFaultToleranceOptions


def crd_dir() -> Path:
    """The operator module's `config/crd/bases`, downloaded into Go's module cache if needed."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the Go toolchain is missing: run infra/install.sh")
    env = dict(os.environ, GOFLAGS="-modcacherw")  # a cache `rm -rf` can clean
    out = subprocess.run([go, "mod", "download", "-json", f"{OPERATOR_MODULE}@{OPERATOR_VERSION}"],
                         capture_output=True, text=True, env=env, cwd="/", timeout=300)
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download failed: {info.get('Error') or out.stderr.strip()}")
    return Path(info["Dir"]) / "config" / "crd" / "bases"


def schema(plural: str = "rayservices", version: str = "v1") -> dict[str, Any]:
    """The CRD's OpenAPI v3 schema for one served version (a JSON Schema subset)."""
    import yaml

    crd = yaml.safe_load((crd_dir() / f"ray.io_{plural}.yaml").read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            found: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return found
    raise LookupError(f"{plural} has no version {version}")


if __name__ == "__main__":
    print(crd_dir())
    sys.exit(0)
