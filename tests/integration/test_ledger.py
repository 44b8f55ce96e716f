"""The booking ledger (store/ledger.py) against the real broker, through a broker restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domain.errors import Unavailable
from infra import stack
from store.kafka_io import ensure_topic
from store.ledger import Ledger, read_bookings
from tests.conftest import TEST_KAFKA_PORT

pytestmark = pytest.mark.integration


def _booking(event_id: str, n: int) -> dict[str, Any]:
    return {"booking_id": f"bk{n}", "event_id": event_id, "block": 0, "hold_id": f"hd{n}",
            "seat_ids": [f"A-1-{n}"]}


async def test_a_write_that_failed_starts_a_new_producer_and_the_next_write_lands(
        kafka_bootstrap: str, kafka_restart: Callable[[], str], stack_state_dir: Path) -> None:
    """An idempotent producer whose broker restarted can time out every write after (the
    on-sale with restart-kafka confirmed nothing more); a failed write marks it, and the next
    write starts a new producer instead of waiting on the old one again."""
    topic, event_id = f"ledger-restart-{uuid.uuid4().hex[:8]}", f"ev{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(ensure_topic, kafka_bootstrap, topic, 3)
    ledger = await Ledger.start(kafka_bootstrap, topic, timeout_s=3.0)
    try:
        await ledger.append_batch([_booking(event_id, 1)])
        await asyncio.to_thread(stack.stop_kafka, TEST_KAFKA_PORT, stack_state_dir)
        try:
            with pytest.raises(Unavailable):
                await ledger.append_batch([_booking(event_id, 2)])
        finally:
            await asyncio.to_thread(kafka_restart)
        for _ in range(30):  # the broker takes a moment to lead its partitions again
            try:
                await ledger.append_batch([_booking(event_id, 3)])
                break
            except Unavailable:
                await asyncio.sleep(1.0)
        else:
            raise AssertionError("no write landed after the broker came back")
        assert ledger.restarts >= 1
    finally:
        await ledger.close()
    landed = {b["booking_id"] for b in await asyncio.to_thread(
        read_bookings, kafka_bootstrap, topic, event_id)}
    assert {"bk1", "bk3"} <= landed
