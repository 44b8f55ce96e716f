"""The seat-block entity: the one owner of a block's seats, hosted by a pool host.

It plans on its in-memory `BlockInventory`, applies each batch with one fenced Lua call, and
confirms a checkout only after the booking is in the Kafka ledger; checkouts are batched too
(one produce and two fenced calls per batch, `actors.batching`). On activation it takes a new
fencing epoch (so an old incarnation can no longer write), reloads its holds from Redis,
replays the ledger, and settles checkouts a crash interrupted. Its next hold expiry is its
reminder in the due index (written before a hold is made), so a passivated block, or one
whose host died, is activated again in time to expire its holds.

Redis failover (Sentinel promotes a replica; replication is asynchronous, so the newest writes
of a dying primary can be lost). A seat the ledger sold is never sold again, because:

- the fencing epoch an activation takes is on a replica (`redis_clients.replicated`) before
  the owner writes anything, so a failover cannot hand an older incarnation its epoch back;
- a checkout's begin (active -> confirming) is on a replica before its payment and ledger
  write, so the hold a booking is written for cannot come back active for another checkout;
- the owner plans on memory, which has every hold and sale it made; Redis only rechecks. A
  sale whose final Redis write was lost is still sold in memory, and any new incarnation
  replays the ledger before it serves (`_replay_ledger`): the ledger decides.
A hold, by contrast, may be lost with the primary (its checkout is refused, the buyer holds
again); after a failover-like error the block resyncs its active holds with Redis (`_resync`)
so such seats are for sale again at once.
Sentinel promotes the most up-to-date replica, so a write one replica acknowledged survives
the loss of the primary (not of the primary and that replica at once). See docs/design.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from redis.exceptions import RedisError

from actors import logs
from actors.batching import Batcher
from domain import holds as rules
from domain import placement
from domain.errors import (
    CheckoutInProgress,
    EventClosed,
    HoldNotActive,
    NotFound,
    SeatsUnavailable,
    StaleOwner,
    TicketingError,
    Unavailable,
    UserLimitExceeded,
)
from domain.event import Event
from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef, parse_hold_id
from domain.inventory import BlockInventory, HoldRequest
from domain.settings import Settings
from store import catalog, keys, redis_clients
from store.codec import text
from store.ledger import read_bookings
from store.metrics import CHECKOUT_ERRORS, HOLDS, REVENUE, SALES, SEATS_SOLD
from store.payments import CardCaps, TestPaymentProvider
from store.records import booking_and_key, booking_of, decode_hold, encode_hold, ledger_record
from store.scripts import BlockScripts, HoldOutcome, PlannedHold, Transition, take_epoch

log = logging.getLogger("ticketing.seat_block")

# Bookings already in the ledger whose sold write hits a Redis failover keep being confirmed
# this long (a Sentinel failover takes ~2-5 s, infra/sentinel.py), so their buyers hear the
# booking rather than a 503 for a sale that stands.
CONFIRM_RETRY_S = 10.0
CONFIRM_RETRY_INTERVAL_S = 0.25
# A hold refused as taken for seats memory planned free resyncs the block, at most this often
# (a divergence the resync cannot mend must not make every hold read the whole block).
RESYNC_ON_REFUSAL_S = 5.0

HoldResult = Hold | TicketingError
Booking = dict[str, Any]
CheckoutResult = Booking | Exception


@dataclass(frozen=True)
class CheckoutRequest:
    hold_id: str
    user_id: str
    idempotency_key: str
    payment_token: str


class SeatBlock:
    def __init__(self, settings: Settings, event_id: str, block: int, shared: Any) -> None:
        self._settings = settings
        self._event_id = event_id
        self._index = block
        self._entity_id = placement.block_entity(event_id, block)
        self._shared = shared
        self._redis = shared.redis
        self._payments = TestPaymentProvider(self._redis)
        self._lock = asyncio.Lock()
        self._delays: dict[str, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._checkouts: Batcher[CheckoutRequest, Booking] = Batcher(
            self._checkout_batch, settings.checkout_batch_max,
            settings.checkout_batch_wait_ms / 1000)
        self._finishing: set[asyncio.Task[None]] = set()  # paid holds the sweep finishes
        self._ledger_batches: collections.deque[int] = collections.deque(maxlen=1000)
        self._resync_needed = False  # set by a failover-like Redis error (`_resync`)
        self._stranded: set[str] = set()  # confirming, no checkout under way (`_settle_stranded`)
        self._resynced_at = -RESYNC_ON_REFUSAL_S
        self._holds_made, self._sales = HOLDS.bind(event_id), SALES.bind(event_id)
        self._seats_sold, self._revenue = SEATS_SOLD.bind(event_id), REVENUE.bind(event_id)
        self.last_used = time.monotonic()
        self.taken_over = False  # fenced by a newer incarnation: its host drops it
        logs.configure()

    # -- activation, passivation and recovery --------------------------------------------
    async def activate(self) -> None:
        raw = await self._redis.get(keys.event(self._event_id))
        if raw is None:
            raise await catalog.missing_event(self._redis, self._event_id)
        self._event = Event.from_json(raw)
        if self._event.closed:
            raise EventClosed("this event is closed")
        if not 0 <= self._index < len(self._event.venue.blocks):
            raise NotFound("no such block")
        self._cards = CardCaps(self._redis, self._event_id)
        block = self._event.venue.blocks[self._index]
        self._inventory = BlockInventory(block, self._event.price_of(block.section))
        epoch = await take_epoch(self._redis, keys.block_epoch(self._event_id, self._index),
                                 int(time.time() * 1000))
        await redis_clients.replicated(self._redis, self._settings)  # survives a failover
        self._scripts = BlockScripts(self._redis, self._event_id, self._index, epoch,
                                     self._settings.seat_log_max)
        self._ledger = await self._shared.ledger()
        await self._load_holds()
        await self._replay_ledger()
        await self._settle_interrupted_checkouts()
        await self._recount()
        await self._remind()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        log.info("block %s/%s ready at epoch %s", self._event_id, self._index, epoch)

    async def deactivate(self) -> None:
        """Stop sweeping; the next expiry stays in the due index, the holds in Redis. Checkouts
        in flight finish first, for up to `checkout_drain_s`: a successor settling a checkout
        this incarnation is still paying for would set it back to active, and the payment and
        the ledger record would land behind its back (seen when Redis restarted under a
        checkout batch). One slower than that is the successor's to settle (`_sweep`)."""
        busy = [*self._finishing]
        deadline = time.monotonic() + self._settings.checkout_drain_s
        if not await self._checkouts.drain(self._settings.checkout_drain_s):
            log.warning("block %s/%s handed over with a checkout still in flight",
                        self._event_id, self._index)
        if busy:
            await asyncio.wait(busy, timeout=max(0.0, deadline - time.monotonic()))
        if self._sweeper is not None:
            self._sweeper.cancel()
        async with self._lock:
            await self._remind()

    def can_passivate(self, now: float) -> bool:
        return not self._lock.locked() and not self._checkouts.busy and not any(
            h.status is HoldStatus.CONFIRMING for h in self._inventory.holds.values())

    async def on_due(self) -> None:
        """Reached through the due index: expire what is due, then set the next reminder."""
        await self._sweep()
        async with self._lock:
            await self._remind()

    async def _remind(self) -> None:
        """The due index holds this block's next expiry, or nothing when no hold is active."""
        due = self._inventory.next_expiry()
        if due is None:
            await self._redis.zrem(keys.due_index(), self._entity_id)
        else:
            await self._redis.zadd(keys.due_index(), {self._entity_id: int(due * 1000)})

    async def _load_holds(self) -> None:
        block = self._inventory.block
        records = await self._redis.hgetall(keys.block_holds(self._event_id, self._index))
        for token, record in records.items():
            hold = decode_hold(record, self._ref(text(token)), block)
            self._inventory.put(hold)

    async def _replay_ledger(self) -> None:
        """Bookings the ledger has but Redis lost (or never got) are applied again."""
        bookings = await asyncio.to_thread(
            read_bookings, self._settings.kafka_bootstrap, self._settings.ledger_topic,
            self._event_id, self._index, self._settings.kafka_timeout_s * 3)
        for record in bookings:
            booking, key = booking_and_key(record)
            ref = parse_hold_id(booking["hold_id"])
            known = self._inventory.holds.get(ref.hold_id)
            if known is not None and known.status is HoldStatus.CONFIRMED:
                continue
            # the key too, so the buyer's retry of a checkout whose answer a lost Redis took
            # with it is answered its booking (a replay), not "already confirmed"
            hold = Hold(hold_id=ref.hold_id, event_id=self._event_id, user_id=booking["user_id"],
                        section=self._inventory.block.section, seat_ids=tuple(booking["seat_ids"]),
                        total_cents=booking["total_cents"], expires_at=booking["confirmed_at"],
                        status=HoldStatus.CONFIRMED,
                        idempotency_key=key or (known.idempotency_key if known else ""))
            await self._scripts.transition(ref.token, "", self._encode(hold), booking)
            self._inventory.forget(hold.hold_id)
            self._inventory.put(hold)

    async def _settle_interrupted_checkouts(self) -> None:
        paid = []
        for hold in list(self._inventory.holds.values()):
            if hold.status is HoldStatus.CONFIRMING:
                if await self._payments.was_charged(_charge_key(hold)):
                    paid.append(hold)
                else:
                    await self._cards.release(self._ref_of(hold).token)
                    await self._write(rules.abort_checkout(hold), HoldStatus.CONFIRMING)
        for result in await self._finish_checkouts(paid):
            if isinstance(result, Exception):
                raise result  # not ready: the next call activates it again

    async def _recount(self) -> None:
        """Available = seats - held - sold, from the bitmaps this owner alone writes."""
        e, b = self._event_id, self._index
        held = await self._redis.bitcount(keys.block_held(e, b))
        sold = await self._redis.bitcount(keys.block_sold(e, b))
        total = self._inventory.block.seats_total
        await self._redis.hset(keys.available(e), str(b), total - held - sold)

    # -- holds ---------------------------------------------------------------------------
    async def hold(self, requests: list[tuple[str, HoldRequest]]) -> list[HoldResult]:
        """Hold a batch of (hold_id, request): one Redis round trip for the whole batch."""
        async with self._lock:
            try:
                return await self._hold_locked(requests)
            except RedisError as error:
                self._diverged(error)
                raise

    async def _hold_locked(self, requests: list[tuple[str, HoldRequest]]) -> list[HoldResult]:
        if self._resync_needed:
            await self._resync()
        now = time.time()
        known = {hold_id for hold_id, _ in requests if hold_id in self._inventory.holds}
        plans = [self._plan(hold_id, request, now) for hold_id, request in requests]
        fresh = [p for p in plans if isinstance(p, Hold) and p.hold_id not in known]
        if fresh:  # the reminder first: a hold must never outlive a crash unexpired
            soonest = int(min(h.expires_at for h in fresh) * 1000)
            await self._redis.zadd(keys.due_index(), {self._entity_id: soonest}, lt=True)
        await self._delay("after_plan")
        outcomes = await self._scripts.hold_batch(
            [self._planned(h) for h in fresh], self._event.max_seats_per_user) if fresh else []
        refused = {h.hold_id: o for h, o in zip(fresh, outcomes, strict=True)
                   if o is not HoldOutcome.OK}
        for hold_id in refused:
            self._inventory.forget(hold_id)
        if HoldOutcome.TAKEN in refused.values() and (
                time.monotonic() - self._resynced_at > RESYNC_ON_REFUSAL_S):
            # Memory planned those seats free and Redis has them held: a hold's release or
            # expiry lost with a primary leaves its record active, the seats out of sale.
            self._resync_needed = True
        if len(fresh) > len(refused):
            self._holds_made.inc(len(fresh) - len(refused))
        return [_refusal(refused[p.hold_id]) if isinstance(p, Hold) and p.hold_id in refused
                else p for p in plans]

    def _diverged(self, error: BaseException) -> None:
        """A Redis failure of the kind a failover causes: memory may now hold what the promoted
        replica lacks (a hold whose script failed or whose write was lost with the primary)."""
        if redis_clients.is_failover_error(error):
            self._resync_needed = True

    async def _resync(self) -> None:
        """After a Redis failover, take Redis's holds as the truth for the active ones: an active
        hold in memory that Redis does not have (lost with the primary, or whose script failed)
        gives its seats back; one Redis has that memory lacks is taken in. Confirming and
        confirmed holds stay as memory has them: their begin was acknowledged by a replica
        and the ledger decides their sale. A record taken in as confirming (a begin whose call
        failed but applied) has no checkout under way: it is stranded, for the sweep to settle
        (`_settle_stranded`). Then the block's availability is recounted."""
        records = await self._redis.hgetall(keys.block_holds(self._event_id, self._index))
        stored = {text(token): record for token, record in records.items()}
        for hold in list(self._inventory.holds.values()):
            record = stored.get(self._ref_of(hold).token)
            if hold.status is HoldStatus.ACTIVE and (record is None or not text(record).startswith(
                    HoldStatus.ACTIVE.value + "|")):
                self._inventory.forget(hold.hold_id)
        for token, record in stored.items():
            if self._ref(token).hold_id not in self._inventory.holds:
                hold = decode_hold(record, self._ref(token), self._inventory.block)
                self._inventory.put(hold)
                if hold.status is HoldStatus.CONFIRMING:
                    self._stranded.add(hold.hold_id)
        await self._recount()
        self._resync_needed, self._resynced_at = False, time.monotonic()
        log.warning("block %s/%s resynced its holds with Redis after a failover",
                    self._event_id, self._index)

    def _plan(self, hold_id: str, request: HoldRequest, now: float) -> HoldResult:
        known = self._inventory.holds.get(hold_id)
        if known is not None:  # a retried call: the hold was already made
            return known
        try:
            return self._inventory.plan(request, hold_id, self._event_id, now,
                                        self._event.hold_ttl_s)
        except TicketingError as error:
            return error

    async def release(self, hold_id: str, user_id: str) -> None:
        async with self._lock:
            hold = await self._own_hold(hold_id, user_id)
            if hold.status is HoldStatus.RELEASED:
                return
            if await self._paid_before(hold):
                raise CheckoutInProgress("this hold is paid and its booking is being completed; "
                                         "check out again with the same Idempotency-Key")
            released = rules.release(hold, time.time())
            await self._scripts.release([self._ref_of(hold).token], time.time())
            self._inventory.forget(released.hold_id)

    # -- checkout ------------------------------------------------------------------------
    async def checkout(self, hold_id: str, user_id: str, idempotency_key: str,
                       payment_token: str) -> Booking:
        """Pay, write the ledger, then confirm; the same key returns the same booking.

        Checkouts arriving within CHECKOUT_BATCH_WAIT_MS (or CHECKOUT_BATCH_MAX of them) are
        one batch: begun in one fenced call, paid concurrently, their bookings written in one
        acknowledged produce, then confirmed in one fenced call. Each caller hears its own
        checkout's outcome; a booking is answered only once it is in the ledger."""
        return await self._checkouts.submit(
            CheckoutRequest(hold_id, user_id, idempotency_key, payment_token))

    async def checkouts(self, requests: list[tuple[str, str, str, str]],
                        ) -> list[Booking | TicketingError]:
        """Several checkouts in one call, as a Serve replica gathers them for this block
        (hold_id, user_id, idempotency_key, payment_token each): they join the block's batch
        window together, so one actor call and one batch serve them all; each is answered
        with its booking or its own error."""
        answers = await asyncio.gather(*[
            self._checkouts.submit(CheckoutRequest(*request)) for request in requests],
            return_exceptions=True)
        return [a if isinstance(a, dict | TicketingError) else Unavailable(f"checkout failed: {a!r}")
                for a in answers]

    async def _checkout_batch(self, requests: list[CheckoutRequest]) -> list[CheckoutResult]:
        results: list[CheckoutResult] = [Unavailable("not attempted")] * len(requests)
        begun, replays = await self._begin_checkouts(requests, results)
        for position, hold in replays:
            try:
                results[position] = await self._booking(hold)
            except TicketingError as error:
                results[position] = error
        if not begun:
            return results
        try:  # confirming on a replica before anything is charged or written to the ledger
            await self._begun_durably([hold for _, hold, _ in begun])
        except Unavailable as error:
            await self._set_back([hold for _, hold, _ in begun])
            for position, _, _ in begun:
                results[position] = error
            return results
        await self._delay("before_charge")
        failures = await asyncio.gather(*[
            self._pay(requests[position], hold, paid_before)
            for position, hold, paid_before in begun])
        declined = [hold for (_, hold, _), failure in zip(begun, failures, strict=True)
                    if failure is not None]
        if declined:
            await self._set_back(declined)
        paid = []
        for (position, hold, _), failure in zip(begun, failures, strict=True):
            if failure is not None:
                results[position] = failure
            else:
                paid.append((position, hold))
        finished = await self._finish_checkouts([hold for _, hold in paid])
        for (position, _), result in zip(paid, finished, strict=True):
            results[position] = result
        for result in results:
            if isinstance(result, Exception):
                CHECKOUT_ERRORS.bind(getattr(result, "code", "internal")).inc()
        return results

    async def _begin_checkouts(self, requests: list[CheckoutRequest],
                               results: list[CheckoutResult],
                               ) -> tuple[list[tuple[int, Hold, bool]], list[tuple[int, Hold]]]:
        """Under the lock, active -> confirming for the whole batch in one fenced call: plan
        each on memory, let Redis recheck and apply, keep what it applied. Returns the begun
        checkouts (position, confirming hold, already paid) and the replays of a confirmed
        booking; every other request's error is in `results`.

        The buyer's retry (same key) of a checkout a failover interrupted carries that
        checkout on: a stranded hold (`_settle_stranded`) is taken up where it stopped, and a
        begin that applied though its reply was lost (Redis has the hold confirming under this
        key, memory still active) counts as begun."""
        begun: list[tuple[int, Hold, bool]] = []
        replays: list[tuple[int, Hold]] = []
        async with self._lock:
            now = time.time()
            planned: set[str] = set()
            expected: dict[str, HoldStatus] = {}
            for position, request in enumerate(requests):
                try:
                    hold = await self._own_hold(request.hold_id, request.user_id)
                    if request.hold_id in planned:
                        raise CheckoutInProgress("a checkout of this hold is under way")
                    if rules.is_replay(hold, request.idempotency_key):
                        replays.append((position, hold))
                        continue
                    if (request.hold_id in self._stranded and request.idempotency_key
                            and hold.idempotency_key == request.idempotency_key):
                        paid_before = await self._payments.was_charged(_charge_key(hold))
                        confirming, expected[hold.hold_id] = hold, HoldStatus.CONFIRMING
                    else:
                        paid_before = await self._paid_before(hold)
                        confirming = rules.resume_paid_checkout(hold) if paid_before else (
                            rules.begin_checkout(hold, request.idempotency_key
                                                 or "auto-" + secrets.token_hex(8), now))
                        expected[hold.hold_id] = HoldStatus.ACTIVE
                except TicketingError as error:
                    results[position] = error
                    continue
                planned.add(request.hold_id)
                begun.append((position, confirming, paid_before))
            if not begun:
                return begun, replays
            try:
                answers = await self._scripts.transitions([
                    Transition(self._ref_of(hold).token, expected[hold.hold_id],
                               self._encode(hold)) for _, hold, _ in begun])
            except Exception as error:
                self._diverged(error)
                for position, _, _ in begun:
                    results[position] = error
                return [], replays
            applied = []
            for (position, hold, paid_before), answer in zip(begun, answers, strict=True):
                if answer is None or await self._begun_before(hold):
                    self._inventory.put(hold)
                    self._stranded.discard(hold.hold_id)
                    applied.append((position, hold, paid_before))
                else:  # memory said active: Redis lost it (a failover) or moved it
                    self._resync_needed = True
                    results[position] = answer
        return applied, replays

    async def _begun_before(self, confirming: Hold) -> bool:
        """Redis has this hold confirming under this checkout's key already: an earlier
        begin with the key applied though its call failed (its reply lost with the primary)."""
        ref = self._ref_of(confirming)
        record = await self._redis.hget(keys.block_holds(self._event_id, self._index), ref.token)
        if record is None:
            return False
        stored = decode_hold(record, ref, self._inventory.block)
        return (stored.status is HoldStatus.CONFIRMING and bool(confirming.idempotency_key)
                and stored.idempotency_key == confirming.idempotency_key)

    async def _begun_durably(self, confirming: list[Hold]) -> None:
        """Return once these holds are `confirming` on a replica (Unavailable after
        CONFIRM_RETRY_S). A failed acknowledgement mid-failover leaves it unknown whether the
        promoted primary has them, so they are written again (this owner alone writes them and
        memory has them confirming) and acknowledged again: never set back through a Redis
        that is down, which would leave them confirming for good."""
        deadline = time.monotonic() + CONFIRM_RETRY_S
        while True:
            try:
                await redis_clients.replicated(self._redis, self._settings)
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(CONFIRM_RETRY_INTERVAL_S)
            async with self._lock:
                with contextlib.suppress(RedisError):
                    await self._scripts.transitions([
                        Transition(self._ref_of(hold).token, "", self._encode(hold))
                        for hold in confirming])

    async def _paid_before(self, hold: Hold) -> bool:
        """An active hold whose earlier checkout was charged (its ledger write failed, or its
        owner was replaced mid-way) is finished with that payment, never charged again and
        never given back."""
        return (hold.status is HoldStatus.ACTIVE and bool(hold.idempotency_key)
                and await self._payments.was_charged(_charge_key(hold)))

    async def _pay(self, request: CheckoutRequest, confirming: Hold,
                   paid_before: bool) -> Exception | None:
        """Claim the seats for the card (the seat cap per card), then charge; the claim is
        given back if the charge fails. Returns this checkout's failure, if any."""
        if paid_before:
            return None
        token = self._ref_of(confirming).token
        try:
            fingerprint = await self._payments.fingerprint(request.payment_token)
            await self._cards.claim(token, fingerprint, len(confirming.seat_ids),
                                    self._event.max_seats_per_user)
            await self._payments.charge(_charge_key(confirming), request.payment_token,
                                        confirming.total_cents)
        except Exception as error:
            with contextlib.suppress(Exception):
                await self._cards.release(token)
            return error
        return None

    async def _finish_checkouts(self, paid: list[Hold]) -> list[CheckoutResult]:
        """Paid holds (confirming) to bookings: one acknowledged produce for all of them, then
        one fenced call that sells their seats. A failed produce confirms none of them and sets
        them back to active, key and charge kept, so nothing is lost or sold twice: a retry
        with the key, or the sweep at expiry, finishes them (`_paid_before`); whatever of the
        produce did land is the same booking id, a duplicate."""
        if not paid:
            return []
        now = time.time()
        bookings = [booking_of(hold, self._ref_of(hold), now) for hold in paid]
        try:
            await self._delay("before_ledger")
            await self._ledger.append_batch([ledger_record(booking, hold)
                                             for booking, hold in zip(bookings, paid, strict=True)])
            self._ledger_batches.append(len(bookings))
        except Exception as error:
            log.warning("ledger write of %d bookings failed (%r); their holds stay active",
                        len(paid), error)
            await self._set_back(paid)
            return [error] * len(paid)
        await self._delay("after_ledger")
        confirmed = [rules.confirm(hold) for hold in paid]
        sales = [Transition(self._ref_of(hold).token, HoldStatus.CONFIRMING, self._encode(hold),
                            booking) for hold, booking in zip(confirmed, bookings, strict=True)]
        deadline = time.monotonic() + CONFIRM_RETRY_S
        while True:
            async with self._lock:
                try:
                    answers = await self._scripts.transitions(sales)
                    break
                except RedisError as error:  # sold in the ledger: keep confirming them
                    if not redis_clients.is_failover_error(error) or (
                            time.monotonic() > deadline):
                        return [Unavailable(f"checkout failed: {error!r}")] * len(paid)
                except Exception as error:  # in the ledger: a new owner confirms them on replay
                    return [error] * len(paid)
            await asyncio.sleep(CONFIRM_RETRY_INTERVAL_S)
            # The failed call may have applied (on the old primary, replicated): whatever
            # Redis says now, the ledger has these bookings, so they are sold (as on replay).
            sales = [replace(sale, expected="") for sale in sales]
        async with self._lock:
            results: list[CheckoutResult] = []
            for hold, booking, answer in zip(confirmed, bookings, answers, strict=True):
                if answer is None:
                    self._inventory.put(hold)
                    results.append(booking)
                    self._sales.inc()
                    self._seats_sold.inc(len(hold.seat_ids))
                    self._revenue.inc(hold.total_cents)
                else:
                    results.append(answer)
        try:  # best effort: sold by the ledger already, this keeps Redis's view across failover
            await redis_clients.replicated(self._redis, self._settings)
        except Unavailable as error:
            log.warning("%d sales not acknowledged by a replica (%s); the ledger has them",
                        len(paid), error)
        return results

    async def _set_back(self, confirming: list[Hold]) -> None:
        """confirming -> active in one fenced call, each hold keeping its seats, expiry and
        key, so a retry with the key checks it out and the sweep expires it if none comes.

        A failover-like error is retried for up to CONFIRM_RETRY_S (a checkout whose payment
        step met the failover is set back through the promoted primary, not left confirming:
        nothing else would ever settle it while this owner lives, and its seats would stay
        out of sale). A hold Redis no longer has confirming (a failed try applied after all)
        takes Redis's record. Holds still not set back are stranded: the sweep settles them
        (`_settle_stranded`) once Redis answers again."""
        active = [rules.abort_checkout(hold) for hold in confirming]
        deadline = time.monotonic() + CONFIRM_RETRY_S
        while True:
            async with self._lock:
                try:
                    answers = await self._scripts.transitions([
                        Transition(self._ref_of(hold).token, HoldStatus.CONFIRMING,
                                   self._encode(hold)) for hold in active])
                    for hold, answer in zip(active, answers, strict=True):
                        if answer is None:
                            self._inventory.put(hold)
                        else:
                            await self._take_stored(hold)
                            self._resync_needed = True  # recount before the next hold
                    return
                except Exception as error:
                    self._diverged(error)
                    if not redis_clients.is_failover_error(error) or (
                            time.monotonic() > deadline):
                        log.exception("could not set %d checkouts back to active; the sweep "
                                      "settles them", len(active))
                        self._stranded.update(hold.hold_id for hold in active)
                        return
            await asyncio.sleep(CONFIRM_RETRY_INTERVAL_S)

    async def _settle_stranded(self) -> None:
        """Settle confirming holds whose checkout ended without settling them (`_set_back`
        failed through a long failover, or `_resync` found a begin that applied though its
        call failed), as an activation settles a crash's: a charged one is finished, any
        other is active again, key kept. Until then the buyer's retry with the checkout's key
        carries it on (`_begin_checkouts`); a sweep keeps their seats from staying out of
        sale when no retry comes."""
        paid: list[Hold] = []
        async with self._lock:
            for hold_id in sorted(self._stranded):
                hold = self._inventory.holds.get(hold_id)
                if hold is None or hold.status is not HoldStatus.CONFIRMING:
                    self._stranded.discard(hold_id)
                    continue
                if await self._payments.was_charged(_charge_key(hold)):
                    paid.append(hold)
                else:
                    await self._cards.release(self._ref_of(hold).token)
                    try:
                        await self._write(rules.abort_checkout(hold), HoldStatus.CONFIRMING)
                    except HoldNotActive:
                        await self._take_stored(hold)
                self._stranded.discard(hold_id)
        if paid:
            log.warning("stranded checkouts %s were paid; finishing them",
                        [h.hold_id for h in paid])
            self._finish_later(paid)

    async def _booking(self, hold: Hold) -> dict[str, Any]:
        ref = self._ref_of(hold)
        raw = await self._redis.hget(keys.bookings(self._event_id), ref.token)
        if raw is None:
            raise NotFound("booking not found")
        booking: dict[str, Any] = json.loads(raw)
        return booking

    # -- prices, health, test hooks ------------------------------------------------------
    async def reprice(self, price_cents: int) -> None:
        self._inventory.reprice(price_cents)
        self._event = self._event.with_price(self._inventory.block.section, price_cents)

    async def ping(self) -> int:
        """Ready and answering; returns the seats this owner believes available."""
        return self._inventory.seats_available

    async def set_delay(self, point: str, seconds: float) -> None:
        """Test hook: pause at a named point to make races reproducible: `after_plan` (holds),
        `before_charge`, `before_ledger` and `after_ledger` (once per checkout batch)."""
        self._delays[point] = seconds

    async def set_checkout_window(self, max_size: int, wait_ms: float) -> None:
        """Test hook: widen (or narrow) the checkout batch window, so a test puts checkouts it
        sends together into one batch whatever the scheduling."""
        self._checkouts = Batcher(self._checkout_batch, max_size, wait_ms / 1000)

    async def checkout_batches(self) -> list[int]:
        """Sizes of the last checkout batches this owner wrote to the ledger (for tests and
        benchmarks: how well checkouts batch)."""
        return list(self._ledger_batches)

    async def _delay(self, point: str) -> None:
        if self._delays.get(point):
            await asyncio.sleep(self._delays[point])

    # -- expiry --------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval_s)
            try:
                await self._sweep()
            except StaleOwner:
                log.warning("block %s/%s was taken over; this incarnation stops sweeping",
                            self._event_id, self._index)
                self.taken_over = True
                return
            except Exception:
                log.exception("sweep of %s/%s failed", self._event_id, self._index)

    async def _sweep(self) -> None:
        """Expire the holds this owner's expiry queue says are due (no Redis call when none
        is); the script re-checks each record, so Redis has the last word.

        A due hold whose charge went through (a checkout whose ledger write failed, or one an
        old incarnation had begun when it was replaced, whose payment landed after this one
        took over) is finished, not expired: a paid seat is never given back to be sold again.
        That runs beside the sweep, so a ledger that does not answer holds up no expiry.
        Stranded checkouts (`_settle_stranded`) are settled first."""
        if self._stranded:
            await self._settle_stranded()
        paid: list[Hold] = []
        async with self._lock:
            now = time.time()
            due = self._inventory.expired_holds(now, self._settings.sweep_batch_max)
            if not due:
                return
            for hold in due:
                if hold.idempotency_key and await self._payments.was_charged(_charge_key(hold)):
                    paid.append(rules.resume_paid_checkout(hold))
                    await self._write(paid[-1], HoldStatus.ACTIVE)
            unpaid = [h for h in due if h.hold_id not in {p.hold_id for p in paid}]
            tokens = [self._ref_of(h).token for h in unpaid]
            freed = set(await self._scripts.expire(tokens, now)) if tokens else set()
            for hold in unpaid:
                if self._ref_of(hold).token in freed:
                    self._inventory.forget(hold.hold_id)
                else:
                    await self._reload(hold)
            await self._remind()
        if paid:
            log.warning("holds %s were due but paid; finishing their checkouts",
                        [h.hold_id for h in paid])
            self._finish_later(paid)

    def _finish_later(self, paid: list[Hold]) -> None:
        task = asyncio.get_running_loop().create_task(self._finish_in_background(paid))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish_in_background(self, paid: list[Hold]) -> None:
        """Not in the sweep's way: a ledger that does not answer delays these, not expiries.
        Those it could not finish are active again, and due: a later sweep tries again."""
        failed = [r for r in await self._finish_checkouts(paid) if isinstance(r, Exception)]
        if failed:
            log.warning("%d paid holds not finished yet: %r", len(failed), failed[0])

    async def _reload(self, hold: Hold) -> None:
        """Memory said due, Redis did not free it: take Redis's record as the truth."""
        log.warning("hold %s was due but not expired by Redis; reloading it", hold.hold_id)
        await self._take_stored(hold)

    async def _take_stored(self, hold: Hold) -> None:
        """Redis's record of this hold replaces memory's (none: the hold is gone)."""
        ref = self._ref_of(hold)
        record = await self._redis.hget(keys.block_holds(self._event_id, self._index), ref.token)
        self._inventory.forget(hold.hold_id)
        if record is not None:
            self._inventory.put(decode_hold(record, ref, self._inventory.block))

    # -- helpers -------------------------------------------------------------------------
    async def _own_hold(self, hold_id: str, user_id: str) -> Hold:
        """The hold, live from memory or ended from Redis, if `user_id` holds it."""
        hold = self._inventory.holds.get(hold_id)
        if hold is None:
            ref = parse_hold_id(hold_id)
            record = await self._redis.hget(keys.block_holds(self._event_id, self._index),
                                            ref.token)
            if record is None:
                raise NotFound("no such hold")
            hold = decode_hold(record, ref, self._inventory.block)
        rules.check_owner(hold, user_id)
        return hold

    async def _write(self, hold: Hold, expected: HoldStatus) -> None:
        await self._scripts.transition(self._ref_of(hold).token, expected, self._encode(hold))
        self._inventory.put(hold)

    def _planned(self, hold: Hold) -> PlannedHold:
        return PlannedHold(self._ref_of(hold).token, hold.user_id,
                           self._inventory.seat_indices(hold.hold_id), self._encode(hold))

    def _encode(self, hold: Hold) -> str:
        return encode_hold(hold, self._inventory.block)

    def _ref(self, token: str) -> HoldRef:
        return HoldRef(self._event_id, self._index, token)

    def _ref_of(self, hold: Hold) -> HoldRef:
        return parse_hold_id(hold.hold_id)


def _charge_key(hold: Hold) -> str:
    return f"{hold.hold_id}:{hold.idempotency_key}"


def _refusal(outcome: HoldOutcome) -> TicketingError:
    if outcome is HoldOutcome.LIMIT:
        return UserLimitExceeded("this would pass the event's seats-per-user limit")
    return SeatsUnavailable("a seat was taken")

