"""Live seat availability: versioned changes, coalesced deltas, resume, and the SSE wire format.

Every seat change is published once, by the owning block's Lua script, as one numbered change
(the event's seat version). A Serve replica keeps one `SeatBoard` per event current from those
changes, merges what arrives within a short window into one `Delta` for all its streams, and
keeps recent deltas in a `History` so a reconnect (SSE `Last-Event-ID`) resumes with one merged
delta instead of a full snapshot. The browser applies the same model: a snapshot, then deltas
newer than what it has. Pure: no Redis, no asyncio.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from domain import seatmap_codec as codec
from domain.errors import InvalidRequest
from domain.venue import Block

STATUSES = frozenset({"available", "held", "sold"})
MAX_EVENT_ID_DIGITS = 18
FORMATS = ("json", "compact")
Cell = tuple[int, int]  # (block index, seat index in the block)


@dataclass(frozen=True)
class Change:
    """Seats whose status changed at `version` (one block script call), by id and by
    (block, index) -> status code (the compact form's address)."""

    version: int
    seats: dict[str, str]
    cells: dict[Cell, int] = field(default_factory=dict)


def change_of(version: int, block: Block, status: str, indices: str) -> Change:
    """A change as the scripts record it (block, status, comma-separated seat indices)."""
    if status not in STATUSES:
        raise InvalidRequest(f"unknown seat status {status[:20]!r}")
    positions = [int(i) for i in indices.split(",") if i]
    code = codec.STATUS_CODES[status]
    return Change(version, {block.seat_at(i): status for i in positions},
                  {(block.index, i): code for i in positions})


class VersionGap(Exception):
    """A change arrived out of order (the change log was trimmed or reset): reload a snapshot."""


class SeatBoard:
    """Every seat's status at `version`, kept current by applying changes in version order.

    Kept twice: by seat id (the JSON form) and, when `codes` is given, as one status code per
    seat per block (the compact form), with each block's encoded string cached until the
    block changes - so a snapshot of a big venue re-encodes only the blocks that changed."""

    def __init__(self, statuses: dict[str, str], version: int,
                 codes: list[bytearray] | None = None) -> None:
        self.statuses = dict(statuses)
        self.version = version
        self.codes = codes if codes is not None else []
        self._encoded: list[str | None] = [None] * len(self.codes)

    def apply(self, change: Change) -> bool:
        """Apply the next change; False for one already applied; VersionGap for a skipped one."""
        if change.version <= self.version:
            return False
        if change.version != self.version + 1:
            raise VersionGap(f"have {self.version}, got {change.version}")
        self.statuses.update(change.seats)
        if self.codes:
            for (block, index), code in change.cells.items():
                self.codes[block][index] = code
                self._encoded[block] = None
        self.version = change.version
        return True

    def block_states(self, first: int = 0, last: int | None = None) -> list[str]:
        """The compact states of blocks first..last (all by default), encoded once per change."""
        end = len(self.codes) if last is None else last + 1
        out = []
        for block in range(first, end):
            text = self._encoded[block]
            if text is None:
                text = self._encoded[block] = codec.encode_block(self.codes[block])
            out.append(text)
        return out


@dataclass(frozen=True)
class Delta:
    """The last status of each seat changed in versions (since, version]."""

    since: int
    version: int
    seats: dict[str, str]
    cells: dict[Cell, int] = field(default_factory=dict)


@dataclass
class Coalescer:
    """Changes gathered since the last send, merged into one delta: the last status wins, so a
    seat held and released within one window is sent once, as available."""

    since: int
    version: int = 0
    seats: dict[str, str] = field(default_factory=dict)
    cells: dict[Cell, int] = field(default_factory=dict)

    def add(self, change: Change) -> None:
        self.seats.update(change.seats)
        self.cells.update(change.cells)
        self.version = max(self.version, change.version)

    def take(self) -> Delta | None:
        """The merged delta (None when nothing changed); starts a new window after it."""
        if not self.seats:
            return None
        delta = Delta(self.since, self.version, self.seats, self.cells)
        self.since, self.seats, self.cells = self.version, {}, {}
        return delta


class History:
    """Recent deltas, oldest first, bounded by the seat changes they hold."""

    def __init__(self, max_seats: int) -> None:
        self._max = max_seats
        self._deltas: deque[Delta] = deque()
        self._seats = 0

    def add(self, delta: Delta) -> None:
        self._deltas.append(delta)
        self._seats += len(delta.seats)
        while self._seats > self._max and len(self._deltas) > 1:
            self._seats -= len(self._deltas.popleft().seats)

    @property
    def newest(self) -> int | None:
        return self._deltas[-1].version if self._deltas else None

    def resume(self, last_seen: int, current: int) -> Delta | None:
        """What a client that has `last_seen` needs to reach `current`; None = send a snapshot.

        A delta with no seats means the client is up to date (changes not yet sent reach it
        with the next delta, which starts at or before `last_seen`)."""
        if last_seen > current:
            return None  # a version this log never had (the log was reset): start over
        newest = self.newest
        if last_seen == current or (newest is not None and last_seen >= newest):
            return Delta(last_seen, last_seen, {})
        if not self._deltas or self._deltas[0].since > last_seen:
            return None  # too old: the changes since then are no longer kept
        seats: dict[str, str] = {}
        cells: dict[Cell, int] = {}
        version = last_seen
        for delta in self._deltas:
            if delta.version > last_seen:
                seats.update(delta.seats)
                cells.update(delta.cells)
                version = delta.version
        return Delta(last_seen, version, seats, cells)


def parse_format(raw: str | None) -> str:
    """`?format=`: `json` (seat ids, the default when absent) or `compact` (seatmap-v1),
    exactly as the OpenAPI document's enum says; anything else (also "" or "JSON") is a 400."""
    value = "json" if raw is None else raw
    if value not in FORMATS:
        raise InvalidRequest("format must be json or compact")
    return value


def parse_last_event_id(raw: str | None) -> int | None:
    """The version a reconnecting client last saw (SSE `Last-Event-ID`); None if absent/junk."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_EVENT_ID_DIGITS:
        return None
    return int(raw)


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event; `id` is the seat version, so the browser resumes from it."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {body}\n\n".encode()


def snapshot_message(board: SeatBoard, extra: dict[str, Any] | None = None) -> bytes:
    return sse("snapshot", {"version": board.version, "seats": board.statuses} | (extra or {}),
               board.version)


def delta_message(delta: Delta) -> bytes:
    return sse("delta", {"version": delta.version, "seats": delta.seats}, delta.version)


def compact_snapshot_message(board: SeatBoard, layout_etag: str,
                             extra: dict[str, Any] | None = None) -> bytes:
    """The snapshot in seatmap-v1: every block's states, in block order, read with the layout
    whose ETag is `layout` (GET /v1/events/{id}/layout)."""
    return sse("snapshot", {"version": board.version, "format": codec.FORMAT,
                            "layout": layout_etag, "blocks": board.block_states()}
               | (extra or {}), board.version)


def compact_delta_message(delta: Delta) -> bytes:
    """A delta in seatmap-v1: `runs` are (block, start, length, status) runs, base64."""
    return sse("delta", {"version": delta.version, "runs": codec.encode_runs(delta.cells)},
               delta.version)


def retry_hint(jitter: float, base_ms: int = 1000) -> bytes:
    """How long the browser waits before reconnecting: base_ms to 3 x base_ms by `jitter`
    (0..1, random per stream), so a replica restart does not bring every client back in the
    same millisecond."""
    return f"retry: {base_ms + round(2 * base_ms * min(1.0, max(0.0, jitter)))}\n\n".encode()


HEARTBEAT = b": heartbeat\n\n"
