"""An ingest entity's lane on its host's joins consumer (actors/join_consumer.py): what it
hands the ingest and what it queues for commit. No broker: the consumer's loop fills lanes."""

import dataclasses
import time
from typing import Any

from actors.join_consumer import JoinConsumer, Lane
from domain.settings import Settings
from store import joins


def _lane(**changes: Any) -> Lane:
    settings = dataclasses.replace(Settings.development(), ingest_batch_max=3, ingest_wait_ms=5,
                                   **changes)
    return Lane(JoinConsumer(settings), "ingest:ev:0", "t.joins.ev", [0, 2], settings)


def _fill(lane: Lane, partition: int, offsets: range) -> None:
    lane.records.extend(joins.decode(joins.encode(f"tq{o:016x}", "ev", f"u{o}", 1_000 + o, 3,
                                                  True, None), partition, o) for o in offsets)


async def test_a_lane_not_yet_reading_reports_every_partition_behind() -> None:
    batch, behind = await _lane().take()
    assert batch == [] and behind == {0: True, 2: True}


async def test_a_partition_is_behind_while_its_joins_wait_in_the_lane_after_the_batch() -> None:
    lane = _lane()
    lane.assigned, lane.behind = True, {0: False, 2: False}
    _fill(lane, 2, range(2))
    _fill(lane, 0, range(3))
    batch, behind = await lane.take()
    assert [(j.partition, j.offset) for j in batch] == [(2, 0), (2, 1), (0, 0)]
    assert behind == {0: True, 2: False}
    batch, behind = await lane.take()
    assert [(j.partition, j.offset) for j in batch] == [(0, 1), (0, 2)]
    assert behind == {0: False, 2: False}


async def test_a_lane_queues_only_newer_offsets_of_its_own_partitions_at_most_every_interval(
        ) -> None:
    lane = _lane(ingest_commit_interval_ms=60_000)
    lane.commit({0: 4, 1: 9, 2: -1})
    assert lane.to_commit == {0: 4}  # partition 1 is another lane's, 2 has nothing persisted
    lane.commit({0: 7, 2: 3})
    assert lane.to_commit == {0: 4}, "not before the commit interval"
    lane = _lane(ingest_commit_interval_ms=0)
    lane.committed = {0: 5}
    lane.commit({0: 5, 2: 1})
    time.sleep(0.001)
    lane.commit({0: 6})
    assert lane.to_commit == {0: 6, 2: 1}


def _joins(partition: int, offsets: list[int]) -> list:
    return [joins.decode(joins.encode(f"tq{o:016x}", "ev", f"u{o}", 1_000 + o, 3, True, None),
                         partition, o) for o in offsets]


async def test_a_lane_takes_records_only_offset_after_offset_and_is_rewound_at_a_hole() -> None:
    lane = _lane()
    feed = lane._feed
    lane.assigned, lane.next = True, {0: 5}
    assert feed._in_sequence(lane, 0, _joins(0, [5, 6, 7]))
    assert lane.next[0] == 8
    records = _joins(0, [6, 7, 8])  # two it already has, then the next one
    assert feed._in_sequence(lane, 0, records) and [j.offset for j in records] == [8]
    assert not feed._in_sequence(lane, 0, _joins(0, [10, 11]))  # 9 is missing: never skipped
    assert lane.halted and [r.kind for r in feed._requests] == ["rewind"]
