import random

import pytest

from domain.waiting.errors import InvalidParameter, OffsetRegression
from domain.waiting.merge import WatermarkMerger
from domain.waiting.tickets import Join


def join(ticket_id: str, at_ms: int, partition: int = 0, offset: int = 0,
         uncertainty_ms: int = 0) -> Join:
    return Join(ticket_id=ticket_id, event_id="e1", user_id=f"u-{ticket_id}", joined_at_ms=at_ms,
                uncertainty_ms=uncertainty_ms, clock_synced=True, priority_code=None,
                partition=partition, offset=offset)


def ids(joins: list[Join]) -> list[str]:
    return [j.ticket_id for j in joins]


def test_entries_are_released_only_behind_the_watermark():
    merger = WatermarkMerger(ingest_lag_ms=100, idle_timeout_ms=10_000)
    for i, at in enumerate([1_000, 1_050, 1_100, 1_200]):
        merger.push(join(f"t{i}", at, offset=i), now_ms=1_200)
    assert merger.watermark_ms(1_200) == 1_100
    assert ids(merger.release(1_200)) == ["t0", "t1"]  # 1_100 itself is not strictly behind
    assert merger.pending_count == 2


def test_watermark_covers_twice_the_largest_clock_uncertainty_plus_ingest_lag():
    merger = WatermarkMerger(ingest_lag_ms=100, idle_timeout_ms=10_000)
    merger.push(join("a", 5_000, offset=0, uncertainty_ms=30), now_ms=5_000)
    merger.push(join("b", 6_000, offset=1, uncertainty_ms=10), now_ms=6_000)
    assert merger.slack_ms == 2 * 30 + 100
    assert merger.watermark_ms(6_000) == 6_000 - 160


def test_partitions_are_merged_by_time_then_ticket_id():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("b", 100, partition=0, offset=0), 0)
    merger.push(join("d", 300, partition=0, offset=1), 0)
    merger.push(join("c", 100, partition=1, offset=0), 0)
    merger.push(join("a", 200, partition=1, offset=1), 0)
    merger.push(join("z", 999, partition=0, offset=2), 0)
    merger.push(join("y", 999, partition=1, offset=2), 0)
    assert ids(merger.release(0)) == ["b", "c", "a", "d"]


def test_slowest_partition_holds_the_watermark_back():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("fast", 5_000, partition=0, offset=0), 5_000)
    merger.push(join("slow", 1_000, partition=1, offset=0), 5_000)
    assert merger.watermark_ms(5_000) == 1_000
    assert merger.release(5_000) == []


def test_known_partition_with_nothing_yet_holds_the_merge_until_idle():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=1_000)
    merger.add_partition(1, now_ms=0)
    merger.push(join("a", 100, partition=0, offset=0), now_ms=0)
    merger.push(join("b", 500, partition=0, offset=1), now_ms=500)
    assert merger.release(999) == []
    assert ids(merger.release(1_000)) == ["a"]


def test_idle_partition_stops_holding_the_watermark_back():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=1_000)
    merger.push(join("quiet", 100, partition=1, offset=0), now_ms=100)
    for i in range(20):
        merger.push(join(f"busy{i:02}", 200 + 100 * i, partition=0, offset=i), now_ms=200 + 100 * i)
    assert merger.release(1_099) == []  # partition 1 still holds the watermark at 100
    # Idle now: partition 1 counts as "at now" (1_100), below partition 0's frontier (2_100).
    assert ids(merger.release(1_100)) == ["quiet"] + [f"busy{i:02}" for i in range(9)]


def test_merge_drains_once_every_partition_is_idle():
    merger = WatermarkMerger(ingest_lag_ms=50, idle_timeout_ms=1_000)
    merger.push(join("a", 100, partition=0, offset=0), now_ms=100)
    merger.push(join("b", 150, partition=1, offset=0), now_ms=150)
    assert merger.release(1_000) == []
    assert ids(merger.release(1_150 + 50 + 1)) == ["a", "b"]


def test_duplicate_ticket_is_dropped_but_its_offset_still_commits():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    assert merger.push(join("a", 100, offset=0), 0)
    assert not merger.push(join("a", 100, offset=1), 0)
    assert merger.push(join("b", 900, offset=2), 0)
    assert ids(merger.release(0)) == ["a"]
    assert merger.committable_offsets() == {0: 1}


def test_offsets_commit_only_up_to_the_first_unreleased_record():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("x", 100, partition=0, offset=10), 0)
    merger.push(join("late-stamp", 950, partition=0, offset=11), 0)
    merger.push(join("y", 200, partition=0, offset=12), 0)
    merger.push(join("z", 950, partition=0, offset=13), 0)
    assert ids(merger.release(0)) == ["x", "y"]
    assert merger.committable_offsets() == {0: 10}  # offset 11 is still buffered


def test_no_offsets_are_committable_before_anything_is_released():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("a", 100, offset=0), 0)
    assert merger.committable_offsets() == {}


def test_replayed_ids_already_persisted_are_dropped_after_a_restart():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000, released_ticket_ids={"a"})
    assert not merger.push(join("a", 100, offset=0), 0)
    assert merger.committable_offsets() == {0: 0}


def test_a_new_ticket_at_an_old_offset_is_refused():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("a", 100, offset=5), 0)
    with pytest.raises(OffsetRegression):
        merger.push(join("b", 100, offset=5), 0)


def test_record_behind_released_ones_is_still_released_and_counted_late():
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("a", 100, partition=0, offset=0), 0)
    merger.push(join("b", 500, partition=0, offset=1), 0)
    assert ids(merger.release(0)) == ["a"]
    merger.push(join("straggler", 50, partition=0, offset=2), 0)
    assert ids(merger.release(0)) == ["straggler"]
    assert merger.late_count == 1


def test_bad_parameters_are_refused():
    with pytest.raises(InvalidParameter):
        WatermarkMerger(ingest_lag_ms=-1, idle_timeout_ms=1)
    with pytest.raises(InvalidParameter):
        WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=0)


# --- Simulation: skewed clocks, lagging ingest, crashes ---------------------------------------

PARTITIONS = 2
UNCERTAINTY_MS = 20
LAG_MS = 30


def simulate_joins(rng: random.Random, n: int) -> dict[int, list[tuple[int, Join]]]:
    """Per partition, (arrival_ms, join) in offset order. Ingress clocks are off by up to
    UNCERTAINTY_MS either way (two at the extremes, the worst case); each record takes up to
    LAG_MS to reach its partition."""
    ingress_error_ms = [-UNCERTAINTY_MS, UNCERTAINTY_MS, rng.randint(-UNCERTAINTY_MS, 0)]
    records: dict[int, list[tuple[int, str, int]]] = {p: [] for p in range(PARTITIONS)}
    for i in range(n):
        true_ms = rng.randint(0, 1_000)
        stamp_ms = true_ms + ingress_error_ms[rng.randrange(3)]
        records[rng.randrange(PARTITIONS)].append(
            (true_ms + rng.choice((0, LAG_MS)), f"t{i:04}", stamp_ms))
    out: dict[int, list[tuple[int, Join]]] = {}
    for p, recs in records.items():
        recs.sort()
        out[p] = [(arrival, join(tid, stamp, partition=p, offset=o, uncertainty_ms=UNCERTAINTY_MS))
                  for o, (arrival, tid, stamp) in enumerate(recs)]
    return out


def run_with_crashes(rng: random.Random, log: dict[int, list[tuple[int, Join]]],
                     crash_p: float) -> list[Join]:
    """Pull batches every 10 ms, persist what is released, then commit offsets; crash at random
    between the steps and restart from the persisted ids and the committed offsets."""
    persisted: list[Join] = []
    committed: dict[int, int] = {}

    def start(now_ms: int) -> tuple[WatermarkMerger, dict[int, int]]:
        merger = WatermarkMerger(ingest_lag_ms=LAG_MS, idle_timeout_ms=200,
                                 released_ticket_ids=[j.ticket_id for j in persisted])
        for p in log:
            merger.add_partition(p, now_ms)
        return merger, {p: committed.get(p, -1) + 1 for p in log}  # next offset to read

    merger, cursor = start(0)
    for now_ms in range(0, 2_000, 10):
        for p, recs in log.items():
            while cursor[p] < len(recs) and recs[cursor[p]][0] <= now_ms:
                merger.push(recs[cursor[p]][1], now_ms)
                cursor[p] += 1
        released = merger.release(now_ms)
        if rng.random() < crash_p:  # crash before persisting: the release is lost
            merger, cursor = start(now_ms)
            continue
        persisted.extend(released)
        if rng.random() < crash_p:  # crash after persisting, before committing
            merger, cursor = start(now_ms)
            continue
        committed.update(merger.committable_offsets())
    return persisted


@pytest.mark.parametrize("seed", range(10))
def test_skewed_clocks_within_uncertainty_still_merge_in_stamp_order(seed: int):
    rng = random.Random(seed)
    log = simulate_joins(rng, 400)
    out = run_with_crashes(rng, log, crash_p=0.0)
    assert len(out) == 400
    assert [(j.joined_at_ms, j.ticket_id) for j in out] == sorted(
        (j.joined_at_ms, j.ticket_id) for j in out)


@pytest.mark.parametrize("seed", range(10))
def test_crashes_neither_lose_nor_duplicate_anyone_and_keep_the_order(seed: int):
    rng = random.Random(seed)
    log = simulate_joins(rng, 400)
    out = run_with_crashes(rng, log, crash_p=0.02)
    assert sorted(j.ticket_id for j in out) == [f"t{i:04}" for i in range(400)]
    keys = [(j.joined_at_ms, j.ticket_id) for j in out]
    assert keys == sorted(keys)


def test_a_touched_partition_keeps_holding_the_watermark_back() -> None:
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=100)
    merger.add_partition(0, 0)
    merger.add_partition(1, 0)
    merger.push(join("t1", 1000), 0)
    for now in range(0, 1000, 50):
        merger.touch(1, now)  # partition 1 is behind: its consumer has not caught up
    assert merger.release(1000) == []
    assert [j.ticket_id for j in merger.release(1200)] == ["t1"]  # untouched: idle again


def test_taken_joins_commit_only_once_persisted():
    """A room whose Redis write failed keeps what it took and writes it again: until then
    their offsets are not committable, so a crash or a Redis restart can never lose them."""
    merger = WatermarkMerger(ingest_lag_ms=0, idle_timeout_ms=10_000)
    merger.push(join("a", 100, offset=0), 0)
    merger.push(join("b", 200, offset=1), 0)
    merger.push(join("c", 950, offset=2), 0)
    taken = merger.take(0)
    assert ids(taken) == ["a", "b"]
    assert merger.committable_offsets() == {}
    assert merger.take(0) == []  # taken once: the caller holds them until they persist
    merger.persisted(taken)
    assert merger.committable_offsets() == {0: 1}
