"""Merge joins from several Kafka partitions into one order, behind a watermark.

Each partition delivers its records in offset order, but their `joined_at_ms` stamps are only
roughly increasing: several ingress replicas with slightly different clocks write to the same
partition, and records reach the broker with some lag. To emit one stream ordered by
`(joined_at_ms, ticket_id)` we buffer joins and release an entry only when nothing that could
still arrive can sort before it.

Watermark. For each partition the frontier is the highest `joined_at_ms` seen there. A record
still to come on that partition is stamped no earlier than frontier - slack, where::

    slack_ms = 2 * max_uncertainty_ms + ingest_lag_ms

`max_uncertainty_ms` is the largest clock uncertainty seen on any join so far. It is doubled
because two ingresses can each be off by up to that much in opposite directions, so two joins
made at the same true instant can carry stamps 2u apart; `ingest_lag_ms` (a constructor
parameter) covers records of one partition overtaking each other on the way in. The
watermark is min(frontier) - slack over the known partitions, and an entry is released only
when `joined_at_ms < watermark` (strictly: a later record stamped exactly at the watermark could
still sort before it on `ticket_id`).

Idle partitions. A partition that has delivered nothing new for `idle_timeout_ms` stops
holding the watermark back: its frontier becomes `max(frontier, now_ms)`, meaning "anything it
still sends was stamped around now". That also lets the merge drain when every partition is
quiet. A partition registered with `add_partition` but silent holds the watermark until it
times out, so start-up waits for every partition instead of racing ahead of a slow one. A
record that arrives anyway behind already released ones is still released (next call, at the
front) rather than dropped, and counted in `late_count`: losing a user is worse than a slightly
late place.

Offsets. Per partition we track the highest offset such that every record at or below it has
been persisted (or dropped as a duplicate): `committable_offsets()`. The caller persists what
`take` returned, says so (`persisted`), then commits those offsets (Kafka's commit value is
offset + 1); a write that failed (Redis down) leaves them uncommittable until it is redone. A crash
between the two replays records already persisted; they are recognised by `ticket_id` (pass
the persisted ids as `released_ticket_ids` to a new merger) and dropped, so nobody is lost or
duplicated.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.waiting.errors import InvalidParameter, OffsetRegression
from domain.waiting.tickets import Join


@dataclass
class _Partition:
    """Mutable bookkeeping for one partition (internal)."""

    last_activity_ms: int
    frontier_ms: int | None = None
    last_offset: int | None = None
    # Offsets in push order; those in `done` (released or dropped) pop off the left.
    offsets: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    committable: int | None = None

    def advance(self) -> None:
        while self.offsets and self.offsets[0] in self.done:
            offset = self.offsets.popleft()
            self.done.discard(offset)
            self.committable = offset


class WatermarkMerger:
    """Buffers joins from many partitions and releases them in `(joined_at_ms, ticket_id)`
    order once they are behind the watermark (see the module docstring)."""

    def __init__(self, ingest_lag_ms: int, idle_timeout_ms: int,
                 released_ticket_ids: Iterable[str] = ()) -> None:
        if ingest_lag_ms < 0 or idle_timeout_ms <= 0:
            raise InvalidParameter("ingest_lag_ms must be >= 0 and idle_timeout_ms > 0")
        self._ingest_lag_ms = ingest_lag_ms
        self._idle_timeout_ms = idle_timeout_ms
        self._partitions: dict[int, _Partition] = {}
        self._heap: list[Join] = []  # a Join sorts by (joined_at_ms, ticket_id)
        self._seen: set[str] = set(released_ticket_ids)
        self._max_uncertainty_ms = 0
        self._last_released: Join | None = None
        self.late_count = 0

    def add_partition(self, partition: int, now_ms: int) -> None:
        """Make a partition known before its first record, so it holds the watermark back."""
        if partition not in self._partitions:
            self._partitions[partition] = _Partition(last_activity_ms=now_ms)

    def touch(self, partition: int, now_ms: int) -> None:
        """Say a partition still has joins on the way (its consumer is behind, or unheard
        from), so it keeps holding the watermark back instead of being treated as idle."""
        self.add_partition(partition, now_ms)
        self._partitions[partition].last_activity_ms = now_ms

    def push(self, join: Join, now_ms: int) -> bool:
        """Buffer one join read from `join.partition` at `join.offset`.

        Returns False when the ticket was already seen (a replay) and the join is dropped.
        Raises `OffsetRegression` for a new ticket at an offset not above the last one seen
        on its partition, which would mean the consumer rewound past what we tracked.
        """
        self.add_partition(join.partition, now_ms)
        part = self._partitions[join.partition]
        fresh_offset = part.last_offset is None or join.offset > part.last_offset
        if join.ticket_id in self._seen:
            if fresh_offset:
                self._track_offset(part, join.offset, done=True)
            return False
        if not fresh_offset:
            raise OffsetRegression(
                f"partition {join.partition}: offset {join.offset} <= {part.last_offset}")
        self._seen.add(join.ticket_id)
        self._track_offset(part, join.offset, done=False)
        part.last_activity_ms = now_ms
        if part.frontier_ms is None or join.joined_at_ms > part.frontier_ms:
            part.frontier_ms = join.joined_at_ms
        self._max_uncertainty_ms = max(self._max_uncertainty_ms, join.uncertainty_ms)
        heapq.heappush(self._heap, join)
        return True

    def watermark_ms(self, now_ms: int) -> int | None:
        """Entries stamped strictly below this are safe to release; None before any partition
        is known."""
        if not self._partitions:
            return None
        frontiers = []
        for part in self._partitions.values():
            idle = now_ms - part.last_activity_ms >= self._idle_timeout_ms
            if idle:
                frontiers.append(now_ms if part.frontier_ms is None
                                 else max(part.frontier_ms, now_ms))
            elif part.frontier_ms is None:
                return None  # known, active, nothing seen yet: it could send anything
            else:
                frontiers.append(part.frontier_ms)
        return min(frontiers) - self.slack_ms

    @property
    def slack_ms(self) -> int:
        return 2 * self._max_uncertainty_ms + self._ingest_lag_ms

    def release(self, now_ms: int) -> list[Join]:
        """Pop, in order, every buffered join behind the watermark, and count them persisted
        (`take` then `persisted`, for a caller whose persistence cannot fail)."""
        released = self.take(now_ms)
        self.persisted(released)
        return released

    def take(self, now_ms: int) -> list[Join]:
        """Pop, in order, every buffered join behind the watermark. Their offsets become
        committable only once the caller says they are `persisted`: a caller whose write
        failed keeps them and writes them again, and nothing it lost is ever committed."""
        watermark = self.watermark_ms(now_ms)
        released: list[Join] = []
        if watermark is None:
            return released
        while self._heap and self._heap[0].joined_at_ms < watermark:
            join = heapq.heappop(self._heap)
            if self._last_released is not None and join < self._last_released:
                self.late_count += 1
            else:
                self._last_released = join
            released.append(join)
        return released

    def persisted(self, joins: Iterable[Join]) -> None:
        """These taken joins are persisted: their offsets may be committed."""
        for join in joins:
            part = self._partitions[join.partition]
            part.done.add(join.offset)
            part.advance()

    def committable_offsets(self) -> dict[int, int]:
        """Per partition, the highest offset with every record at or below it released."""
        return {p: part.committable for p, part in self._partitions.items()
                if part.committable is not None}

    @property
    def pending_count(self) -> int:
        return len(self._heap)

    @staticmethod
    def _track_offset(part: _Partition, offset: int, done: bool) -> None:
        part.last_offset = offset
        part.offsets.append(offset)
        if done:
            part.done.add(offset)
            part.advance()
