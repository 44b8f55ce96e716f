"""The operator console's arithmetic: rates from counters, the sell-out estimate, a bounded
history of snapshots and a tally of refused answers.

Pure: every function takes the time it needs, nothing here reads a clock or a store. The
console stream (store/console_feed.py) samples an event's counters about once a second and
asks these what the samples mean; the tests give them made-up series.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from domain.event import Event

HISTORY_S = 300.0  # what the console's charts show: the last five minutes
RATE_WINDOW_S = 10.0  # admissions/s and sales/s are measured over this much of the history
TALLY_MAX_EVENTS = 1024  # a fuzzer's made-up event ids must not grow the tally without end


@dataclass(frozen=True)
class Point:
    """One counter's value at a time (epoch seconds)."""

    at_s: float
    value: float


def rate_per_s(points: Sequence[Point], now_s: float, window_s: float = RATE_WINDOW_S) -> float:
    """How fast a counter grew over the last `window_s` before `now_s`: growth over elapsed
    time between the oldest point inside the window and the newest. A counter that went down
    (a restart counted from zero again) counts from its lower value, never as negative."""
    inside = [p for p in points if now_s - window_s <= p.at_s <= now_s]
    if len(inside) < 2 or inside[-1].at_s <= inside[0].at_s:
        return 0.0
    grown = sum(max(0.0, b.value - a.value) for a, b in pairwise(inside))
    return grown / (inside[-1].at_s - inside[0].at_s)


def sellout_in_s(sold: Sequence[Point], seats_total: int, now_s: float,
                 window_s: float = RATE_WINDOW_S * 6) -> float | None:
    """Seconds until every seat is sold at the pace of the last `window_s` (a minute: sales come
    in batches, a shorter window swings too much): 0 when sold out, None when nothing sold in the
    window (no pace, no estimate)."""
    if not sold:
        return None
    left = seats_total - sold[-1].value
    if left <= 0:
        return 0.0
    pace = rate_per_s(sold, now_s, window_s)
    return left / pace if pace > 0 else None


class History:
    """The last `keep_s` of snapshots, oldest first: what a console that connects gets first,
    so its charts start full."""

    def __init__(self, keep_s: float = HISTORY_S) -> None:
        self.keep_s = keep_s
        self._items: deque[tuple[float, dict[str, Any]]] = deque()

    def add(self, at_s: float, item: dict[str, Any]) -> None:
        self._items.append((at_s, item))
        while self._items and self._items[0][0] < at_s - self.keep_s:
            self._items.popleft()

    def items(self) -> list[dict[str, Any]]:
        return [item for _, item in self._items]

    def last(self) -> dict[str, Any] | None:
        return self._items[-1][1] if self._items else None

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class ErrorCounts:
    """Refused answers by what they tell an operator: the platform failing (5xx), fans turned
    away by the rate limits (429) and every other refusal (4xx: sold out seats, bad input)."""

    server: int = 0
    rate_limited: int = 0
    refused: int = 0


def error_counts(statuses: dict[int, int]) -> ErrorCounts:
    """The console's three error numbers from answer counts by status."""
    return ErrorCounts(server=sum(n for s, n in statuses.items() if s >= 500),
                       rate_limited=statuses.get(429, 0),
                       refused=sum(n for s, n in statuses.items() if 400 <= s < 500 and s != 429))


class StatusTally:
    """Error answers per event as one replica answered them (the ingress middleware adds, the
    console reads): an in-process count, a Python add per error. At most `max_events` events
    are kept; the one counted least recently goes first when a new one comes."""

    def __init__(self, max_events: int = TALLY_MAX_EVENTS) -> None:
        self.max_events = max_events
        self._by_event: dict[str, dict[int, int]] = {}

    def add(self, event_id: str, status: int) -> None:
        counts = self._by_event.pop(event_id, None)
        if counts is None:
            counts = {}
            if len(self._by_event) >= self.max_events:
                del self._by_event[next(iter(self._by_event))]
        counts[status] = counts.get(status, 0) + 1
        self._by_event[event_id] = counts  # re-inserted: the dict's order is recency

    def of(self, event_id: str) -> dict[int, int]:
        return dict(self._by_event.get(event_id, {}))

    def __len__(self) -> int:
        """How many events have errors counted."""
        return len(self._by_event)


@dataclass(frozen=True)
class Counts:
    """An event's counters as the store has them at one moment."""

    waiting: int
    pre_queue: int
    admitted: int
    seats_held: int
    seats_sold: int
    revenue_cents: int


def snapshot(event: Event, counts: Counts, earlier: Sequence[dict[str, Any]], now_s: float,
             position_lag_s: float | None, statuses: dict[int, int]) -> dict[str, Any]:
    """One console snapshot (api/models.ConsoleSnapshot): the counters, the rates measured from
    them against the `earlier` snapshots (oldest first) and the sell-out estimate."""
    admitted = [Point(s["at"], s["admitted"]) for s in earlier] + [Point(now_s, counts.admitted)]
    sold = [Point(s["at"], s["seats_sold"]) for s in earlier] + [Point(now_s, counts.seats_sold)]
    total = event.venue.seats_total
    return {
        "at": round(now_s, 3), "event_id": event.event_id, "name": event.name,
        "closed": event.closed, "waiting": counts.waiting, "pre_queue": counts.pre_queue,
        "admitted": counts.admitted, "admission_rate_per_s": event.admission_rate_per_s,
        "admitted_per_s": round(rate_per_s(admitted, now_s), 3),
        "seats_total": total, "seats_held": counts.seats_held, "seats_sold": counts.seats_sold,
        "seats_available": max(0, total - counts.seats_held - counts.seats_sold),
        "revenue_cents": counts.revenue_cents,
        "sold_per_s": round(rate_per_s(sold, now_s), 3),
        "sellout_in_s": _rounded(sellout_in_s(sold, total, now_s)),
        "position_lag_s": _rounded(position_lag_s),
        "errors": asdict(error_counts(statuses)),
        "sections": [{"name": s.name, "price_cents": s.price_cents,
                      "seats_total": s.seats_total} for s in event.sections]}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
