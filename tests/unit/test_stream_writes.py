"""Writing availability streams: eager writes (store/eager.py) and one stream's outbox
(store.seat_feed.Subscriber), with an in-memory ASGI `send` standing in for the connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.availability import HEARTBEAT, SeatBoard
from domain.event import parse_event
from domain.settings import Settings
from store import eager
from store.seat_feed import SeatFeed, SeatStream, Subscriber


class Connection:
    """An ASGI `send` whose writes finish at once, or wait while `paused` is set."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.fail: Exception | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if not self.writable.is_set():
            await self.writable.wait()
        if self.fail is not None:
            raise self.fail
        self.bodies.append(message["body"])


async def test_a_coroutine_that_never_waits_runs_to_its_end_in_the_callers_turn() -> None:
    done: list[int] = []

    async def work() -> None:
        done.append(1)

    assert eager.start(work()) is None
    assert done == [1]


async def test_a_coroutine_that_waits_goes_on_in_a_task_and_sees_what_it_waited_for() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[int] = []

    async def work() -> None:
        seen.append(await future)
        await asyncio.sleep(0)
        seen.append(2)

    task = eager.start(work())
    assert task is not None and seen == []
    await asyncio.sleep(0)  # the task now waits on the future too
    future.set_result(1)
    await task
    assert seen == [1, 2]


async def test_an_error_raised_before_waiting_is_raised_to_the_caller() -> None:
    async def work() -> None:
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        eager.start(work())


async def test_an_error_of_what_it_waited_for_is_raised_inside_the_coroutine() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    caught: list[BaseException] = []

    async def work() -> None:
        try:
            await future
        except OSError as error:
            caught.append(error)

    task = eager.start(work())
    assert task is not None
    await asyncio.sleep(0)
    future.set_exception(OSError("gone"))
    await task
    assert [str(e) for e in caught] == ["gone"]


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    closed: list[bool] = []

    async def work() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            closed.append(True)

    task = eager.start(work())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [True]


async def test_a_stream_writes_each_message_at_once_while_its_client_keeps_up() -> None:
    connection = Connection()
    subscriber = Subscriber(connection.send, limit=4)
    subscriber.push(b"a")
    subscriber.push(b"b")
    assert connection.bodies == [b"a", b"b"]


async def test_messages_for_a_slow_client_queue_and_go_out_together_when_it_reads() -> None:
    connection = Connection()
    subscriber = Subscriber(connection.send, limit=4)
    connection.writable.clear()
    subscriber.push(b"a")
    subscriber.push(b"b")
    subscriber.push(b"c")
    assert connection.bodies == []
    connection.writable.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert connection.bodies == [b"a", b"bc"]
    assert not subscriber.ended.done()


async def test_a_client_too_far_behind_has_its_stream_ended() -> None:
    connection = Connection()
    subscriber = Subscriber(connection.send, limit=2)
    connection.writable.clear()
    for message in (b"a", b"b", b"c", b"d"):
        subscriber.push(message)
    assert subscriber.ended.done()


async def test_a_failed_write_ends_the_stream_and_later_messages_are_dropped() -> None:
    connection = Connection()
    subscriber = Subscriber(connection.send, limit=4)
    connection.fail = ConnectionResetError()
    subscriber.push(b"a")
    assert subscriber.ended.done()
    connection.fail = None
    subscriber.push(b"b")
    assert connection.bodies == []


class OneFeed:
    """What SeatStream needs of a SeatFeed: subscribe and unsubscribe."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, send: Any, last_seen: int | None, compact: bool,
                  first: bytes) -> Subscriber:
        subscriber = Subscriber(send, limit=4)
        subscriber.push(first + b"snapshot")
        self.subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.remove(subscriber)


async def test_a_seat_stream_is_chunked_written_by_the_feed_and_left_when_the_client_goes() -> None:
    feed, sent = OneFeed(), []
    gone = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    stream = SeatStream(feed, None, True, b"retry: 1000\n\n", {"Cache-Control": "no-cache"})  # type: ignore[arg-type]
    serving = asyncio.ensure_future(stream({"type": "http"}, receive, send))
    await asyncio.sleep(0)
    feed.subscribers[0].push(b"delta")
    head = dict(sent[0]["headers"])
    assert b"content-length" not in head
    assert head[b"content-type"].startswith(b"text/event-stream")
    assert [m["body"] for m in sent[1:]] == [b"retry: 1000\n\nsnapshot", b"delta"]
    gone.set()
    await serving
    assert feed.subscribers == []


def feed_with_streams(streams: int, phases: int, heartbeat_s: float = 15.0,
                      ) -> tuple[SeatFeed, list[Connection]]:
    """A feed of a 10-seat event (no Redis: changes are applied as the stream would bring
    them) with `streams` JSON streams written to in-memory connections."""
    event = parse_event({"name": "Show", "sections": [
        {"name": "A", "rows": 1, "seats_per_row": 10, "price_cents": 100}]}, "ev0123456789ab",
        0.0, default_ttl_s=600, default_max_seats=6, block_max_seats=100, max_quantity=50)
    settings = Settings.development(seat_delta_interval_s=0.2, seat_delta_phases=phases,
                                    seat_stream_heartbeat_s=heartbeat_s)
    feed = SeatFeed(event, None, settings)  # type: ignore[arg-type]
    feed.board = SeatBoard({f"A-1-{n}": "available" for n in range(1, 11)}, 0)
    connections = [Connection() for _ in range(streams)]
    for connection in connections:
        feed.subscribe(connection.send, None)
    return feed, connections


async def change(feed: SeatFeed, version: int, seat_index: int) -> None:
    await feed._apply([(f"{version}-0".encode(), {
        b"v": str(version).encode(), b"b": b"0", b"s": b"held", b"i": str(seat_index).encode()})])


def versions(connection: Connection) -> list[int]:
    return [int(body.split(b"\n", 1)[0].removeprefix(b"id: ")) for body in connection.bodies[1:]]


async def test_streams_in_each_phase_are_written_in_turn_and_each_gets_every_change() -> None:
    feed, connections = feed_with_streams(streams=4, phases=2)
    await change(feed, 1, 0)  # the first phase's turn comes at once: streams 1 and 3
    assert [versions(c) for c in connections] == [[1], [], [1], []]
    await change(feed, 2, 1)
    await asyncio.sleep(0.25)  # the other phase's turn, then the first's again
    for connection in connections:
        assert versions(connection)[-1] == 2
        assert b'"A-1-1":"held"' in b"".join(connection.bodies[1:])
        assert b'"A-1-2":"held"' in b"".join(connection.bodies[1:])
    feed.close()


async def test_each_stream_gets_at_most_one_delta_per_interval() -> None:
    feed, connections = feed_with_streams(streams=3, phases=3)
    for version in range(1, 9):
        await change(feed, version, version)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    for connection in connections:
        assert 1 <= len(versions(connection)) <= 3  # 0.16 s of changes + 0.3 s: 3 turns at most
        assert versions(connection)[-1] == 8
    feed.close()


def heartbeats(connection: Connection) -> int:
    return sum(body == HEARTBEAT for body in connection.bodies)


async def test_an_idle_stream_hears_a_heartbeat_at_least_every_heartbeat_interval() -> None:
    feed, connections = feed_with_streams(streams=2, phases=2, heartbeat_s=0.2)
    beating = asyncio.ensure_future(feed._heartbeat())
    await asyncio.sleep(0.5)
    for connection in connections:
        assert heartbeats(connection) >= 2  # 0.5 s at one per 0.2 s at least
    beating.cancel()
    feed.close()


async def test_streams_that_have_deltas_get_no_heartbeat() -> None:
    feed, connections = feed_with_streams(streams=4, phases=2, heartbeat_s=0.4)
    beating = asyncio.ensure_future(feed._heartbeat())
    for version in range(1, 21):  # a change every 0.05 s: each phase has a delta every 0.2 s
        await change(feed, version, version % 10)
        await asyncio.sleep(0.05)
    for connection in connections:
        assert heartbeats(connection) == 0
        assert len(versions(connection)) >= 4
    await asyncio.sleep(0.5)  # no changes now: the streams are idle, and hear heartbeats
    for connection in connections:
        assert heartbeats(connection) >= 1
    beating.cancel()
    feed.close()
