"""The Ray head restarted: the event keeps its owners' state and sells on.

The head's GCS keeps its tables in a Redis of its own (Ray's GCS fault tolerance, as `make up`
starts it: `infra.stack.gcs_ft_env`). On a Ray cluster of its own (a subprocess:
`tests/integration/ray_head_ft.py`, since this process is connected to the session's cluster)
with the entity hosts on a worker node, first the GCS server alone and then the whole head is
killed and started again; the hosts, their fencing epochs and holds are the same afterwards,
a hold made before is still payable, new seats sell, and Serve's ingress answers again.
It uses the session's Redis (a database of its own) and Kafka, and a Redis for the GCS.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.settings import Settings
from infra import stack
from tests.integration.conftest import on_db

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

REPO_ROOT = Path(__file__).resolve().parents[2]
_OFFSET = int(os.environ.get("TICKETING_TEST_PORT_OFFSET", "0"))
GCS_REDIS_PORT = 6397 + _OFFSET
HTTP_PORT = 8150 + _OFFSET
SCENARIO_TIMEOUT_S = 600
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0", "RAY_SERVE_HAPROXY_NBTHREAD": "1",
    "RAY_SERVE_HAPROXY_MAXCONN": "1000",
    # Its own fallback proxy too: HAProxy's backup server when it marks the replica down
    # (under load, or the old head's HAProxy, still bound to HTTP_PORT, after the restart).
    **stack.serve_ports_env(8464 + _OFFSET, 9164 + _OFFSET, 8151 + _OFFSET, 9151 + _OFFSET),
    "RAY_USAGE_STATS_ENABLED": "0",
}


@pytest.fixture
def gcs_redis(stack_state_dir: Path) -> Iterator[int]:
    """The GCS's own Redis (not the app's data Redis), emptied afterwards."""
    stack.start_redis(GCS_REDIS_PORT, stack_state_dir)
    yield GCS_REDIS_PORT
    stack.forget_ray_gcs(stack_state_dir, GCS_REDIS_PORT)
    stack.stop_redis(GCS_REDIS_PORT, stack_state_dir)


def test_a_restarted_head_keeps_the_owners_state_and_the_event_sells_on(
        app_settings: Settings, stack_state_dir: Path, gcs_redis: int) -> None:
    settings = on_db(
        app_settings, 7, ray_namespace="headft", http_port=HTTP_PORT, host_cpus=1,
        host_resource="hostnode", host_pool_min=1, host_pool_max=1, ingress_resource="ingress",
        # an owner idle through the restart stays active: a passivated and reactivated block
        # would take a new epoch, which is what the test looks for to see a lost owner
        passivate_after_s=600.0)
    state = stack_state_dir / f"ft-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    env.update(SERVE_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    run = subprocess.run(
        [sys.executable, "-m", "tests.integration.ray_head_ft", "--state-dir", str(state),
         "--gcs-redis-port", str(gcs_redis)], input=json.dumps(dataclasses.asdict(settings)),
        capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S, cwd=REPO_ROOT, env=env)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    print("\nray head FT:", json.dumps({k: v for k, v in result.items()
                                        if not isinstance(v, dict)}))
    assert "error" not in result, f"{result}\n{run.stderr[-3000:]}"

    before = result["before"]
    assert before["host_pids"] and set(before["holds"].values()) == {"active", "confirmed"}
    for phase in ("after_gcs_restart", "after_head_restart"):
        after = result[phase]
        assert after["host_pids"] == before["host_pids"], f"{phase}: the hosts were restarted"
        assert after["epoch"] == before["epoch"], f"{phase}: block 0 was activated again"
    gcs, head = result["after_gcs_restart"]["holds"], result["after_head_restart"]["holds"]
    assert {t: gcs[t] for t in before["holds"]} == before["holds"]
    paid_between = [t for t in before["holds"] if head[t] != before["holds"][t]]
    assert len(paid_between) == 1 and head[paid_between[0]] == "confirmed"  # held[3]
    assert result["old_hold_paid_after_gcs_restart"] and result["old_hold_paid_after_head_restart"]
    assert result["nodes_alive"] == 2
