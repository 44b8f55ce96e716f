"""The waiting room's admission-stalled signal: 0 while the room keeps its pace or has nobody it
may admit, climbing once users it could admit wait past its pace."""

from __future__ import annotations

from actors.waiting_room import RoomReport, now_ms
from store import metrics


def _stalled(event_id: str) -> float:
    return metrics.ADMISSION_STALLED.bind(event_id).value


def test_a_room_that_admits_at_its_pace_is_not_stalled() -> None:
    report, t0 = RoomReport("ev-pace", admit_interval_s=0.1), now_ms()
    for step in range(50):  # 10/s: one admission every 100 ms
        now = t0 + step * 100
        report.step(now, admittable=5, waiting=5, seats=10, oldest_wait_s=0, rate_per_s=10,
                    measured_per_s=10)
        report.admitted(now, 1)
        report.tick(now + 50)
        assert _stalled("ev-pace") == 0


def test_users_it_could_admit_waiting_past_its_pace_make_it_stalled() -> None:
    report, t0 = RoomReport("ev-stuck", admit_interval_s=0.1), now_ms()
    report.step(t0, admittable=5, waiting=5, seats=10, oldest_wait_s=0, rate_per_s=2,
                measured_per_s=0)
    report.admitted(t0, 1)
    report.tick(t0 + 400)  # within 1/rate = 0.5 s: keeping pace
    assert _stalled("ev-stuck") == 0
    report.step(t0 + 3000, admittable=4, waiting=4, seats=10, oldest_wait_s=3, rate_per_s=2,
                measured_per_s=0)
    report.tick(t0 + 3000)
    assert _stalled("ev-stuck") == 2.5
    report.tick(t0 + 10_500)  # its steps fail (no step): it keeps climbing
    assert _stalled("ev-stuck") == 10.0


def test_a_paused_or_sold_out_room_or_one_with_nobody_waiting_is_not_stalled() -> None:
    report, t0 = RoomReport("ev-idle", admit_interval_s=0.1), now_ms()
    for admittable in (0, -3):  # nobody waiting / paused (the room passes 0), seats all taken
        report.step(t0 + 61_000, admittable=admittable, waiting=7, seats=0, oldest_wait_s=60,
                    rate_per_s=10, measured_per_s=0)
        report.tick(t0 + 61_000)
        assert _stalled("ev-idle") == 0
    # admission is possible again: it counts from then, not from its last admission
    report.step(t0 + 61_000, admittable=3, waiting=7, seats=3, oldest_wait_s=61, rate_per_s=10,
                measured_per_s=0)
    report.tick(t0 + 61_050)
    assert _stalled("ev-idle") == 0


def test_a_passivated_room_stops_exporting_its_gauges() -> None:
    report, t0 = RoomReport("ev-gone", admit_interval_s=0.1), now_ms()
    report.step(t0, admittable=3, waiting=3, seats=3, oldest_wait_s=1, rate_per_s=1,
                measured_per_s=1)
    report.tick(t0 + 5000)
    assert _stalled("ev-gone") > 0
    stalled = metrics.ADMISSION_STALLED.bind("ev-gone")
    report.stopped()
    assert stalled not in metrics.REGISTRY.children()
    assert metrics.ADMISSION_STALLED.bind("ev-gone") is not stalled  # a new incarnation's own
