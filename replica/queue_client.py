"""The waiting room as a Serve replica sees it: stamp and log joins, answer status, feed streams.

A join is stamped with the NTP-corrected clock and produced to the event's joins topic; the
request path writes nothing else (the ticket id is derived, not stored). Status and streams
read Redis only: one small hash per event per tick for all of this replica's streams, plus a
ticket's own place when it is first looked up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ray.exceptions import RayError, RayTaskError
from redis.asyncio import Redis

from actors import directory
from domain import tokens
from domain.errors import EventClosed, Forbidden, NotFound, RateLimited, TicketingError, Unavailable
from domain.event import Event, iso
from domain.ids import ticket_id_for
from domain.settings import Settings
from domain.waiting import fairness
from domain.waiting.queue_order import QueueTier
from domain.waiting.status import Place, RoomStats, TicketView, view
from domain.waiting.tickets import TicketState
from replica.identity import Identity
from store import joins, keys, ratelimit
from store.clock import NtpClock
from store.codec import text, text_map
from store.metrics import JOINS, POSITION_LAG
from store.queue import decode_stats, lookup, room_fields
from store.ticker import Ticker


def now_ms() -> int:
    return int(time.time() * 1000)


class RoomFeed:
    """One event's published room numbers, read once per tick for every stream of the replica."""

    def __init__(self, redis: Redis, event_id: str, tick_s: float) -> None:
        self._redis, self._event_id = redis, event_id
        self.stats = RoomStats()
        self._ticker = Ticker(self._read, tick_s, after=self._after_tick,
                              on_start=self._forget_heads)
        self._published: str | None = None
        self._heads: tuple[int, int] | None = None
        self._lag = POSITION_LAG.bind(event_id)
        self.last_lag: tuple[float, float] | None = None  # (monotonic when, seconds) for the console

    async def next(self) -> RoomStats:
        """Wait for the next tick's numbers."""
        await self._ticker.next()
        return self.stats

    async def _read(self) -> None:
        raw = await self._redis.hgetall(keys.room(self._event_id))
        self.stats = decode_stats(raw)
        self._published = text_map(raw).get("published_at_ms")

    def _forget_heads(self) -> None:
        """A loop that starts again compares heads from its own first read on."""
        self._heads = None

    def _after_tick(self) -> None:
        before, self._heads = self._heads, (self.stats.head, self.stats.presale_head)
        if self._published and before is not None and before != self._heads:
            # Runs after every woken stream has taken its step, i.e. handed its position
            # over: the lag of this replica's streams behind the room, one record a tick.
            asyncio.get_running_loop().call_soon(self._record_lag, int(self._published))

    def _record_lag(self, published_ms: int) -> None:
        lag_s = max(0.0, now_ms() - published_ms) / 1000
        self._lag.observe(lag_s)
        self.last_lag = (time.monotonic(), lag_s)


class RoomWaker:
    """Makes an event's room and ingest active before its join is logged: the first join of
    an idle (passivated) event wakes them; later ones cost nothing for half the passivation
    time (they stay active at least that long after their last join)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._awake_until: dict[str, float] = {}
        self._waking: dict[str, asyncio.Future[None]] = {}

    async def __call__(self, event_id: str) -> None:
        if self._awake_until.get(event_id, 0.0) > time.monotonic():
            return
        waking = self._waking.get(event_id)
        if waking is None:
            waking = self._waking[event_id] = asyncio.ensure_future(self._wake(event_id))
            waking.add_done_callback(lambda _done: self._waking.pop(event_id, None))
        await asyncio.shield(waking)

    async def _wake(self, event_id: str) -> None:
        s = self.settings
        owners = [directory.waiting_room(s, event_id)] + [
            directory.ingest(s, event_id, i) for i in range(s.ingest_actors)]
        try:
            await asyncio.wait_for(asyncio.gather(*[o.ping.remote() for o in owners]),
                                   s.actor_call_timeout_s)
        except RayTaskError as error:
            cause = error.cause
            raise cause if isinstance(cause, TicketingError) else Unavailable(
                "the waiting room failed to start; retry") from error
        except (RayError, TimeoutError) as error:
            raise Unavailable("the waiting room did not answer; retry") from error
        self._awake_until[event_id] = time.monotonic() + s.passivate_after_s / 2


class QueueClient:
    def __init__(self, settings: Settings, redis: Redis, identity: Identity | None = None,
                 wake: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.identity = identity or Identity(settings)
        self._wake = wake or RoomWaker(settings)
        self.clock = NtpClock(settings.ntp_servers, settings.ntp_refresh_s,
                              settings.unsynced_uncertainty_ms)
        self._clock_task: asyncio.Task[None] | None = None
        self._join_log: joins.JoinLog | None = None
        self.limits = ratelimit.RateLimits(redis)
        self._feeds: dict[str, RoomFeed] = {}
        self._streams: Counter[str] = Counter()
        self._joins: dict[str, Any] = {}  # JOINS bound per event

    async def start(self) -> None:
        """Measure the clock once before the first join, then keep it fresh in the background."""
        if self._clock_task is None:
            await asyncio.to_thread(self.clock.measure)
            self._clock_task = asyncio.get_running_loop().create_task(self.clock.run())
        if self._join_log is None:
            self._join_log = await asyncio.to_thread(
                joins.JoinLog, self.settings.kafka_bootstrap, self.settings.kafka_timeout_s,
                self.settings.join_batch_max, self.settings.join_batch_wait_ms)

    # -- join and status -----------------------------------------------------------------
    async def limit_join(self, event_id: str, client: str, user_id: str) -> None:
        """Charge a join to the client address's and the user's budgets (RateLimited beyond)."""
        s = self.settings
        await self.limits.spend(ratelimit.address(event_id, "join", client, s.join_rate_per_s),
                                ratelimit.user(event_id, "join", user_id, s.user_rate_per_s))

    async def limit_signin(self, client: str) -> None:
        await self.limits.spend(ratelimit.address("signin", "signin", client,
                                                  self.settings.signin_rate_per_s))

    async def join(self, event: Event, user_id: str, code: str | None) -> dict[str, Any]:
        if event.closed:
            raise EventClosed("this event is closed")
        await self.start()
        await self._wake(event.event_id)
        assert self._join_log is not None
        ticket_id = ticket_id_for(self.settings.token_secret, event.event_id, user_id)
        stamp = self.clock.stamp()
        # A rejoin is logged too and derives the same ticket; the room keeps its first place.
        await self._join_log.append(self.settings.joins_topic(event.event_id), joins.encode(
            ticket_id, event.event_id, user_id, stamp.at_ms, stamp.uncertainty_ms,
            stamp.synced, code))
        joined = self._joins.get(event.event_id)
        if joined is None:
            joined = self._joins[event.event_id] = JOINS.bind(event.event_id)
        joined.inc()
        state = TicketState.PRE_QUEUE if stamp.at_ms < event.onsale_at * 1000 else TicketState.WAITING
        token = self.identity.sign(tokens.Claims(
            tokens.TICKET, user_id, event.event_id, time.time() + self.settings.ticket_ttl_s,
            ticket_id))
        return {"ticket_id": ticket_id, "ticket_token": token, "state": state,
                "joined_at": iso(stamp.at_ms / 1000), "clock_synced": stamp.synced,
                "clock_uncertainty_ms": stamp.uncertainty_ms}

    async def status(self, event: Event, ticket_id: str, claims: tokens.Claims,
                     client: str) -> dict[str, Any]:
        _check_ticket(ticket_id, claims)
        s = self.settings
        await self.limits.spend(
            ratelimit.address(event.event_id, "status", client, s.status_rate_per_s),
            ratelimit.user(event.event_id, "status", claims.user_id, s.user_rate_per_s))
        place, admission = await lookup(self.redis, event.event_id, ticket_id)
        stats = decode_stats(await self.redis.hgetall(keys.room(event.event_id)))
        return self._body(event, view(place, admission, stats, int(event.onsale_at * 1000),
                                      now_ms()), claims)

    def _body(self, event: Event, ticket: TicketView, claims: tokens.Claims) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ticket_id": claims.subject, "state": ticket.state, "position": ticket.position,
            "eta_s": _round(ticket.eta.eta_s), "eta_low_s": _round(ticket.eta.eta_low_s),
            "eta_high_s": _round(ticket.eta.eta_high_s), "admission_token": None}
        if ticket.admission is not None:
            body["admission_token"] = self.identity.sign(tokens.Claims(
                tokens.ADMISSION, claims.user_id, event.event_id,
                ticket.admission.expires_at_ms / 1000, claims.subject))
            body["admission_expires_at"] = iso(ticket.admission.expires_at_ms / 1000)
        return body

    # -- streams -------------------------------------------------------------------------
    async def stream(self, event: Event, ticket_id: str, claims: tokens.Claims,
                     last_event_id: str | None) -> AsyncIterator[bytes]:
        """SSE: `position` when it changes (once per tick at most), then `admitted`,
        `sold_out` or `expired`; heartbeats between. Event ids are the lane head, so a
        reconnect with Last-Event-ID does not repeat what the client already has."""
        _check_ticket(ticket_id, claims)
        if self._streams[ticket_id] >= self.settings.max_streams_per_ticket:
            raise RateLimited("too many open streams for this ticket", 5)
        self._streams[ticket_id] += 1
        return self._events(event, ticket_id, claims, last_event_id)

    async def _events(self, event: Event, ticket_id: str, claims: tokens.Claims,
                      last_event_id: str | None) -> AsyncIterator[bytes]:
        feed = self._feed(event.event_id)
        sent: tuple[Any, ...] | None = None
        place, admission = await lookup(self.redis, event.event_id, ticket_id)
        beat = time.monotonic()
        try:
            yield b"retry: 2000\n\n"
            stats = feed.stats if feed.stats.tail or feed.stats.head else await feed.next()
            while True:
                if admission is None and _may_have_moved(place, stats):
                    place, admission = await lookup(self.redis, event.event_id, ticket_id)
                ticket = view(place, admission, stats, int(event.onsale_at * 1000), now_ms())
                event_id = str(stats.head)
                key = (ticket.state, ticket.position)
                if key != sent and not (sent is None and last_event_id == event_id
                                        and ticket.state is TicketState.WAITING):
                    yield _sse(_event_name(ticket.state), self._body(event, ticket, claims),
                               event_id)
                    beat = time.monotonic()
                sent = key
                if ticket.state in (TicketState.ADMITTED, TicketState.EXPIRED):
                    return
                if time.monotonic() - beat >= self.settings.heartbeat_s:
                    yield b": heartbeat\n\n"
                    beat = time.monotonic()
                stats = await feed.next()
        except asyncio.CancelledError:
            return  # the client left
        finally:
            self._streams[ticket_id] -= 1

    def _feed(self, event_id: str) -> RoomFeed:
        if event_id not in self._feeds:
            self._feeds[event_id] = RoomFeed(self.redis, event_id, self.settings.stream_tick_s)
        return self._feeds[event_id]

    def position_lag(self, event_id: str, fresh_s: float = 10.0) -> float | None:
        """The last position-update lag this replica's streams of the event had (the room's
        publication to positions handed over), if one was measured in the last `fresh_s`:
        None when no fan of the event streams through this replica, or positions stood still."""
        feed = self._feeds.get(event_id)
        if feed is None or feed.last_lag is None or time.monotonic() - feed.last_lag[0] > fresh_s:
            return None
        return feed.last_lag[1]

    # -- admin and fairness --------------------------------------------------------------
    async def stats(self, event: Event) -> dict[str, Any]:
        room = await room_fields(self.redis, event.event_id)
        prequeue = await self.redis.llen(keys.queue_prequeue(event.event_id))
        waiting = (int(room.get("tail", 0)) - int(room.get("head", 0))
                   + int(room.get("presale_tail", 0)) - int(room.get("presale_head", 0)) + prequeue)
        oldest = int(room.get("oldest_joined_at_ms", 0))
        return {"waiting": waiting, "pre_queue": prequeue,
                "admitted": int(room.get("admitted_total", 0)),
                "admission_rate_per_s": event.admission_rate_per_s,
                "measured_rate_per_s": float(room.get("rate_mean", 0)),
                "oldest_wait_s": round((now_ms() - oldest) / 1000, 3) if oldest else 0.0,
                "sold_out": room.get("sold_out") == "1"}

    async def fairness(self, event: Event) -> dict[str, Any]:
        room = await room_fields(self.redis, event.event_id)
        done = room.get("lottery_done") == "1"
        entrants = await self.redis.lrange(keys.lottery_entrants(event.event_id), 0, -1) if done else []
        return {"commitment": room.get("commitment"), "seed": room.get("seed") if done else None,
                "lottery_done": done, "prequeue_ticket_ids": sorted(text(e) for e in entrants),
                "log_length": int(room.get("log_length", 0)), "log_head": room.get("log_head")}

    async def proof(self, event: Event, ticket_id: str) -> dict[str, Any]:
        raw = await self.redis.lrange(keys.queue_log(event.event_id), 0, -1)
        entries = [fairness.LogEntry(**json.loads(r)) for r in raw]
        proof = fairness.proof_for(entries, ticket_id)
        if proof is None:
            raise NotFound("this ticket has not been admitted")
        return {"entry": vars(proof.entry), "successors": [vars(e) for e in proof.successors],
                "head": entries[-1].hash}


def _check_ticket(ticket_id: str, claims: tokens.Claims) -> None:
    if claims.subject != ticket_id:
        raise Forbidden("this token is for another ticket")


def _may_have_moved(place: Place | None, stats: RoomStats) -> bool:
    """Look a ticket up again only when its place can have changed: not yet merged, waiting for
    the lottery that has now run, or at the head (admitted)."""
    if place is None:
        return True
    if place.lane is QueueTier.PREQUEUE:
        return stats.lottery_done
    head = stats.presale_head if place.lane is QueueTier.PRESALE else stats.head
    return place.seq < head


def _event_name(state: TicketState) -> str:
    return {TicketState.ADMITTED: "admitted", TicketState.SOLD_OUT: "sold_out",
            TicketState.EXPIRED: "expired"}.get(state, "position")


def _sse(name: str, data: dict[str, Any], event_id: str) -> bytes:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
