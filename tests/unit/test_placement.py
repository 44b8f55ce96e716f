"""Placing entities on the host pool (domain/placement.py)."""

from collections import Counter

import pytest

from domain import placement


def test_an_entity_has_one_owner_found_from_its_id_alone():
    members = {0, 1, 2, 3}
    assert placement.owner("block:ev1:0", members) == placement.owner("block:ev1:0", [3, 2, 1, 0])


def test_weights_are_pinned_so_every_process_and_version_agrees():
    assert placement.weight("room:ev0123456789ab", 0) == placement.weight("room:ev0123456789ab", 0)
    assert placement.owner("room:ev0123456789ab", range(4)) == 3
    assert placement.owner("block:ev0123456789ab:7", range(4)) == 1


def test_entities_spread_over_the_members():
    counts = Counter(placement.owner(f"block:ev{n}:0", range(4)) for n in range(4000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 800


def test_a_member_joining_moves_only_the_entities_it_wins():
    ids = [f"room:ev{n}" for n in range(2000)]
    before = {e: placement.owner(e, range(4)) for e in ids}
    after = {e: placement.owner(e, range(5)) for e in ids}
    moved = [e for e in ids if before[e] != after[e]]
    assert all(after[e] == 4 for e in moved)
    assert 0.1 < len(moved) / len(ids) < 0.3  # about 1/5


def test_a_member_leaving_moves_only_its_own_entities():
    ids = [f"ingest:ev{n}:0" for n in range(2000)]
    before = {e: placement.owner(e, {0, 1, 2}) for e in ids}
    after = {e: placement.owner(e, {0, 2}) for e in ids}
    assert all(before[e] == 1 for e in ids if before[e] != after[e])


def test_an_empty_pool_has_no_owner():
    with pytest.raises(LookupError):
        placement.owner("room:ev1", [])


@pytest.mark.parametrize(("events", "expected"), [(0, 2), (250, 2), (600, 3), (10**6, 64)])
def test_the_pool_grows_with_the_open_events_within_its_bounds(events, expected):
    assert placement.pool_size(events, 250, 2, 64) == expected


@pytest.mark.parametrize("entity", ["block:ev1:3", "room:ev1", "ingest:ev1:1", "event:ev1"])
def test_entity_ids_round_trip(entity):
    kind, event_id, index = placement.parse_entity(entity)
    built = {"block": placement.block_entity, "ingest": placement.ingest_entity}
    if kind in built:
        assert built[kind](event_id, index) == entity
    else:
        assert {"room": placement.room_entity, "event": placement.event_entity}[kind](event_id) == entity


@pytest.mark.parametrize("bad", ["", "block:ev1", "room:", "room:a:b", "seat:ev1", "block:ev1:x"])
def test_other_strings_are_not_entity_ids(bad):
    with pytest.raises(ValueError):
        placement.parse_entity(bad)


ANSWERED, SILENT, GONE = placement.Ping.ANSWERED, placement.Ping.SILENT, placement.Ping.GONE


def test_a_member_that_answers_a_ping_late_stays_a_member():
    live, silent = placement.members_after_ping(0, {0, 1}, {1: SILENT}, {}, now=100.0,
                                                leave_after_s=10.0)
    assert live == {0, 1} and silent == {1: 100.0}
    live, silent = placement.members_after_ping(0, {0, 1}, {1: SILENT}, silent, now=109.9,
                                                leave_after_s=10.0)
    assert live == {0, 1} and silent == {1: 100.0}


def test_a_member_silent_for_the_leave_time_leaves_and_rejoins_when_it_answers():
    live, silent = placement.members_after_ping(0, {0, 1, 2}, {1: SILENT, 2: ANSWERED},
                                                {1: 100.0}, now=110.0, leave_after_s=10.0)
    assert live == {0, 2} and silent == {1: 100.0}
    live, silent = placement.members_after_ping(0, {0, 2}, {1: ANSWERED, 2: ANSWERED}, silent,
                                                now=111.0, leave_after_s=10.0)
    assert live == {0, 1, 2} and silent == {}


def test_an_answer_ends_the_silence_so_the_next_late_ping_starts_a_new_one():
    _, silent = placement.members_after_ping(0, {0, 1}, {1: ANSWERED}, {1: 100.0}, now=105.0,
                                             leave_after_s=10.0)
    live, silent = placement.members_after_ping(0, {0, 1}, {1: SILENT}, silent, now=112.0,
                                                leave_after_s=10.0)
    assert live == {0, 1} and silent == {1: 112.0}


def test_a_gone_host_leaves_at_once_and_a_silent_newcomer_does_not_join():
    live, _ = placement.members_after_ping(0, {0, 1}, {1: GONE, 2: SILENT}, {}, now=100.0,
                                           leave_after_s=10.0)
    assert live == {0}


def test_members_lost_by_an_empty_redis_are_the_last_published_and_the_pool_keeps_its_size():
    # a new pool: nothing stored, nothing published yet
    assert placement.members_before_ping(set(), set(), 2, recovering=False) == (set(), 2)
    # as usual: what Redis stores, and the pool sized for the open events (it may shrink)
    assert placement.members_before_ping({0, 1, 2}, {0, 1, 2}, 2, False) == ({0, 1, 2}, 2)
    # an empty Redis: the members host 0 last published, none dropped for want of events
    assert placement.members_before_ping(set(), {0, 1, 2}, 2, False) == ({0, 1, 2}, 3)
    # members published again, the events not back yet: no shrink while recovering
    assert placement.members_before_ping({0, 1, 2}, {0, 1, 2}, 2, True) == ({0, 1, 2}, 3)
    assert placement.members_before_ping({0, 1}, {0, 1}, 4, True) == ({0, 1}, 4)  # may grow
    # a silent member (busy recovering) within its grace stays a member
    live, _ = placement.members_after_ping(
        0, placement.members_before_ping(set(), {0, 1}, 2, True)[0],
        {1: placement.Ping.SILENT}, {}, now=100.0, leave_after_s=10.0)
    assert live == {0, 1}
