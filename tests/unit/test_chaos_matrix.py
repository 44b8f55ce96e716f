"""The chaos matrix's rows and table (benchmarks/chaos_matrix.py); no on-sale is run here."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import chaos_matrix as cm

REPORT: dict[str, Any] = {
    "oversold": 0, "lost_users": 0, "stuck": 0, "admitted_twice": 0, "sold": 3000,
    "seats": 3000, "sellout_s": 61.2, "finished": True, "unsold_while_demand": 0,
    "chaos": [{"label": "restart-redis@10", "t": 10.0, "took_s": 3.6, "outcome": "redis restarted",
               "rto_hold_s": 5.1, "rto_join_s": 4.0, "rto_checkout_s": 6.0, "rto_admit_s": 4.4,
               "rto_s_by_source": {"hold_bulk": 5.1, "hold_http": 4.8, "join_bulk": 0.3,
                                   "join_http": 4.0, "checkout_bulk": 6.0},
               "rpo_confirmed_bookings_lost": 0}]}


def test_every_on_sale_runs_on_its_own_loopback_stack_with_its_fault_bounded():
    cmd = cm.onsale_cmd(cm.parse_args([]), "restart-redis", cm.RESULTS / "x")
    assert "--base-url" not in cmd
    assert cmd[cmd.index("--chaos") + 1] == "restart-redis@5"
    assert cmd[cmd.index("--timeout") + 1] == "240.0"


def test_only_picks_faults_by_flag_and_refuses_unknown_ones():
    assert cm.parse_args(["--only", "kill-room,restart-kafka"]).faults == [
        "waiting-room owner", "Kafka broker restart (single broker)"]
    assert cm.parse_args([]).faults == list(cm.FAULTS)
    with pytest.raises(SystemExit):
        cm.parse_args(["--only", "kill-everything"])


def test_a_row_takes_the_marks_rto_and_the_runs_invariants():
    r = cm.row("Redis restart (no HA)", "restart-redis", REPORT, 0, 150.0)
    assert (r["rto_hold_s"], r["rto_join_s"], r["rpo_confirmed_bookings_lost"]) == (5.1, 4.0, 0)
    assert (r["oversold"], r["lost_users"], r["stuck"], r["sellout_s"]) == (0, 0, 0, 61.2)


def test_a_run_without_a_report_is_a_row_that_says_so():
    r = cm.row("Ray worker node", "kill-node", None, None, 540.0)
    assert "no report" in r["error"] and "no report" in cm.table_line(r)


def test_the_table_shows_the_headline_rto_with_bulk_and_http():
    md = cm.table([cm.row("Redis restart (no HA)", "restart-redis", REPORT, 0, 150.0)])
    lines = md.splitlines()
    assert lines[2].startswith("| Redis restart (no HA) (`restart-redis@10`) | 3.6 s | **5.1 s** "
                               "(5.1 s / 4.8 s) | **4 s** (0.3 s / 4 s)")
    assert "61.2 s (3,000/3,000)" in lines[2]
    assert len(lines) == 3


def test_every_fault_of_the_matrix_is_measured_by_the_benchmark_itself():
    """The Sentinel failover, the HA broker, the Ray head and the power loss have flags of their
    own now: no row is a test's figure."""
    assert not hasattr(cm, "FROM_TESTS")
    assert cm.parse_args(["--only", "failover-redis,kill-kafka-broker,restart-ray-head,"
                                    "power-loss"]).faults == [
        "Redis primary, Sentinel failover (HA)", "Kafka broker, HA (3 brokers, RF 3)",
        "Ray head (GCS FT on its Redis)", "whole-stack power loss, `up`"]
    cmd = cm.onsale_cmd(cm.parse_args([]), "power-loss", cm.RESULTS / "x")
    assert cmd[cmd.index("--chaos") + 1] == "power-loss@5" and "--base-url" not in cmd


def test_a_fault_after_which_no_admission_was_due_is_explained_under_the_table():
    quiet = {**REPORT, "chaos": [{**REPORT["chaos"][0], "rto_admit_s": None}]}
    md = cm.table([cm.row("Ray head (GCS FT on its Redis)", "restart-ray-head", quiet, 0, 150.0)])
    assert "| — |" in md.splitlines()[2]
    assert md.splitlines()[-1] == cm.NO_ADMISSION_DUE
