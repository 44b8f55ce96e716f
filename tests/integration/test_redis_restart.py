"""Redis is killed (`kill -9`) mid on-sale and started again, with no failover (issue 12): on
its AOF, or empty (its data gone). The waiting room resumes, everyone waiting is admitted or
told `sold_out` within 10 s of Redis answering again, every sold seat is in the ledger (read
by an independent Kafka client), no seat is sold twice and nobody is lost, stuck or admitted
twice. An empty Redis is rebuilt from the durable logs: the events log (definitions, seeds),
the ledger (sold seats), the admissions log and the joins log (who waits, in order).

The cause this pins: the room took joins off its merger before persisting them, so a Redis
write that failed under it dropped them, and their offsets were committed afterwards; those
users stayed `waiting` for ever (nobody told them `sold_out` either). And, empty: the room
read the seat counts Redis had lost as 0 seats and told everyone waiting `sold_out`; a missing
count is unknown until its block has recounted.

The empty variant wipes the session's own Redis (every database): the rest of the session runs
on what the app rebuilds (its events from the events log, the pool's members from host 0),
as a production stack would; later tests create their own events, as they always do.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.event import Event
from domain.settings import Settings
from infra import stack
from store import keys
from store.ledger import read_bookings
from tests.conftest import TEST_REDIS_PORT
from tests.integration.conftest import user_header

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SEATS_ROWS, SEATS_PER_ROW = 4, 50  # 200 seats
BUYERS = 300
KILL_AFTER_BOOKINGS = 55
DOWN_S = 3.0
RECOVERY_BUDGET_S = 10.0
# slow enough that most buyers still wait when Redis dies (the case), fast enough that
# the seats left then are all admitted within the budget
ADMISSION_RATE_PER_S = 30
FINAL = ("booked", "refused", "sold_out")


def kill_redis(state_dir: Path, wipe: bool) -> None:
    """`kill -9` the session's Redis (the one the app uses), by its pid file."""
    pid = int((state_dir / f"redis-{TEST_REDIS_PORT}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not stack._alive(pid):  # (reaped: the session's Redis is this process's child)
            if wipe:  # its AOF and RDB gone: it starts empty
                shutil.rmtree(state_dir / f"redis-{TEST_REDIS_PORT}")
                (state_dir / f"redis-{TEST_REDIS_PORT}").mkdir()
            return
        time.sleep(0.05)
    raise AssertionError("redis did not die")


RETRIED = (500, 502, 503, 504, 429)


async def call(http: httpx.AsyncClient, method: str, url: str, retried: tuple[int, ...] = RETRIED,
               **kwargs: Any) -> httpx.Response:
    """A browser: retries what the platform could not answer (503, or no answer) while Redis
    is away or an empty one is being restored. An event that exists is never a 404 meanwhile
    (the cause this pins too: a join answered "no such event" before its event was back)."""
    for _ in range(400):
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code not in retried:
            return response
        await asyncio.sleep(0.25)
    raise AssertionError(f"{method} {url} never answered")


class Buyer:
    def __init__(self, n: int) -> None:
        self.user = f"rr{n:03d}"
        self.outcome = "joining"
        self.final_at = 0.0
        self.held_at = 0.0  # when the hold this buyer bought was made
        self.booking: dict[str, Any] | None = None
        self.ticket: dict[str, Any] = {}

    async def run(self, http: httpx.AsyncClient, event_id: str) -> None:
        joined = await call(http, "POST", f"/v1/events/{event_id}/queue", json={},
                            headers=user_header(self.user))
        assert joined.status_code == 202, joined.text
        self.ticket = joined.json()
        self.outcome = "waiting"
        status_url = f"/v1/events/{event_id}/queue/{self.ticket['ticket_id']}"
        auth = {"Authorization": f"Bearer {self.ticket['ticket_token']}"}
        while True:
            status = await call(http, "GET", status_url, headers=auth)
            assert status.status_code == 200, status.text
            body = status.json()
            if body["state"] == "sold_out":
                return self._final("sold_out")
            if body["state"] == "admitted":
                self._final("admitted")
                return await self._buy(http, event_id, body["admission_token"])
            await asyncio.sleep(0.4)

    async def _buy(self, http: httpx.AsyncClient, event_id: str, token: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(20):  # a hold a Redis restart lost is made again
            held = await call(http, "POST", f"/v1/events/{event_id}/holds",
                              json={"section": "A", "quantity": 1}, headers=auth)
            assert held.status_code != 404, held.text
            if held.status_code != 201:
                await asyncio.sleep(0.3)
                continue
            self.held_at = time.monotonic()
            paid = await call(http, "POST", f"/v1/holds/{held.json()['hold_id']}/checkout",
                              json={"payment_token": f"tok_visa_{self.user}"},
                              headers=auth | {"Idempotency-Key": "k"})
            if paid.status_code == 201:
                self.booking = paid.json()
                self.outcome = "booked"
                return
        self.outcome = "refused"

    def _final(self, outcome: str) -> None:
        self.outcome = outcome
        self.final_at = time.monotonic()


@pytest.mark.parametrize("wipe", [False, True], ids=["on-its-aof", "empty"])
async def test_redis_killed_and_restarted_mid_onsale_the_room_resumes_and_nothing_is_lost(
        wipe: bool, api, new_event, admin, app_settings: Settings, app_redis,
        stack_state_dir) -> None:
    event = await new_event(rows=SEATS_ROWS, seats_per_row=SEATS_PER_ROW,
                            admission_rate_per_s=ADMISSION_RATE_PER_S)
    event_id = event["event_id"]
    blocks = len(Event.from_json(app_redis.get(keys.event(event_id))).venue.blocks)
    buyers = [Buyer(n) for n in range(BUYERS)]
    # a connection per buyer, as browsers have (a shared pool of 100 would queue them)
    http = httpx.AsyncClient(base_url=api, timeout=30,
                             limits=httpx.Limits(max_connections=BUYERS + 10))
    tasks = [asyncio.ensure_future(b.run(http, event_id)) for b in buyers]
    while sum(b.outcome == "booked" for b in buyers) < KILL_AFTER_BOOKINGS:
        assert not any(t.done() and t.exception() for t in tasks)
        await asyncio.sleep(0.05)
    await asyncio.to_thread(kill_redis, stack_state_dir, wipe)
    killed_at = time.monotonic()
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(stack.start_redis, TEST_REDIS_PORT, stack_state_dir)
    answered_at = time.monotonic()
    waiting_then = [b for b in buyers if b.outcome in ("joining", "waiting")]
    timeline: list[str] = []

    async def watch() -> None:  # what the room and the buyers do after Redis is back
        while True:
            room = {k.decode(): v.decode()
                    for k, v in app_redis.hgetall(keys.room(event_id)).items()}
            counts_known = app_redis.hlen(keys.available(event_id)) == blocks
            # an empty Redis has no counts (not 0 seats) until every block has recounted
            free = sum(int(v) for v in app_redis.hvals(keys.available(event_id)))
            counts = {o: sum(b.outcome == o for b in buyers) for o in (*FINAL, "admitted")}
            timeline.append(f"{time.monotonic() - answered_at:5.1f}s "
                            f"free={free if counts_known else '?'} "
                            f"places={app_redis.hlen(keys.queue_places(event_id))} "
                            f"admitted={room.get('admitted_total')} "
                            f"sold_out={room.get('sold_out')} {counts}")
            await asyncio.sleep(1)

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    watcher.cancel()
    healthy = await call(http, "GET", "/healthz")  # every event back (and so for later tests)
    assert healthy.status_code == 200, healthy.text
    await http.aclose()

    # The room's part: everyone waiting is admitted or told sold_out within the budget of Redis
    # answering, or of the last seat going (until then a seat may still come back: admitted
    # buyers who had not held yet count against the seats, and the room rightly keeps the rest
    # waiting while those buyers take their time after the outage).
    # The last seat went with the last hold a buyer bought, if every seat was bought: taken
    # from the buyers, to the moment (a 1 s sample of Redis's counts misses it, and then
    # judged from Redis answering, the budget counted the buyers' own 13 s of holds and
    # checkouts against the room: the CI failure of 03f05ac).
    late = [b.final_at - answered_at for b in waiting_then]
    worst_raw = max(late, default=0.0)
    bought = [b for b in buyers if b.booking]
    gone = max(b.held_at for b in bought) if len(bought) == SEATS_ROWS * SEATS_PER_ROW else math.inf
    since = answered_at if gone == math.inf else max(answered_at, gone)
    worst = max((b.final_at - since for b in waiting_then), default=0.0)
    outcomes = {o: sum(b.outcome == o for b in buyers) for o in FINAL}
    print(f"\n{'empty' if wipe else 'AOF'}: redis down {answered_at - killed_at:.1f} s; "
          f"{len(waiting_then)} waiting when it answered; the last of them admitted or told "
          f"sold_out {worst_raw:.2f} s later ({worst:.2f} s after Redis answered or the last "
          f"seat went, whichever was later); {outcomes}")
    lateness = sorted(late)
    if lateness:
        p50, p90 = lateness[len(lateness) // 2], lateness[int(len(lateness) * 0.9)]
        print(f"lateness of those waiting: p50 {p50:.2f} s, p90 {p90:.2f} s, "
              f"max {lateness[-1]:.2f} s")
    print("\n".join(timeline))
    assert worst <= RECOVERY_BUDGET_S, f"someone waited {worst:.1f} s after Redis was back"
    assert worst_raw <= 60, "the on-sale did not finish after Redis came back"
    assert sum(outcomes.values()) == BUYERS

    # every sold seat is in the ledger, once; every booking a buyer got is there
    ledger = read_bookings(app_settings.kafka_bootstrap, app_settings.ledger_topic, event_id)
    seats = [seat for booking in ledger for seat in booking["seat_ids"]]
    assert len(seats) == len(set(seats)), "a seat was sold twice"
    in_ledger = {booking["booking_id"] for booking in ledger}
    assert all(b.booking["booking_id"] in in_ledger for b in buyers if b.booking)
    venue = Event.from_json(app_redis.get(keys.event(event_id))).venue
    sold_bits = sum(app_redis.bitcount(keys.block_sold(event_id, block.index))
                    for block in venue.blocks)
    assert sold_bits == len(seats), "Redis's sold seats and the ledger disagree"
    # ... and every booking in the ledger was answered to its buyer: a checkout whose answer
    # the outage took is answered its booking when retried with its Idempotency-Key (the ledger
    # keeps the key: a lost Redis used to leave the retry "already confirmed")
    answered = {b.booking["booking_id"] for b in buyers if b.booking}
    assert in_ledger == answered, f"paid, in the ledger, never answered: {in_ledger - answered}"
    if outcomes["sold_out"]:  # told sold out only when no seat was left
        assert len(seats) == SEATS_ROWS * SEATS_PER_ROW

    # nobody lost or admitted twice
    log = [json.loads(raw)["ticket_id"]
           for raw in app_redis.lrange(keys.queue_log(event_id), 0, -1)]
    assert len(log) == len(set(log)), "someone was admitted twice"
    admitted = {b.ticket["ticket_id"] for b in buyers if b.outcome != "sold_out"}
    assert admitted == set(log)
