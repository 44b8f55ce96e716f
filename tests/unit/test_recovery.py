"""RTO and RPO of a chaos mark from the on-sale's timeline (benchmarks/onsale/recovery.py)."""

from __future__ import annotations

from benchmarks.onsale import recovery

CLEAN = {"oversold": 0, "confirmed_not_in_ledger": 0, "lost_users": 0, "admitted_twice": 0,
         "stuck": 0}


def mark(t: float = 10.0, took: float = 0.0, label: str = "kill-room@10") -> dict[str, object]:
    return {"label": label, "t": t, "took_s": took, "outcome": "killed host 0"}


def test_rto_runs_from_the_fault_to_the_first_success_of_a_request_started_after_it():
    successes = [(9.0, 9.1), (10.2, 13.5), (11.0, 12.0), (12.5, 12.6)]
    assert recovery.rto_s(10.0, 10.0, successes) == 2.0


def test_a_request_started_before_the_fault_took_effect_proves_no_recovery():
    # sent before the restart was done (t + took_s), answered at once by the old process
    successes = [(10.5, 10.6), (14.0, 14.2)]
    assert recovery.rto_s(10.0, 13.6, successes) == 4.2


def test_no_success_after_the_fault_has_no_rto():
    assert recovery.rto_s(10.0, 10.0, [(1.0, 2.0), (9.9, 30.0)]) is None
    assert recovery.rto_s(10.0, 10.0, []) is None


def test_the_headline_rto_of_a_kind_is_its_slowest_source():
    by_source = {"hold_bulk": 0.2, "hold_http": 3.0, "join_bulk": None, "join_http": 1.5,
                 "checkout_bulk": None}
    assert recovery.slowest(by_source, "hold") == 3.0
    assert recovery.slowest(by_source, "join") == 1.5
    assert recovery.slowest(by_source, "checkout") is None


def test_a_mark_carries_its_rto_per_kind_and_the_runs_invariants_as_rpo():
    series = {"hold_bulk": [(10.1, 11.0)], "join_http": [(10.0, 10.4)],
              "checkout_bulk": [(12.0, 14.0)], "admit_durable": [(10.8, 10.8)]}
    got = recovery.mark_recovery(mark(), series, CLEAN | {"confirmed_not_in_ledger": 2})
    assert (got["rto_hold_s"], got["rto_join_s"], got["rto_checkout_s"], got["rto_admit_s"]) \
        == (1.0, 0.4, 4.0, 0.8)
    assert got["rpo_confirmed_bookings_lost"] == 2
    assert got["label"] == "kill-room@10" and got["oversold"] == 0 and got["stuck"] == 0


def test_a_killed_block_is_timed_on_its_own_holds_as_well():
    series = {"hold_bulk": [(10.0, 10.05)]}  # the other blocks sold on at once
    by_block = {0: [(10.0, 10.05)], 1: [(10.1, 16.0)]}
    [got] = recovery.chaos_recovery([mark(label="kill-block:1@10")], series, by_block, CLEAN)
    assert got["rto_s_by_source"]["hold_bulk_killed_block"] == 6.0
    assert got["rto_hold_s"] == 6.0


def test_only_kill_block_names_a_block():
    assert recovery.killed_block("kill-block:3@10") == 3
    assert recovery.killed_block("kill-block@10") == 0
    assert recovery.killed_block("restart-redis@10") is None


def test_acknowledgement_bins_are_successes_ending_at_the_bins_last_ack():
    assert recovery.binned_acks([[100.0, 100.09], [101.5, 101.55]]) == [(100.0, 100.09),
                                                                         (101.5, 101.55)]


def test_users_never_told_or_never_through_the_join_are_stuck():
    states = {"admitted": 40, "sold_out": 100, "joined": 2, "join_failed": 1}
    assert recovery.stuck_users(0, states) == 3
    assert recovery.stuck_users(None, {"sold_out": 5}) == 0
    assert recovery.stuck_users(7, {}) == 7


def test_the_report_line_states_rto_rpo_and_the_invariants():
    got = recovery.mark_recovery(mark(took=3.6, label="restart-redis@10"),
                                 {"hold_bulk": [(14.0, 15.0)]}, CLEAN)
    text = recovery.line(got)
    assert "`restart-redis@10`" in text and "RTO hold 5 s" in text and "join —" in text
    assert "RPO: 0 confirmed bookings lost" in text and "stuck 0" in text
