"""A seat block's checkout meeting a Redis failover (actors/seat_block.py), made reproducible.

A block runs in the test's process on the session's Redis and Kafka; the failover is a window
in which its card claims and its fenced writes raise ConnectionError, as they do while
Sentinel promotes a replica. What must hold: a checkout the failover interrupts before any
charge ends with its hold active again (seats, expiry and key kept), so the buyer's retry
with the same key buys the seat; never a hold left confirming with no checkout under way,
its seats out of sale for good (the CI run of test_redis_failover that sold 57 of 60 seats).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from actors import seat_block
from actors.host import Shared
from actors.seat_block import SeatBlock
from domain.errors import CheckoutInProgress, SeatsUnavailable, Unavailable
from domain.event import Event
from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef, parse_hold_id
from domain.inventory import HoldRequest
from domain.settings import Settings
from domain.venue import Section
from store import catalog, keys
from store.codec import text
from store.ledger import read_bookings
from store.scripts import Transition

pytestmark = pytest.mark.integration

SEATS = 4


class Failover:
    """For a while the block's card claims and fenced writes raise ConnectionError: from the
    next card claim on (`at_next_claim`: a batch begun, not yet paid, meets the failover), or
    from the reply of the next begin on (`lose_reply_of_next_begin`: it applied, its caller
    hears an error)."""

    def __init__(self, block: SeatBlock) -> None:
        self.until = 0.0
        self.at_next_claim: float | None = None  # seconds the failover lasts from the claim
        self.lose_reply_of_next_begin = False
        real_transitions, real_claim = block._scripts.transitions, block._cards.claim

        async def transitions(batch: list[Transition]) -> Any:
            self._raise_if_down()
            if self.lose_reply_of_next_begin and batch[0].expected == HoldStatus.ACTIVE:
                self.lose_reply_of_next_begin = False  # applied, but the reply is lost
                await real_transitions(batch)
                self.start(1.0)
                self._raise_if_down()
            return await real_transitions(batch)

        async def claim(*args: Any) -> None:
            if self.at_next_claim is not None:
                self.start(self.at_next_claim)
                self.at_next_claim = None
            self._raise_if_down()
            await real_claim(*args)

        block._scripts.transitions = transitions  # type: ignore[method-assign,assignment]
        block._cards.claim = claim  # type: ignore[method-assign,assignment]

    def start(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def _raise_if_down(self) -> None:
        if time.monotonic() < self.until:
            raise RedisConnectionError("Error 111 connecting to the primary. Connection refused.")


@pytest.fixture
async def block(settings: Settings) -> AsyncIterator[SeatBlock]:
    s = replace(settings, redis_url=settings.redis_url.rsplit("/", 1)[0] + "/7")
    event = Event(f"ev{uuid.uuid4().hex[:12]}", "checkout failover", time.time(), 600, 6,
                  (Section("A", 1, SEATS, 1000),), SEATS)
    redis = Redis.from_url(s.redis_url)
    await catalog.save_event(redis, event, time.time())
    await redis.aclose()
    shared = Shared(s)
    block = SeatBlock(s, event.event_id, 0, shared)
    await block.activate()
    yield block
    await block.deactivate()
    await (await shared.ledger()).close()
    await shared.redis.aclose()


async def hold(block: SeatBlock, n: int) -> Hold:
    hold_id = HoldRef(block._event_id, 0, f"{n + 1:016x}").hold_id
    [held] = await block.hold([(hold_id, HoldRequest(f"buyer{n}", (f"A-1-{n + 1}",)))])
    assert isinstance(held, Hold), held
    return held


async def checkout(block: SeatBlock, held: Hold, key: str) -> Any:
    """As the Serve replica calls it: the answer is a booking or the checkout's error."""
    [answer] = await block.checkouts([(held.hold_id, held.user_id, key, "tok_visa_1")])
    return answer


def stored_status(block: SeatBlock, held: Hold) -> str:
    ref = parse_hold_id(held.hold_id)
    client = redis_sync.Redis.from_url(block._settings.redis_url)
    record = client.hget(keys.block_holds(ref.event_id, ref.block), ref.token)
    client.close()
    return text(record).partition("|")[0] if record else ""


async def eventually(check: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s"
        await asyncio.sleep(0.1)


def sold_once(block: SeatBlock, held: Hold) -> None:
    bookings = read_bookings(block._settings.kafka_bootstrap, block._settings.ledger_topic,
                             block._event_id)
    assert [b["hold_id"] for b in bookings] == [held.hold_id]
    assert stored_status(block, held) == HoldStatus.CONFIRMED


async def test_a_checkout_whose_payment_meets_the_failover_is_set_back_and_its_retry_buys(
        block: SeatBlock) -> None:
    failover = Failover(block)
    held = await hold(block, 0)
    failover.at_next_claim = 1.0  # the claim fails, then the set-back, until the promotion
    answer = await checkout(block, held, "key-1")
    assert isinstance(answer, Unavailable), answer
    # answered only once the hold is active again, in memory and in Redis, its key kept
    assert block._inventory.holds[held.hold_id].status is HoldStatus.ACTIVE
    assert block._inventory.holds[held.hold_id].idempotency_key == "key-1"
    assert stored_status(block, held) == HoldStatus.ACTIVE
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict) and booking["seat_ids"] == ["A-1-1"], booking
    sold_once(block, held)


async def test_a_set_back_that_outlasts_its_retries_is_settled_by_the_sweep(
        block: SeatBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seat_block, "CONFIRM_RETRY_S", 0.3)
    failover = Failover(block)
    held = await hold(block, 0)
    failover.at_next_claim = 1.5
    answer = await checkout(block, held, "key-1")
    assert isinstance(answer, Unavailable), answer
    assert stored_status(block, held) == HoldStatus.CONFIRMING  # stranded: Redis is down
    # no retry comes: once Redis answers, the sweep gives the hold back to its buyer
    await eventually(lambda: stored_status(block, held) == HoldStatus.ACTIVE, within_s=10)
    assert block._inventory.holds[held.hold_id].status is HoldStatus.ACTIVE
    assert block._inventory.holds[held.hold_id].idempotency_key == "key-1"
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict), booking
    sold_once(block, held)


async def test_a_retry_with_the_key_carries_a_stranded_checkout_on(
        block: SeatBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seat_block, "CONFIRM_RETRY_S", 0.3)
    assert block._sweeper is not None
    block._sweeper.cancel()  # only the retry can settle it here
    failover = Failover(block)
    held = await hold(block, 0)
    failover.at_next_claim = 1.0
    assert isinstance(await checkout(block, held, "key-1"), Unavailable)
    assert isinstance(await checkout(block, held, "key-2"), CheckoutInProgress)  # not its key
    await asyncio.sleep(1.0)
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict), booking
    sold_once(block, held)


async def test_a_begin_whose_reply_was_lost_is_carried_on_by_the_retry_with_its_key(
        block: SeatBlock) -> None:
    failover = Failover(block)
    held = await hold(block, 0)
    failover.lose_reply_of_next_begin = True
    answer = await checkout(block, held, "key-1")
    assert isinstance(answer, Unavailable), answer
    assert stored_status(block, held) == HoldStatus.CONFIRMING  # memory still says active
    await asyncio.sleep(1.0)
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict), booking
    sold_once(block, held)


async def test_a_begin_whose_reply_was_lost_is_settled_after_the_resync_if_no_retry_comes(
        block: SeatBlock) -> None:
    failover = Failover(block)
    held = await hold(block, 0)
    failover.lose_reply_of_next_begin = True
    assert isinstance(await checkout(block, held, "key-1"), Unavailable)
    await asyncio.sleep(1.0)  # the failover is over; the next hold resyncs the block with Redis
    await hold(block, 1)
    await eventually(lambda: stored_status(block, held) == HoldStatus.ACTIVE, within_s=10)
    assert block._inventory.holds[held.hold_id].status is HoldStatus.ACTIVE
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict), booking
    sold_once(block, held)
    # the seats are counted as they are: one sold, one held, the rest for sale
    client = redis_sync.Redis.from_url(block._settings.redis_url)
    assert int(client.hget(keys.available(block._event_id), "0") or -1) == SEATS - 2
    client.close()


async def test_a_hold_whose_release_was_lost_with_the_primary_is_taken_back_and_expires(
        block: SeatBlock) -> None:
    """Memory released the hold, the promoted replica still has it active: best-available
    holds are refused the seat it keeps until the block takes Redis's holds in again; then
    the hold expires as any other and its seat sells."""
    block._event = replace(block._event, hold_ttl_s=2)

    async def best_seat(n: int) -> Any:
        hold_id = HoldRef(block._event_id, 0, f"{n + 1:016x}").hold_id
        [answer] = await block.hold([(hold_id, HoldRequest(f"buyer{n}", quantity=1))])
        return answer

    held = await best_seat(0)
    assert isinstance(held, Hold), held
    block._inventory.forget(held.hold_id)  # its release reached the old primary only
    assert isinstance(await best_seat(1), SeatsUnavailable)  # memory offered the same seat
    second = await best_seat(2)  # the refusal resynced the block: it knows that seat is held
    assert isinstance(second, Hold) and second.seat_ids != held.seat_ids, second
    assert block._inventory.holds[held.hold_id].status is HoldStatus.ACTIVE
    await eventually(lambda: stored_status(block, held) == HoldStatus.EXPIRED, within_s=10)
    third = await best_seat(3)
    assert isinstance(third, Hold) and third.seat_ids == held.seat_ids, third


async def test_a_checkout_retried_after_redis_lost_everything_is_answered_its_booking(
        block: SeatBlock) -> None:
    """The checkout was confirmed, then Redis came back empty before the buyer heard: the
    block's next incarnation replays the ledger, Idempotency-Key included, so the buyer's retry
    with the same key is answered the same booking (it was "already confirmed")."""
    held = await hold(block, 0)
    booking = await checkout(block, held, "key-1")
    assert isinstance(booking, dict) and booking["hold_id"] == held.hold_id
    redis = Redis.from_url(block._settings.redis_url)
    event = await catalog.load_event(redis, block._event_id)
    assert event is not None
    await redis.flushdb()  # an empty Redis; the event is put back from the events log
    await catalog.save_event(redis, event, time.time(), availability=False)
    await redis.aclose()
    again = SeatBlock(block._settings, block._event_id, 0, block._shared)
    await again.activate()  # replays the ledger
    try:
        assert await checkout(again, held, "key-1") == booking
        assert stored_status(again, held) == HoldStatus.CONFIRMED
    finally:
        await again.deactivate()
