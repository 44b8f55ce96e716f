"""Checkout batches (actors/seat_block.py): one produce per batch, each caller its own outcome.

The seat block's test hooks make the batches reproducible: `set_checkout_window` puts the
checkouts a test sends together into one batch, `set_delay("before_ledger")` parks a batch
before its produce while the test stops the real broker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import RayTaskError

from actors import directory
from domain.errors import CheckoutInProgress, PaymentDeclined, Unavailable
from domain.holds import Hold
from domain.ids import HoldRef, parse_hold_id
from domain.inventory import HoldRequest
from domain.settings import Settings
from infra import stack
from store import keys
from store.ledger import read_bookings
from tests.conftest import TEST_KAFKA_CONTROLLER_PORT, TEST_KAFKA_PORT
from tests.integration.test_crash import audit

pytestmark = pytest.mark.integration


async def settled_pool(app_redis: Any, settings: Settings) -> None:
    """Wait until the pool has its first hosts, so no block moves mid-test (a move drops the
    test hooks set on the old incarnation)."""
    for _ in range(240):
        if len(app_redis.smembers(keys.pool_members())) >= settings.host_pool_min:
            await asyncio.sleep(3 * settings.pool_check_interval_s)  # every host has re-read it
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the host pool never started")


async def holds_of(block: Any, event_id: str, seats: list[str]) -> list[Hold]:
    """One hold per seat, each by its own user (user<n> holds seats[n])."""
    requests = [(HoldRef(event_id, 0, f"{n + 1:016x}").hold_id,
                 HoldRequest(f"user{n}", (seat,))) for n, seat in enumerate(seats)]
    holds = await block.hold.remote(requests)
    assert all(isinstance(h, Hold) for h in holds), holds
    return list(holds)


def cause(result: Any) -> Any:
    return result.cause if isinstance(result, RayTaskError) else result


def status_in_store(app_redis: Any, hold: Hold) -> str:
    ref = parse_hold_id(hold.hold_id)
    record = app_redis.hget(keys.block_holds(ref.event_id, ref.block), ref.token)
    return record.decode().partition("|")[0] if record else ""


async def test_checkouts_sent_together_are_one_ledger_produce_and_each_gets_its_booking(
        api, new_event, app_settings, app_redis) -> None:
    await settled_pool(app_redis, app_settings)
    event_id = (await new_event(rows=1, seats_per_row=8))["event_id"]
    block = directory.seat_block(app_settings, event_id, 0)
    holds = await holds_of(block, event_id, [f"A-1-{n + 1}" for n in range(8)])
    await block.set_checkout_window.remote(64, 500)
    bookings = await asyncio.gather(*[
        block.checkout.remote(h.hold_id, h.user_id, f"key{n}", f"tok_visa_{n}")
        for n, h in enumerate(holds)])
    assert [b["hold_id"] for b in bookings] == [h.hold_id for h in holds]
    assert await block.checkout_batches.remote() == [8]
    assert sorted(audit(app_redis, app_settings, event_id)) == sorted(
        f"A-1-{n + 1}" for n in range(8))


async def test_a_declined_card_fails_only_its_own_checkout_and_its_hold_stays_payable(
        api, new_event, app_settings, app_redis) -> None:
    event_id = (await new_event(rows=1, seats_per_row=3))["event_id"]
    block = directory.seat_block(app_settings, event_id, 0)
    holds = await holds_of(block, event_id, ["A-1-1", "A-1-2", "A-1-3"])
    await block.set_checkout_window.remote(64, 500)
    cards = ["tok_visa_a", "tok_chargeDeclined", "tok_visa_c"]
    results = await asyncio.gather(*[
        block.checkout.remote(h.hold_id, h.user_id, f"key{n}", cards[n])
        for n, h in enumerate(holds)], return_exceptions=True)
    assert isinstance(cause(results[1]), PaymentDeclined)
    assert not isinstance(results[0], BaseException) and not isinstance(
        results[2], BaseException), results
    assert [results[0]["hold_id"], results[2]["hold_id"]] == [holds[0].hold_id, holds[2].hold_id]
    assert status_in_store(app_redis, holds[1]) == "active"
    again = await block.checkout.remote(holds[1].hold_id, "user1", "key1-again", "tok_visa_b")
    assert again["hold_id"] == holds[1].hold_id
    assert sorted(audit(app_redis, app_settings, event_id)) == ["A-1-1", "A-1-2", "A-1-3"]


async def test_the_same_hold_twice_in_one_batch_is_checked_out_once(
        api, new_event, app_settings, app_redis) -> None:
    event_id = (await new_event(rows=1, seats_per_row=2))["event_id"]
    block = directory.seat_block(app_settings, event_id, 0)
    [hold] = await holds_of(block, event_id, ["A-1-1"])
    await block.set_checkout_window.remote(64, 500)
    results = await asyncio.gather(*[
        block.checkout.remote(hold.hold_id, "user0", "same", "tok_visa") for _ in range(2)],
        return_exceptions=True)
    booked = [r for r in results if isinstance(r, dict)]
    assert len(booked) == 1 and isinstance(cause(next(
        r for r in results if not isinstance(r, dict))), CheckoutInProgress)
    replay = await block.checkout.remote(hold.hold_id, "user0", "same", "tok_visa")
    assert replay == booked[0]
    assert audit(app_redis, app_settings, event_id) == ["A-1-1"]


async def test_a_failed_ledger_produce_confirms_none_of_its_batch_and_the_holds_stay_payable(
        api, new_event, app_settings: Settings, app_redis, stack_state_dir: Path) -> None:
    """The broker stops while a batch of four paid checkouts waits for its produce: none is
    reported confirmed, all four holds are active again (seats still held, key and charge
    kept). Once the broker is back, three retry with their key and are confirmed without a
    second charge; the fourth is left alone and the sweep finishes it at its expiry instead of
    giving its paid seat back. Every seat is sold once."""
    hold_ttl_s = 40
    event_id = (await new_event(rows=1, seats_per_row=6, hold_ttl_s=hold_ttl_s))["event_id"]
    block = directory.seat_block(app_settings, event_id, 0)
    holds = await holds_of(block, event_id, [f"A-1-{n + 1}" for n in range(4)])
    held_at = time.time()
    await block.set_checkout_window.remote(64, 500)
    await block.set_delay.remote("before_ledger", 2.0)
    checkouts = [asyncio.ensure_future(block.checkout.remote(
        h.hold_id, h.user_id, f"key{n}", f"tok_visa_{n}")) for n, h in enumerate(holds)]
    await asyncio.sleep(1.0)  # the batch is paid and parked before its produce
    await asyncio.to_thread(stack.stop_kafka, TEST_KAFKA_PORT, stack_state_dir)
    try:
        results = await asyncio.gather(*checkouts, return_exceptions=True)
        assert all(isinstance(cause(r), Unavailable) for r in results), results
        assert [status_in_store(app_redis, h) for h in holds] == ["active"] * 4
        assert app_redis.bitcount(keys.block_held(event_id, 0)) == 4
        assert app_redis.bitcount(keys.block_sold(event_id, 0)) == 0
        assert not app_redis.hgetall(keys.bookings(event_id))
        with pytest.raises(RayTaskError) as refused:  # a paid hold is not given back
            await block.release.remote(holds[3].hold_id, "user3")
        assert isinstance(refused.value.cause, CheckoutInProgress)
    finally:
        await asyncio.to_thread(stack.start_kafka, TEST_KAFKA_PORT, TEST_KAFKA_CONTROLLER_PORT,
                                stack_state_dir)

    async def retried(n: int, hold: Hold) -> dict[str, Any]:
        for _ in range(60):  # the block may be reactivating, the producer reconnecting
            try:
                booking: dict[str, Any] = await block.checkout.remote(
                    hold.hold_id, hold.user_id, f"key{n}", "tok_chargeDeclined")  # not charged
                return booking
            except RayTaskError as error:
                if not isinstance(error.cause, Unavailable):
                    raise
            await asyncio.sleep(0.5)
        raise AssertionError("the checkout never went through")

    booked = await asyncio.gather(*[retried(n, h) for n, h in enumerate(holds[:3])])
    assert [b["hold_id"] for b in booked] == [h.hold_id for h in holds[:3]]

    deadline = held_at + hold_ttl_s + 30
    while status_in_store(app_redis, holds[3]) != "confirmed":
        assert status_in_store(app_redis, holds[3]) == "active", "a paid hold was freed"
        assert time.time() < deadline, "the paid hold was never finished"
        await asyncio.sleep(0.5)
    assert sorted(audit(app_redis, app_settings, event_id)) == [
        f"A-1-{n + 1}" for n in range(4)]
    ledger = read_bookings(app_settings.kafka_bootstrap, app_settings.ledger_topic, event_id)
    assert sorted(b["hold_id"] for b in ledger) == sorted(h.hold_id for h in holds)
