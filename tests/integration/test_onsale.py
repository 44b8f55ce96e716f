"""A small on-sale end to end (`python -m benchmarks.onsale`, 20,000 users, a seat-block owner
killed mid-sale) on the test session's stack: the invariants hold, whatever the timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.onsale import driver

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_a_20000_user_onsale_with_a_killed_block_owner_keeps_every_invariant(
        api: str, app_settings: Any, tmp_path: Path) -> None:
    args = driver.parse_args([
        "--users", "20000", "--seats", "1500", "--http-clients", "150",
        "--prequeue-share", "0.02", "--prequeue-s", "3", "--burst-s", "4", "--tail-s", "5",
        "--admission-rate", "400", "--hold-ttl", "4", "--think-scale", "0.3", "--lead-s", "3",
        "--timeout", "150", "--chaos", "kill-block@3", "--no-baselines", "--quiet"])
    # the session's stack is not this test's: kill-block only (a host restarts, as in test_crash)
    summary = driver.run_against(app_settings, api, args, tmp_path, own=None)
    assert summary["finished"], summary["http"]
    assert summary["oversold"] == 0
    assert summary["confirmed_not_in_ledger"] == 0
    assert summary["lost_users"] == 0
    assert summary["admitted_twice"] == 0
    assert summary["sold"] == summary["seats"]
    assert summary["unsold_while_demand"] == 0
    assert summary["joined_users"] == 20000
    assert summary["told_sold_out"] + summary["admitted"] == 20000
    assert summary["fairness_inversion_share"] <= 0.001
    assert summary["chaos"] and summary["chaos"][0]["outcome"].startswith("killed host")
    assert summary["http_sample_clients"] == 150
    assert (tmp_path / "report.md").exists() and (tmp_path / "queue.png").exists()
