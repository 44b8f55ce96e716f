"""Where an ingest lane starts reading a joins partition after a Redis restart (issue 12)."""

from actors.join_consumer import start_offset


def test_without_a_floor_the_committed_offset_is_where_the_lane_starts():
    assert start_offset(42, None, 0) == 42
    assert start_offset(-1001, None, 0) == -1001  # nothing committed: the beginning


def test_a_redis_that_lost_writes_makes_the_lane_read_them_again():
    assert start_offset(42, {0: 30}, 0) == 30


def test_a_redis_ahead_of_kafkas_commit_changes_nothing():
    assert start_offset(42, {0: 50}, 0) == 42


def test_a_redis_that_knows_nothing_of_a_partition_reads_it_from_the_beginning():
    assert start_offset(42, {1: 50}, 0) < 0
    assert start_offset(42, {}, 0) < 0
