"""The operator console's numbers (domain/console.py): rates, the sell-out estimate, the
history and the error tally, on made-up series with the time passed in."""

from __future__ import annotations

import msgspec
import pytest

from api.models import ConsoleSnapshot
from domain.console import (
    Counts,
    History,
    Point,
    StatusTally,
    error_counts,
    rate_per_s,
    sellout_in_s,
    snapshot,
)
from domain.event import Event
from domain.venue import Section


def points(*pairs: tuple[float, float]) -> list[Point]:
    return [Point(at, value) for at, value in pairs]


def test_a_rate_is_the_counters_growth_over_the_window_it_covers() -> None:
    admitted = points((100, 0), (101, 50), (102, 100), (103, 150))
    assert rate_per_s(admitted, now_s=103) == pytest.approx(50.0)


def test_a_rate_reads_only_the_last_window_of_the_series() -> None:
    sold = points((0, 0), (50, 1000), (95, 1000), (100, 1010))
    assert rate_per_s(sold, now_s=100, window_s=10) == pytest.approx(2.0)


def test_a_counter_that_restarts_from_zero_never_makes_a_negative_rate() -> None:
    restarted = points((0, 500), (1, 510), (2, 0), (3, 10))
    assert rate_per_s(restarted, now_s=3) == pytest.approx(20 / 3)


def test_fewer_than_two_points_in_the_window_have_no_rate() -> None:
    assert rate_per_s(points((10, 5)), now_s=10) == 0.0
    assert rate_per_s(points((0, 5), (1, 9)), now_s=100) == 0.0


def test_the_sellout_estimate_is_the_seats_left_at_the_last_minutes_pace() -> None:
    sold = points((0, 0), (30, 300), (60, 600))  # 10 seats/s
    assert sellout_in_s(sold, seats_total=1000, now_s=60) == pytest.approx(40.0)


def test_a_sold_out_event_sells_out_in_zero_seconds_and_an_idle_one_has_no_estimate() -> None:
    assert sellout_in_s(points((0, 90), (1, 100)), seats_total=100, now_s=1) == 0.0
    assert sellout_in_s(points((0, 10), (60, 10)), seats_total=100, now_s=60) is None
    assert sellout_in_s([], seats_total=100, now_s=60) is None


def test_the_history_keeps_the_last_five_minutes_oldest_first() -> None:
    history = History(keep_s=300)
    for at in range(0, 400, 10):
        history.add(at, {"at": at})
    kept = [item["at"] for item in history.items()]
    assert kept[0] == 90 and kept[-1] == 390 and kept == sorted(kept)
    assert history.last() == {"at": 390} and len(history) == len(kept)


def test_errors_are_counted_as_server_failures_rate_limits_and_other_refusals() -> None:
    counts = error_counts({500: 1, 503: 2, 429: 7, 409: 4, 401: 1, 404: 1})
    assert (counts.server, counts.rate_limited, counts.refused) == (3, 7, 6)


def test_the_tally_counts_per_event_and_forgets_the_least_recent_event_when_full() -> None:
    tally = StatusTally(max_events=2)
    tally.add("ev1", 503)
    tally.add("ev2", 429)
    tally.add("ev1", 503)
    tally.add("ev3", 409)  # ev2 was counted least recently
    assert tally.of("ev1") == {503: 2} and tally.of("ev3") == {409: 1}
    assert tally.of("ev2") == {}


def test_a_snapshot_measures_admissions_and_sales_against_what_came_before() -> None:
    event = Event("ev0123456789ab", "Gig", 0.0, 600, 4,
                  (Section("A", 10, 10, 5000), Section("B", 10, 10, 2500)), 100,
                  admission_rate_per_s=20.0)
    earlier = [{"at": 90.0 + i, "admitted": 20 * i, "seats_sold": 2 * i} for i in range(10)]
    snap = snapshot(event, Counts(waiting=500, pre_queue=0, admitted=200, seats_held=30,
                                  seats_sold=20, revenue_cents=70_000),
                    earlier, now_s=100.0, position_lag_s=0.25, statuses={503: 1, 429: 2})
    assert snap["admission_rate_per_s"] == 20.0 and snap["admitted_per_s"] == pytest.approx(20.0)
    assert snap["sold_per_s"] == pytest.approx(2.0)
    assert snap["sellout_in_s"] == pytest.approx((200 - 20) / 2.0)
    assert snap["seats_total"] == 200 and snap["seats_available"] == 150
    assert snap["errors"] == {"server": 1, "rate_limited": 2, "refused": 0}
    assert [s["name"] for s in snap["sections"]] == ["A", "B"] and snap["position_lag_s"] == 0.25
    msgspec.convert(snap, ConsoleSnapshot)  # what the stream sends is what its document says
