"""The bulk of the admitted users, at the actor boundary: people who hold and pay through the
seat-block entities' handles (the calls a Serve replica makes), holds gathered in batches per
block as the replica's per-block batchers gather them (one actor call and one Lua round trip per
batch), checkouts gathered per block the same way (the block's `checkouts`, as the replica
sends them).

Who is admitted is read where a replica reads it: the admission log and records in Redis.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.onsale.crowd import Behaviour
from domain.errors import (
    HoldExpired,
    HoldNotActive,
    NotFound,
    PaymentDeclined,
    SeatsUnavailable,
    TicketingError,
    Unavailable,
    UserLimitExceeded,
)
from domain.holds import Hold
from domain.ids import HoldRef, parse_hold_id
from domain.inventory import HoldRequest
from store import keys
from store.queue import decode_admission

# Holds and checkouts go to each block in batches of up to BATCH_MAX, two calls in flight per
# block. Checkouts once went one call each, 64 in flight in all: the first 1,000,000-user runs
# of 2026-12-01 queued thousands behind those 64 until their holds had expired (44,275 of
# 44,552 checkouts), and sold 1,826 of 20,000 seats in 15 minutes.
BATCH_MAX = 256
BATCH_WAIT_S = 0.01
CALL_TIMEOUT_S = 120.0
MAX_TRANSPORT_RETRIES = 120


def cause_of(exc: BaseException) -> BaseException:
    """A RayTaskError's typed cause (TicketingError), else the error itself."""
    return getattr(exc, "cause", None) or exc


@dataclass
class Admitted:
    seq: int
    ticket_id: str
    user_id: str
    admitted_at_ms: int
    expires_at_ms: int


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"hold": [], "checkout": []})
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    holds: int = 0
    seats_held: int = 0
    checkouts: int = 0
    seats_bought: int = 0
    confirmed: list[str] = field(default_factory=list)
    admitted: list[Admitted] = field(default_factory=list)
    active: int = 0
    hold_events: list[tuple[float, int]] = field(default_factory=list)  # (wall, seats)
    sale_events: list[tuple[float, int]] = field(default_factory=list)
    # successes as (attempt started, answered) wall times, for the chaos marks' RTO; a hold
    # refused for want of seats counts (the hold path answered: every seat was held or sold)
    hold_ok: list[tuple[float, float, int]] = field(default_factory=list)  # (.., .., block)
    checkout_ok: list[tuple[float, float]] = field(default_factory=list)


class RayGate:
    """Open while the driver's Ray connection is up. A fault that takes Ray away (the head, the
    whole stack) closes it before the driver disconnects: the bulk users' calls wait at it
    (each attempt still timed from when it started) instead of failing into their retry
    budget, and the calls in flight are answered Unavailable (tried again once it opens)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


class BlockBatcher:
    """Calls of one batch method of the seat blocks (`hold` or `checkouts`), gathered per block
    as a Serve replica gathers its clients' calls: a batch goes when BATCH_MAX wait or after
    BATCH_WAIT_S; at most two calls in flight per block. Each item is answered with its own
    result (a hold or booking, or its typed error as a value)."""

    def __init__(self, handle_of: Any, method: str, gate: RayGate | None = None) -> None:
        self._handle_of = handle_of
        self._method = method
        self._gate = gate or RayGate()
        self._pending: dict[int, list[tuple[tuple[Any, ...], asyncio.Future[Any]]]] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, block: int, item: tuple[Any, ...]) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(block, []).append((item, fut))
        if block not in self._flushers or self._flushers[block].done():
            self._flushers[block] = asyncio.ensure_future(self._flush(block))
        return await fut

    async def _flush(self, block: int) -> None:
        slots = self._slots.setdefault(block, asyncio.Semaphore(2))
        while self._pending.get(block):
            if len(self._pending[block]) < BATCH_MAX:
                await asyncio.sleep(BATCH_WAIT_S)
            batch = self._pending[block][:BATCH_MAX]
            del self._pending[block][:BATCH_MAX]
            await slots.acquire()
            task = asyncio.ensure_future(self._send(block, batch, slots))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, block: int, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]],
                    slots: asyncio.Semaphore) -> None:
        try:
            await self._gate.wait()
            method = getattr(self._handle_of(block), self._method)
            results = await asyncio.wait_for(method.remote([item for item, _ in batch]),
                                             CALL_TIMEOUT_S)
        except asyncio.CancelledError:  # abandon_in_flight: Ray went away under the call
            results = [Unavailable("Ray is restarting; retry")] * len(batch)
        except Exception as exc:
            results = [cause_of(exc)] * len(batch)
        finally:
            slots.release()
        if not isinstance(results, list) or len(results) != len(batch):
            results = [Unavailable(f"unexpected reply: {results!r:.80}")] * len(batch)
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    def abandon_in_flight(self) -> int:
        """Answer the calls in flight Unavailable (their Ray connection is going away, and an
        awaited reference of a shut-down Ray may never resolve); returns how many batches."""
        sending = list(self._sending)
        for task in sending:
            task.cancel()
        return len(sending)


class BulkShoppers:
    def __init__(self, settings: Any, event: Any, redis: Any, behaviour: Behaviour, seed: int,
                 handle_of: Any) -> None:
        self.settings, self.event, self.redis = settings, event, redis
        self.behaviour, self.seed = behaviour, seed
        self.handle_of = handle_of
        self.gate = RayGate()
        self.holds = BlockBatcher(handle_of, "hold", self.gate)
        self.checkouts = BlockBatcher(handle_of, "checkouts", self.gate)
        self.tally = Tally()
        self.free: dict[int, int] = {b.index: b.seats_total for b in event.venue.blocks}
        self.all_sold = False
        self.stop = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._cursor = 0  # admission log entries read

    # -- who is admitted -----------------------------------------------------------------
    async def follow_admissions(self) -> None:
        """Read the admission log from where we left; start a person for each bulk user."""
        while not self.stop:
            try:
                await self._follow_admissions()
            except Exception as exc:  # never stop following: it would strand the admitted
                self.tally.errors[f"follow_{type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)

    async def _follow_admissions(self) -> None:
        e = self.event.event_id
        while not self.stop:
            try:
                raw = await self.redis.lrange(keys.queue_log(e), self._cursor, self._cursor + 4999)
            except Exception:
                await asyncio.sleep(0.5)  # Redis restarting under chaos
                continue
            if not raw:
                await asyncio.sleep(0.1)
                continue
            entries = [json.loads(r) for r in raw]
            tickets = [x["ticket_id"] for x in entries]
            try:
                records = await self.redis.hmget(keys.queue_admitted(e), tickets)
            except Exception:
                await asyncio.sleep(0.5)
                continue
            for entry, record in zip(entries, records, strict=True):
                if record is None:
                    continue  # cannot happen (one atomic script writes both); kept honest
                admission = decode_admission(record)
                a = Admitted(entry["seq"], entry["ticket_id"], admission.user_id,
                             entry["admitted_at_ms"], admission.expires_at_ms)
                self.tally.admitted.append(a)
                if a.user_id.startswith("b"):
                    task = asyncio.ensure_future(self._person(a))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            self._cursor += len(raw)

    def pause_ray(self) -> None:
        """Before the driver disconnects from Ray: calls wait at the gate, those in flight are
        answered Unavailable."""
        self.gate.close()
        self.holds.abandon_in_flight()
        self.checkouts.abandon_in_flight()

    def resume_ray(self) -> None:
        self.gate.open()

    @property
    def busy(self) -> int:
        return len(self._tasks)

    # -- one person ----------------------------------------------------------------------
    async def _person(self, a: Admitted) -> None:
        t = self.tally
        t.active += 1
        try:
            await self._shop(a)
        except Exception as exc:  # never lose the tally of the others
            t.outcomes["crashed"] += 1
            t.errors[type(exc).__name__] += 1
        finally:
            t.active -= 1

    async def _shop(self, a: Admitted) -> None:
        t = self.tally
        p = self.behaviour.person(self.seed, int(a.user_id[1:]), a.user_id)
        await asyncio.sleep(p.think_hold_s)
        for _attempt in range(2):  # an expired hold is tried again once
            hold = await self._hold(a, p.quantity)
            if hold is None:
                t.outcomes["no_seats_after_admission"] += 1
                return
            if p.abandons:
                t.outcomes["abandoned_hold"] += 1
                return
            await asyncio.sleep(p.think_pay_s)
            card = "tok_chargeDeclined" if p.declined_first else p.card
            key = f"b-{a.user_id}-{hold.hold_id[-12:]}"
            result = await self._checkout(hold, a.user_id, key, card, p)
            if result in ("booked", "declined_gave_up"):
                t.outcomes[result] += 1
                return
        t.outcomes["hold_expired_twice"] += 1

    async def _hold(self, a: Admitted, quantity: int) -> Hold | None:
        t = self.tally
        while not self.stop and time.time() * 1000 < a.expires_at_ms:
            fits = [b for b, f in self.free.items() if f >= quantity]
            if not fits and any(self.free.values()):
                quantity = max(self.free.values())  # fewer seats than wanted: take what is left
                fits = [b for b, f in self.free.items() if f >= quantity]
            if not fits:
                if self.all_sold:
                    return None
                await asyncio.sleep(1.0)  # all held, none sold out yet: holds expire
                continue
            pick = random.sample(fits, min(2, len(fits)))
            block = max(pick, key=lambda b: self.free[b])
            hold_id = HoldRef(self.event.event_id, block, secrets.token_hex(8)).hold_id
            request = HoldRequest(a.user_id, (), quantity)
            for _ in range(MAX_TRANSPORT_RETRIES):
                t0, wall0 = time.perf_counter(), time.time()
                result = await self.holds.submit(block, (hold_id, request))
                if not isinstance(result, Unavailable | TimeoutError) and isinstance(
                        result, Hold | TicketingError):
                    break
                t.errors[f"hold_{type(result).__name__}"] += 1
                await asyncio.sleep(0.5)  # an owner restarting: the same hold id again
            else:
                return None
            t.latencies["hold"].append(time.perf_counter() - t0)
            if isinstance(result, Hold):
                t.holds += 1
                t.seats_held += len(result.seat_ids)
                t.hold_events.append((time.time(), len(result.seat_ids)))
                t.hold_ok.append((wall0, time.time(), block))
                self.free[block] = max(0, self.free[block] - len(result.seat_ids))
                return result
            if isinstance(result, SeatsUnavailable):
                self.free[block] = 0  # until the next availability read
                t.errors["hold_seats_unavailable"] += 1
                t.hold_ok.append((wall0, time.time(), block))  # answered: no seat is free
                continue
            if isinstance(result, UserLimitExceeded):
                t.errors["hold_user_limit"] += 1
                return None
            t.errors[f"hold_{type(result).__name__}"] += 1
            await asyncio.sleep(0.5)
        return None

    async def _checkout(self, hold: Hold, user: str, key: str, card: str, p: Any) -> str:
        t = self.tally
        block = parse_hold_id(hold.hold_id).block
        for _ in range(MAX_TRANSPORT_RETRIES):
            t0, wall0 = time.perf_counter(), time.time()
            result = await self.checkouts.submit(block, (hold.hold_id, user, key, card))
            if isinstance(result, PaymentDeclined):
                t.latencies["checkout"].append(time.perf_counter() - t0)
                t.errors["checkout_declined"] += 1
                if not p.retries_after_decline or card == p.card:
                    return "declined_gave_up"
                card = p.card
                await asyncio.sleep(p.think_pay_s / 2)
                continue
            if isinstance(result, HoldExpired | HoldNotActive | NotFound):
                t.latencies["checkout"].append(time.perf_counter() - t0)
                t.errors["checkout_hold_expired"] += 1
                return "expired"
            if not isinstance(result, dict):
                t.errors[f"checkout_{type(result).__name__}"] += 1
                await asyncio.sleep(0.5)  # owner restarting: same key, same booking
                continue
            t.latencies["checkout"].append(time.perf_counter() - t0)
            t.checkouts += 1
            t.seats_bought += len(result["seat_ids"])
            t.sale_events.append((time.time(), len(result["seat_ids"])))
            t.checkout_ok.append((wall0, time.time()))
            t.confirmed.append(result["booking_id"])
            return "booked"
        return "declined_gave_up"

    async def drain(self, timeout_s: float) -> None:
        self.stop = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

