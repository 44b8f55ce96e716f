"""The event actor: owns one event's definition, its prices and its waiting room.

It writes the event to Redis (the cache every replica reads), starts the event's seat-block
actors, forwards price changes to the owner of the section, and admits users. Admission is
immediate for now; the waiting room takes over `join` and `status` behind the same calls.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import asdict, dataclass

import ray
from redis.asyncio import Redis

from actors import directory
from domain import tokens
from domain.errors import NotFound
from domain.event import Event
from domain.settings import Settings
from store import catalog, keys


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    user_id: str
    state: str
    joined_at: float


class EventOwner:
    def __init__(self, settings: Settings, event: Event) -> None:
        self._settings = settings
        self._event = event
        self._redis = Redis.from_url(settings.redis_url)
        self._ready = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        if not await catalog.save_event(self._redis, self._event, time.time()):
            self._event = await catalog.load_event(self._redis, self._event.event_id) or self._event
        await asyncio.gather(*[
            directory.seat_block(self._settings, self._event.event_id, b.index).ping.remote()
            for b in self._event.venue.blocks])

    async def ping(self) -> str:
        await self._ready
        return self._event.event_id

    async def set_price(self, section: str, price_cents: int) -> Event:
        """Later holds pay the new price; every existing hold keeps the price it locked."""
        await self._ready
        self._event = self._event.with_price(section, price_cents)
        await self._redis.set(keys.event(self._event.event_id), self._event.to_json())
        await asyncio.gather(*[
            directory.seat_block(self._settings, self._event.event_id, b.index).reprice.remote(
                price_cents) for b in self._event.venue.blocks_of(section)])
        return self._event

    # -- admission (immediate until the waiting room lands) -------------------------------
    async def join(self, user_id: str) -> dict[str, object]:
        """One place per user per event: joining again returns the same ticket."""
        await self._ready
        event_id = self._event.event_id
        ticket = Ticket("tq" + secrets.token_hex(8), user_id, "admitted", time.time())
        if not await self._redis.hsetnx(keys.queue_users(event_id), user_id, ticket.ticket_id):
            ticket = await self._ticket_of_user(user_id)
        else:
            await self._redis.hset(keys.queue_tickets(event_id), ticket.ticket_id,
                                   json.dumps(asdict(ticket)))
        return self._ticket_view(ticket) | {"ticket_token": self._sign(tokens.TICKET, ticket)}

    async def status(self, ticket_id: str, user_id: str) -> dict[str, object]:
        await self._ready
        ticket = await self._ticket(ticket_id)
        if ticket.user_id != user_id:
            raise NotFound("no such ticket")
        view = self._ticket_view(ticket) | {"position": 0, "eta_s": 0}
        if ticket.state == "admitted":
            view["admission_token"] = self._sign(tokens.ADMISSION, ticket)
        return view

    async def _ticket_of_user(self, user_id: str) -> Ticket:
        ticket_id = await self._redis.hget(keys.queue_users(self._event.event_id), user_id)
        if ticket_id is None:
            raise NotFound("no ticket for this user")
        return await self._ticket(ticket_id.decode())

    async def _ticket(self, ticket_id: str) -> Ticket:
        raw = await self._redis.hget(keys.queue_tickets(self._event.event_id), ticket_id)
        if raw is None:
            raise NotFound("no such ticket")
        return Ticket(**json.loads(raw))

    def _ticket_view(self, ticket: Ticket) -> dict[str, object]:
        return {"ticket_id": ticket.ticket_id, "state": ticket.state,
                "joined_at": ticket.joined_at}

    def _sign(self, kind: str, ticket: Ticket) -> str:
        ttl = self._settings.ticket_ttl_s if kind == tokens.TICKET else self._settings.admission_ttl_s
        claims = tokens.Claims(kind, ticket.user_id, self._event.event_id, time.time() + ttl,
                               ticket.ticket_id)
        return tokens.sign(self._settings.token_secret, claims)


EventOwnerActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3,
                             max_concurrency=10_000)(EventOwner)
