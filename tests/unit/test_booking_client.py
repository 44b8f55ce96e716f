"""The replica's batchers (replica/client.py): one per seat block and method, with that
method's limits from settings, and a closed event's dropped with its handles."""

from __future__ import annotations

from domain.settings import Settings
from replica.client import BookingClient, blocks_with_room


def client() -> BookingClient:
    return BookingClient(Settings.development(), redis=None)  # type: ignore[arg-type]


def test_each_block_has_one_hold_batcher_with_the_hold_limits() -> None:
    booking = client()
    first = booking._batcher(booking._holds, ("ev1", 0), "hold")
    assert booking._batcher(booking._holds, ("ev1", 0), "hold") is first
    assert booking._batcher(booking._holds, ("ev1", 1), "hold") is not first
    s = booking.settings
    assert (first._max_size, first._wait_s, first._max_in_flight) == (
        s.hold_batch_max, s.hold_batch_wait_s, s.hold_batches_in_flight)


def test_checkout_batches_have_the_checkout_limits_and_no_in_flight_cap() -> None:
    booking = client()
    batcher = booking._batcher(booking._checkouts, ("ev1", 0), "checkouts")
    s = booking.settings
    assert (batcher._max_size, batcher._wait_s, batcher._max_in_flight) == (
        s.checkout_batch_max, s.checkout_batch_wait_ms / 1000, None)


def test_a_closed_events_batchers_and_handles_are_dropped_and_no_other_events() -> None:
    booking = client()
    for event_id in ("ev1", "ev2"):
        booking._batcher(booking._holds, (event_id, 0), "hold")
        booking._batcher(booking._checkouts, (event_id, 0), "checkouts")
        booking._handles[("block", event_id, 0)] = object()
        booking._handles[("event", event_id, 0)] = object()
    booking._drop("ev1")
    assert list(booking._holds) == [("ev2", 0)]
    assert list(booking._checkouts) == [("ev2", 0)]
    assert sorted(booking._handles) == [("block", "ev2", 0), ("event", "ev2", 0)]


def test_a_section_hold_tries_the_blocks_with_room_and_those_whose_count_is_unknown() -> None:
    # block 2's count is missing (restored from the events log, not recounted yet): asked
    assert blocks_with_room([0, 1, 2, 3], {0: 5, 1: 1, 3: 0}, 2) == [0, 2]
    assert blocks_with_room([0, 1], {}, 4) == [0, 1]
