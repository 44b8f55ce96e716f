"""The pure parts of the on-sale benchmark: the crowd, the chaos flags and the audit rules."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.onsale import audit, chaos, crowd


def test_the_crowd_arrives_before_at_and_after_onsale_in_the_shares_asked():
    shape = crowd.CrowdShape(prequeue_share=0.1, prequeue_s=10, burst_share=0.6, burst_s=20,
                             tail_s=30)
    t = crowd.arrivals(100_000, shape, seed=1)
    assert len(t) == 100_000 and np.all(np.diff(t) >= 0)
    assert (t < 0).sum() == 10_000
    assert ((t >= 0) & (t < 20)).sum() == 60_000
    assert t.min() >= -10 and t.max() <= 50


def test_the_burst_peaks_right_after_onsale():
    t = crowd.arrivals(200_000, crowd.CrowdShape(), seed=2)
    starts, rate = crowd.rate_profile(t)
    assert starts[int(np.argmax(rate))] == 0.0


def test_the_same_seed_replays_the_same_crowd_and_people():
    a = crowd.arrivals(1000, crowd.CrowdShape(), seed=7)
    b = crowd.arrivals(1000, crowd.CrowdShape(), seed=7)
    assert np.array_equal(a, b)
    behaviour = crowd.Behaviour()
    assert behaviour.person(7, 42, "b42") == behaviour.person(7, 42, "b42")


def test_people_hold_one_to_six_seats_and_some_abandon_or_are_declined():
    behaviour = crowd.Behaviour()
    people = [behaviour.person(3, i, f"b{i}") for i in range(4000)]
    assert {p.quantity for p in people} == {1, 2, 3, 4, 5, 6}
    abandon = sum(p.abandons for p in people) / len(people)
    declined = sum(p.declined_first for p in people) / len(people)
    assert 0.05 < abandon < 0.11 and 0.04 < declined < 0.10
    assert all(p.card == f"tok_visa_b{i}" for i, p in enumerate(people))


def test_half_the_http_sample_comes_from_the_early_arrivals():
    t = crowd.arrivals(50_000, crowd.CrowdShape(), seed=4)
    idx = crowd.http_sample(t, 1000, early=2000, seed=4)
    assert len(idx) == len(set(idx.tolist())) == 1000
    assert (idx < 2000).sum() >= 500


def test_chaos_flags_parse_into_actions_at_seconds_in_order():
    plan = chaos.parse(["restart-kafka@40,kill-block:2@10", "kill-room@20"])
    assert [(c.action, c.at_s, c.arg) for c in plan] == [
        ("kill-block", 10.0, 2), ("kill-room", 20.0, 0), ("restart-kafka", 40.0, 0)]
    assert plan[0].label == "kill-block:2@10"


@pytest.mark.parametrize("bad", ["kill-block", "explode@3", "kill-room@-1", "kill-block:x@3"])
def test_malformed_chaos_flags_are_refused(bad):
    with pytest.raises(ValueError):
        chaos.parse([bad])


def test_restarting_services_is_refused_on_a_stack_that_is_not_ours():
    chaos.check_allowed(chaos.parse(["kill-block@1", "kill-room@2"]), own_stack=False)
    with pytest.raises(ValueError):
        chaos.check_allowed(chaos.parse(["restart-redis@1"]), own_stack=False)
    chaos.check_allowed(chaos.parse(["restart-redis@1", "kill-node@2"]), own_stack=True)


def test_the_process_stack_faults_parse_and_label_and_are_own_stack_only():
    plan = chaos.parse(["power-loss@30,failover-redis@5", "kill-kafka-broker@10",
                        "restart-ray-head@20"])
    assert [c.label for c in plan] == ["failover-redis@5", "kill-kafka-broker@10",
                                       "restart-ray-head@20", "power-loss@30"]
    for c in plan:
        with pytest.raises(ValueError, match="own stack"):
            chaos.check_allowed([c], own_stack=False)
    assert chaos.parse(["power-loss:3@1"])[0].label == "power-loss@1"  # no argument shown


def test_a_plan_runs_on_the_stack_its_faults_need():
    assert chaos.stack_kind(chaos.parse(["restart-redis@1", "kill-node@2"])) == "in-process"
    assert chaos.stack_kind([]) == "in-process"
    assert chaos.stack_kind(chaos.parse(["failover-redis@5", "kill-block@9"])) == "process"
    assert chaos.stack_kind(chaos.parse(["restart-ray-head@5", "kill-room@9"])) == "process"
    with pytest.raises(ValueError, match="not in one run"):
        chaos.stack_kind(chaos.parse(["power-loss@5", "restart-kafka@9"]))
    assert set(chaos.RAY_DOWN) <= set(chaos.PROC_STACK) <= set(chaos.OWN_STACK_ONLY)


def test_a_seat_in_two_distinct_bookings_is_oversold_but_a_resent_record_is_not():
    seats = {"A-1-1", "A-1-2", "A-1-3"}
    bookings = [{"booking_id": "b1", "seat_ids": ["A-1-1"]},
                {"booking_id": "b1", "seat_ids": ["A-1-1"]},  # the same record sent twice
                {"booking_id": "b2", "seat_ids": ["A-1-2"]}]
    ok = audit.audit_ledger(bookings, seats, ["b1", "b2"])
    assert (ok.oversold, ok.seats_sold, ok.bookings, ok.confirmed_not_in_ledger) == (0, 2, 2, 0)
    bad = audit.audit_ledger([*bookings, {"booking_id": "b3", "seat_ids": ["A-1-2", "Z-9-9"]}],
                             seats, ["b1", "b4"])
    assert bad.oversold == 2 and bad.seats_in_two_bookings == 1 and bad.unknown_seats == 1
    assert bad.confirmed_not_in_ledger == 1


def test_every_joined_user_is_admitted_once_or_told_sold_out():
    q = audit.audit_queue(["t1", "t2", "t3", "t3"], ["t1", "t2"], ["t3"], sold_out=True)
    assert (q.joined, q.admitted, q.told_sold_out, q.lost_users, q.admitted_twice) == (3, 2, 1, 0, 0)


def test_a_user_neither_admitted_nor_waiting_is_lost_and_a_repeat_is_admitted_twice():
    q = audit.audit_queue(["t1", "t2", "t3"], ["t1", "t1"], ["t2"], sold_out=True)
    assert q.lost_users == 1 and q.admitted_twice == 1
    waiting_without_sold_out = audit.audit_queue(["t1", "t2"], ["t1"], ["t2"], sold_out=False)
    assert waiting_without_sold_out.lost_users == 1  # not told anything yet


def test_admission_in_arrival_order_has_no_inversions():
    lo = np.arange(10.0)
    share, inverted, ordered = audit.inversion_share(lo, lo + 0.1, np.array(
        [0, 1, 2, 3, 4, 5, np.inf, np.inf, np.inf, np.inf]))
    assert (share, inverted) == (0.0, 0)
    assert ordered == 45 - 6  # pairs among the never admitted do not count


def test_pairs_inside_the_clock_uncertainty_are_not_inversions():
    lo, hi = np.array([0.0, 0.5]), np.array([1.0, 1.5])  # overlapping: order unknown
    assert audit.inversion_share(lo, hi, np.array([1.0, 0.0]))[1:] == (0, 0)


def test_a_later_arrival_admitted_first_or_instead_is_an_inversion():
    lo = np.array([0.0, 10.0, 20.0])
    # user 2 admitted first, then user 0; user 1 (earlier than 2) never admitted
    share, inverted, ordered = audit.inversion_share(lo, lo + 1, np.array([1.0, np.inf, 0.0]))
    assert inverted == 2  # (0, 2): 2 before 0; (1, 2): 1 never admitted while 2 was
    assert ordered == 3 and share == pytest.approx(2 / 3)


def test_the_inversion_count_matches_brute_force():
    rng = np.random.default_rng(5)
    n = 300
    lo = rng.random(n) * 100
    hi = lo + rng.random(n) * 3
    rank = rng.permutation(n).astype(float)
    rank[rng.random(n) < 0.3] = np.inf
    inv = ordered = 0
    for i in range(n):
        for j in range(n):
            if hi[i] < lo[j] and (np.isfinite(rank[i]) or np.isfinite(rank[j])):
                ordered += 1
                inv += rank[j] < rank[i]
    _, got_inv, got_ordered = audit.inversion_share(lo, hi, rank)
    assert (got_inv, got_ordered) == (inv, ordered)


def test_unsold_seats_count_only_while_someone_was_turned_away():
    assert audit.unsold_while_demand(100, 98, turned_away=5) == 2
    assert audit.unsold_while_demand(100, 98, turned_away=0) == 0


def test_the_ray_gate_holds_bulk_calls_while_ray_is_away_and_answers_those_in_flight():
    import asyncio

    from benchmarks.onsale.bulk import BlockBatcher, RayGate
    from domain.errors import Unavailable

    calls: list[list[object]] = []

    class Never:  # a call that never comes back (a shut-down Ray's reference)
        async def _wait(self, items: list[object]) -> list[object]:
            calls.append(items)
            await asyncio.sleep(3600)
            return items

        def remote(self, items: list[object]) -> object:
            return self._wait(items)

    class Handle:
        hold = Never()

    async def scenario() -> None:
        gate = RayGate()
        batcher = BlockBatcher(lambda _b: Handle(), "hold", gate)
        first = asyncio.ensure_future(batcher.submit(0, ("a",)))
        await asyncio.sleep(0.05)
        assert calls == [[("a",)]]
        gate.close()
        assert batcher.abandon_in_flight() == 1
        assert isinstance(await first, Unavailable)
        second = asyncio.ensure_future(batcher.submit(0, ("b",)))
        await asyncio.sleep(0.05)
        assert len(calls) == 1 and not second.done()  # waits at the closed gate
        gate.open()
        await asyncio.sleep(0.05)
        assert calls[-1] == [("b",)]
        batcher.abandon_in_flight()
        await second

    asyncio.run(scenario())
