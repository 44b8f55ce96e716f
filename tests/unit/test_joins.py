"""The join record and the batch shape ingest actors ship to the room (store/joins.py)."""

from collections import Counter

from domain.waiting.tickets import Join
from store import joins


def _join(n: int) -> Join:
    return joins.decode(joins.encode(f"tq{n:016x}", "ev", f"u{n}", 1_000 + n, 3, True, None), 2, n)


def test_a_batch_survives_the_trip_as_columns() -> None:
    batch = [_join(n) for n in range(5)]
    assert joins.from_columns(joins.to_columns(batch)) == batch
    assert joins.from_columns(joins.to_columns([])) == []


def test_columns_are_plain_lists_so_ray_sends_them_without_pickling_each_join() -> None:
    columns = joins.to_columns([_join(n) for n in range(3)])
    assert all(type(column) is list for column in columns)
    assert columns[0] == [1_000, 1_001, 1_002]


def test_a_ticket_always_lands_on_the_same_partition_and_tickets_spread() -> None:
    # pinned: replicas of different versions must agree, or a rejoin changes partition
    assert [joins.partition_of(t, 4) for t in (
        "tq0123456789abcdef", "tq0000000000000000", "tqffffffffffffffff")] == [1, 2, 3]
    spread = Counter(joins.partition_of(f"tq{n:016x}", 4) for n in range(4_000))
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 800
