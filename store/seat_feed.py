"""Live availability in one Serve replica: one Redis reader per event, fanned out in-process.

Each `SeatFeed` loads a consistent snapshot (the seat version and every block's bitmaps in
one MULTI), then follows the event's change stream with a blocking XREAD, keeping a
`SeatBoard` current (by seat id, and as seatmap-v1 codes per block). The replica's streams
are split into `seat_delta_phases` phases written in turn, one every interval / phases, each
with one delta (encoded once per form, JSON or compact) of every change since its last turn:
so 7,500 clients cost one Redis reader and a few encodings per interval, not one per client,
and their writes are spread over the interval instead of one burst that all wait behind.
Reads go through the `ReadRouter` (a replica when one is fresh), and a failed read falls back
to the primary and continues from the same stream id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from starlette.responses import Response

from domain import seatmap_codec as codec
from domain.availability import (
    HEARTBEAT,
    Coalescer,
    History,
    SeatBoard,
    VersionGap,
    change_of,
    compact_delta_message,
    compact_snapshot_message,
    delta_message,
    snapshot_message,
)
from domain.event import Event
from domain.settings import Settings
from store import catalog, eager, keys
from store.replicas import FAILURES, ReadRouter, Source

log = logging.getLogger("ticketing.seat_feed")

Send = Callable[[dict[str, Any]], Awaitable[None]]  # an ASGI connection's `send`


class Subscriber:
    """One stream, written straight to its connection's ASGI `send` by whoever has news for it
    (the feed's flush, heartbeat or reload), in that caller's turn: no task per stream wakes
    up per delta (see store/eager.py). While a write waits on a slow client, later messages
    queue behind it, bounded; past the bound the stream ends, and its client reconnects and
    resumes with Last-Event-ID."""

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self._limit = limit
        self._queued: deque[bytes] = deque()
        self._writing: asyncio.Task[None] | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def push(self, message: bytes) -> None:
        if self.ended.done():
            return
        if self._writing is not None:
            if len(self._queued) >= self._limit:
                self.end()  # too slow: it is ended, reconnects and resumes
            else:
                self._queued.append(message)
            return
        try:
            self._writing = eager.start(self._write(message))
        except Exception as error:  # the connection failed: its client reconnects
            log.debug("availability stream write failed: %r", error)
            self.end()

    async def _write(self, message: bytes) -> None:
        """Write `message` and then, if that had to wait, what queued meanwhile, as one."""
        try:
            await self._send({"type": "http.response.body", "body": message, "more_body": True})
            while self._queued and not self.ended.done():
                chunk = b"".join(self._queued)
                self._queued.clear()
                await self._send({"type": "http.response.body", "body": chunk,
                                  "more_body": True})
        except Exception as error:
            if self._writing is None:
                raise  # raised before it waited: push() sees it
            log.debug("availability stream write failed: %r", error)
            self.end()
        finally:
            self._writing = None

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


async def read_snapshot(redis: Redis, event: Event) -> tuple[SeatBoard, str]:
    """Every seat's status, the version they are at and the change stream's last id, read
    atomically (so following the stream from that id misses and repeats nothing)."""
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.seat_version(event.event_id))
    pipe.xrevrange(keys.seat_changes(event.event_id), count=1)
    for b in event.venue.blocks:
        pipe.get(keys.block_held(event.event_id, b.index))
        pipe.get(keys.block_sold(event.event_id, b.index))
    version, last, *bitmaps = await pipe.execute()
    statuses: dict[str, str] = {}
    codes: list[bytearray] = []
    for i, block in enumerate(event.venue.blocks):
        held, sold = bitmaps[2 * i] or b"", bitmaps[2 * i + 1] or b""
        statuses.update(catalog.block_statuses(block, held, sold))
        codes.append(codec.codes_from_bitmaps(held, sold, block.seats_total))
    last_id = last[0][0].decode() if last else "0-0"
    return SeatBoard(statuses, int(version or 0), codes), last_id


class Phase:
    """Streams written in the same turn, the seat version all of them have been sent, and
    when they were last written together (a delta, a snapshot or a heartbeat)."""

    def __init__(self, version: int = 0) -> None:
        self.subscribers: set[Subscriber] = set()
        self.version = version
        self.written_at = time.monotonic()


class SeatFeed:
    def __init__(self, event: Event, reads: ReadRouter, settings: Settings) -> None:
        self.event = event
        self._reads = reads
        self._settings = settings
        self._key = keys.seat_changes(event.event_id)
        self.board = SeatBoard({}, 0)
        self._last_id = "0-0"
        self.source: Source = Source("primary")
        self._window = Coalescer(0)
        self._history = History(settings.seat_resume_max)
        self._subscribers: dict[Subscriber, Phase] = {}
        self._phases = [Phase() for _ in range(settings.seat_delta_phases)]
        self._turn = 0
        self._turn_s = settings.seat_delta_interval_s / settings.seat_delta_phases
        self._compact: set[Subscriber] = set()  # the subset that asked for seatmap-v1
        self._snapshot: dict[bool, tuple[int, bytes]] = {}
        self.layout_body = codec.layout_body(event.venue)
        self.layout_etag = codec.etag_of(self.layout_body)
        self._advanced = asyncio.Condition()
        self._turn_at: asyncio.TimerHandle | None = None
        self._last_turn = 0.0
        self._idle_since = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False

    async def start(self) -> None:
        await self._load()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._heartbeat())]

    async def _load(self) -> None:
        """(Re)start from a fresh snapshot; streams already open get it too."""
        (self.board, self._last_id), self.source = await self._reads.read(
            lambda r: read_snapshot(r, self.event))
        self._window = Coalescer(self.board.version)
        self._history = History(self._settings.seat_resume_max)
        self._snapshot = {}
        for phase in self._phases:
            phase.version = self.board.version
        for subscriber in self._subscribers:
            subscriber.push(self.snapshot(subscriber in self._compact))

    # -- streams -------------------------------------------------------------------------
    def subscribe(self, send: Send, last_seen: int | None, compact: bool = False,
                  first: bytes = b"") -> Subscriber:
        """A new stream on `send` (its response head already sent): `first`, then a resume
        delta when `last_seen` is recent enough, else a snapshot; `compact` streams get
        seatmap-v1, the others seat-id JSON."""
        subscriber = Subscriber(send, self._settings.seat_stream_queue_max)
        resumed = (self._history.resume(last_seen, self.board.version)
                   if last_seen is not None else None)
        if resumed is None:
            subscriber.push(first + self.snapshot(compact))
        elif resumed.seats:
            subscriber.push(first + (compact_delta_message(resumed) if compact
                                     else delta_message(resumed)))
        elif first:
            subscriber.push(first)
        phase = min(self._phases, key=lambda p: len(p.subscribers))
        phase.subscribers.add(subscriber)
        self._subscribers[subscriber] = phase
        if compact:
            self._compact.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        phase = self._subscribers.pop(subscriber, None)
        if phase is not None:
            phase.subscribers.discard(subscriber)
        self._compact.discard(subscriber)
        if not self._subscribers:
            self._idle_since = time.monotonic()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def snapshot(self, compact: bool = False) -> bytes:
        """The current snapshot, encoded once per version and form however many clients ask."""
        cached = self._snapshot.get(compact)
        if cached is None or cached[0] != self.board.version:
            extra: dict[str, Any] = {"source": self.source.kind}
            if self.source.staleness_s is not None:
                extra["staleness_ms"] = round(self.source.staleness_s * 1000, 1)
            message = (compact_snapshot_message(self.board, self.layout_etag, extra) if compact
                       else snapshot_message(self.board, extra))
            cached = self._snapshot[compact] = (self.board.version, message)
        return cached[1]

    async def wait_for(self, version: int, timeout_s: float) -> bool:
        """Wait until the board has reached `version` (read-your-writes for cached reads)."""
        async with self._advanced:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait_for(
                    lambda: self.board.version >= version), timeout_s)
        return self.board.version >= version

    # -- following the change stream -----------------------------------------------------
    async def _follow(self) -> None:
        while not self.closed:
            try:
                entries = await self._read_changes()
                if entries:
                    await self._apply(entries)
            except VersionGap as gap:
                log.info("seat feed %s reloads: %s", self.event.event_id, gap)
                await self._reload_later()
            except FAILURES as error:
                log.warning("seat feed %s read failed: %s", self.event.event_id, error)
                await asyncio.sleep(0.5)  # the primary itself failed (a replica falls back)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("seat feed %s failed", self.event.event_id)
                await asyncio.sleep(0.5)

    async def _read_changes(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        last_id = self._last_id

        async def xread(redis: Redis) -> Any:
            return await redis.xread({self._key: last_id}, count=1000, block=1000)

        reply, self.source = await self._reads.read(xread)
        return reply[0][1] if reply else []

    async def _apply(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        blocks = self.event.venue.blocks
        for entry_id, fields in entries:
            change = change_of(int(fields[b"v"]), blocks[int(fields[b"b"])],
                               fields[b"s"].decode(), fields[b"i"].decode())
            if self.board.apply(change):
                self._window.add(change)
            self._last_id = entry_id.decode()
        async with self._advanced:
            self._advanced.notify_all()
        self._schedule_turn()

    async def _reload_later(self) -> None:
        await asyncio.sleep(0.05)
        await self._load()

    def _schedule_turn(self) -> None:
        """Write the next phase now if its turn has come, else when it comes."""
        if self._turn_at is not None:
            return
        wait = self._last_turn + self._turn_s - time.monotonic()
        if wait <= 0:
            self._take_turn()
        else:
            self._turn_at = asyncio.get_running_loop().call_later(wait, self._take_turn)

    def _take_turn(self) -> None:
        self._turn_at = None
        self._last_turn = time.monotonic()
        delta = self._window.take()
        if delta is not None:
            self._history.add(delta)
        newest = self._history.newest
        if newest is None:
            return
        phase = self._phases[self._turn]
        self._turn = (self._turn + 1) % len(self._phases)
        self._write(phase, newest)
        if any(p.version < newest for p in self._phases):
            self._schedule_turn()  # the other phases' turns

    def _write(self, phase: Phase, newest: int) -> None:
        """Every change since the phase's last turn, as one delta per form, to its streams."""
        since, phase.version = phase.version, max(phase.version, newest)
        delta = self._history.resume(since, newest) if phase.subscribers else None
        if delta is None or not delta.seats:
            if delta is None and phase.subscribers:  # older than the history keeps
                phase.written_at = time.monotonic()
                for subscriber in phase.subscribers:
                    subscriber.push(self.snapshot(subscriber in self._compact))
            return
        phase.written_at = time.monotonic()
        compact = plain = b""
        for subscriber in phase.subscribers:  # each form encoded once, only if someone has it
            if subscriber in self._compact:
                compact = compact or compact_delta_message(delta)
                subscriber.push(compact)
            else:
                plain = plain or delta_message(delta)
                subscriber.push(plain)

    async def _heartbeat(self) -> None:
        """Every stream hears from the feed at least every `seat_stream_heartbeat_s`, so
        proxies keep it open: a phase with no delta for that long gets a heartbeat comment,
        a phase that has deltas gets none. Why not a heartbeat to every stream: at 7,500
        streams that was a burst of 7,500 writes every 15 s, and the next deltas of every
        phase waited behind it (the spike at second 15 of bench_availability_stream's lag)."""
        every = self._settings.seat_stream_heartbeat_s
        tick = every / 4
        while not self.closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for phase in self._phases:
                if now - phase.written_at >= every - tick:
                    phase.written_at = now
                    for subscriber in phase.subscribers:
                        subscriber.push(HEARTBEAT)

    def idle_for(self) -> float:
        return 0.0 if self._subscribers else time.monotonic() - self._idle_since

    def close(self) -> None:
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.end()
        for task in self._tasks:
            task.cancel()
        if self._turn_at is not None:
            self._turn_at.cancel()


class SeatFeeds:
    """This replica's feeds, one per event with streams (or a recent /seats read)."""

    def __init__(self, reads: ReadRouter, settings: Settings) -> None:
        self._reads = reads
        self._settings = settings
        self._feeds: dict[str, SeatFeed] = {}
        self._starting: dict[str, asyncio.Task[SeatFeed]] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def get(self, event: Event) -> SeatFeed:
        feed = self._feeds.get(event.event_id)
        if feed is not None:
            return feed
        task = self._starting.get(event.event_id)
        if task is None:  # many streams of a new event at once share one start
            task = asyncio.get_running_loop().create_task(self._start(event))
            self._starting[event.event_id] = task
        return await asyncio.shield(task)

    async def _start(self, event: Event) -> SeatFeed:
        try:
            feed = SeatFeed(event, self._reads, self._settings)
            await feed.start()
            self._feeds[event.event_id] = feed
            if self._reaper is None:
                self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
            return feed
        finally:
            self._starting.pop(event.event_id, None)

    async def _reap_idle(self) -> None:
        """Stop reading events nobody has watched for `seat_feed_idle_s`."""
        while True:
            await asyncio.sleep(max(1.0, self._settings.seat_feed_idle_s / 4))
            for event_id, feed in list(self._feeds.items()):
                if feed.idle_for() > self._settings.seat_feed_idle_s:
                    feed.close()
                    del self._feeds[event_id]


class SeatStream(Response):
    """An availability stream as a plain ASGI response: it sends the head and subscribes its
    connection's `send` to the feed, which writes every message itself; this only waits for
    the stream to end (the client left, it fell behind, or the feed closed)."""

    def __init__(self, feed: SeatFeed, last_seen: int | None, compact: bool, first: bytes,
                 headers: dict[str, str]) -> None:
        self.status_code, self.media_type, self.background = 200, "text/event-stream", None
        self.init_headers(headers)  # no body: no Content-Length, so the body is chunked
        self._feed, self._last_seen, self._compact, self._first = feed, last_seen, compact, first

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        subscriber = self._feed.subscribe(send, self._last_seen, self._compact, self._first)
        watch = asyncio.get_running_loop().create_task(_until_disconnect(receive, subscriber))
        try:
            await subscriber.ended
        finally:
            watch.cancel()
            self._feed.unsubscribe(subscriber)
        with contextlib.suppress(OSError):  # ended by us: the client sees the end, reconnects
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Any, subscriber: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.end()
