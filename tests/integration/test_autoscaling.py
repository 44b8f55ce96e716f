"""The host pool drives Ray's autoscaler: more events, more hosts, more nodes; and back.

A host needs a CPU and the "hostnode" resource; the head has room for host 0 only. Creating
events makes the pool want a host per event; the hosts that do not fit stay pending, which is
the demand Ray's (fake multi-node) autoscaler answers with worker nodes. The hosts then answer,
become members, and the events' seat blocks are spread over the nodes. Closing the events
shrinks the pool, its hosts stop, and the autoscaler removes the idle nodes.

It runs on a Ray cluster of its own, in a subprocess (`tests/integration/autoscaling_pool.py`),
since this process is already connected to the session's cluster; it uses the session's Redis
(a database of its own) and Kafka.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from domain.settings import Settings
from infra import stack
from tests.integration import autoscaling_pool
from tests.integration.conftest import on_db

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
POOL_MAX = 3
SCENARIO_TIMEOUT_S = 600  # the scenario's own waits add up to less; a loaded 2-core box is slow


def test_pool_grows_onto_autoscaled_nodes_and_shrinks_back(
        app_settings: Settings, stack_state_dir: Path) -> None:
    settings = on_db(
        app_settings, 3, ray_namespace="autoscale", host_cpus=1, host_resource="hostnode",
        host_pool_min=1, host_pool_max=POOL_MAX, events_per_host=1)
    state = stack_state_dir / f"as-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(autoscaling_pool.auth_env(state))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.integration.autoscaling_pool", "--state-dir",
             str(state)], input=json.dumps(dataclasses.asdict(settings)), capture_output=True,
            text=True, timeout=SCENARIO_TIMEOUT_S, cwd=REPO_ROOT, env=env)
    finally:  # the scenario stops its cluster; this covers it being killed by the timeout
        stack.stop_ray(state)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert "error" not in result, f"{result['error']}\n{run.stderr[-3000:]}"

    assert result["nodes_at_start"] == 1
    assert result["members_on_one_node"] == [0], "hosts answered before their nodes existed"
    assert result["peak_nodes"] == POOL_MAX, "the autoscaler added one node per pending host"
    host_nodes = result["host_nodes"]
    assert len(set(host_nodes.values())) == POOL_MAX, "each host runs on a node of its own"
    entity_nodes = result["entity_nodes"]
    assert len(set(entity_nodes.values())) == POOL_MAX, "the blocks are spread over the nodes"
    assert result["members_after"] == [0] and result["open_events_after"] == 0
    assert result["nodes_after"] == 1, "the idle nodes were terminated"
    print("timings (s):", result["timings_s"])
