"""The waiting room in Redis: its fenced writes (Lua) and the reads every replica serves from.

Per waiting user Redis keeps one list element (`ticket|user|joined_at_ms`) and one place entry
(ticket -> sequence number); lane heads, tails and the measured rate live in one small hash
that replicas read once per tick for all their streams.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from domain.errors import StaleOwner, Unavailable
from domain.waiting.eta import RateSample
from domain.waiting.queue_order import QueueTier
from domain.waiting.status import Admission, Place, RoomStats
from domain.waiting.tickets import Join
from store import keys
from store.codec import text, text_map
from store.scripts import load_script


@dataclass(frozen=True)
class Member:
    ticket_id: str
    user_id: str
    joined_at_ms: int

    def encode(self) -> str:
        return member_text(self.ticket_id, self.user_id, self.joined_at_ms)

    @classmethod
    def decode(cls, raw: str | bytes) -> Member:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ticket, user, joined = text.split("|")
        return cls(ticket, user, int(joined))


def member_text(ticket_id: str, user_id: str, joined_at_ms: int) -> str:
    """A lane element: what the room admits from, and all a replica needs of a user."""
    return f"{ticket_id}|{user_id}|{joined_at_ms}"


ENQUEUE = load_script("enqueue.lua")
LOTTERY = load_script("lottery.lua")
ADMIT = load_script("admit.lua")
RESTORE_ADMISSIONS = load_script("restore_admissions.lua")

LANE_NAMES = {QueueTier.GENERAL: "general", QueueTier.PRESALE: "presale",
              QueueTier.PREQUEUE: "prequeue"}


class RoomScripts:
    """The fenced writes of one event's waiting-room actor, at one epoch."""

    def __init__(self, redis: Redis, event_id: str, epoch: int) -> None:
        self._redis = redis
        self._keys = keys.room_script_keys(event_id)
        self._epoch = str(epoch)
        self._enqueue = redis.register_script(ENQUEUE)
        self._lottery = redis.register_script(LOTTERY)
        self._admit = redis.register_script(ADMIT)
        self._restore = redis.register_script(RESTORE_ADMISSIONS)

    async def enqueue(self, lane: QueueTier, joins: Iterable[Join]) -> int:
        """Append joins, in order, to one lane; returns how many were new."""
        args = [self._epoch, LANE_NAMES[lane]]
        for j in joins:
            args += (j.ticket_id, member_text(j.ticket_id, j.user_id, j.joined_at_ms))
        return int(_checked(await self._enqueue(self._keys, args)))

    async def lottery_chunk(self, start: int, members: list[Member], final: bool,
                            seed_hex: str) -> None:
        result = _checked(await self._lottery(self._keys, [
            self._epoch, start, json.dumps([m.encode() for m in members]),
            "final" if final else "", seed_hex]))
        if result != "ok":
            raise Unavailable(f"lottery out of step: {result}")

    async def admit(self, presale: list[Member], general: list[Member],
                    records: dict[str, Admission], log: list[str], room: dict[str, str]) -> None:
        step = {"presale": [m.encode() for m in presale], "general": [m.encode() for m in general],
                "records": [[t, encode_admission(a)] for t, a in records.items()],
                "log": log, "room": room}
        if _checked(await self._admit(self._keys, [self._epoch, json.dumps(step)])) != "ok":
            raise Unavailable("the lanes changed under the room (conflict)")


    async def restore_admissions(self, step: str) -> int:
        """Put back logged admissions Redis lost (`store.admissions.encode_step`); returns how
        many it restored."""
        return int(_checked(await self._restore(self._keys, [self._epoch, step])))


def _checked(raw: Any) -> Any:
    value = raw.decode() if isinstance(raw, bytes) else raw
    if value == "stale":
        raise StaleOwner("a newer waiting-room incarnation owns this event")
    return value


def encode_admission(admission: Admission) -> str:
    return json.dumps([admission.admitted_at_ms, admission.expires_at_ms, admission.user_id,
                       admission.held], separators=(",", ":"))


def decode_admission(raw: str | bytes) -> Admission:
    admitted_at, expires_at, user, held = json.loads(raw)
    return Admission(admitted_at, expires_at, user, held)


def decode_place(raw: str | bytes | None) -> Place | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text == "q":
        return Place(QueueTier.PREQUEUE)
    if text.startswith("p"):
        return Place(QueueTier.PRESALE, int(text[1:]))
    return Place(QueueTier.GENERAL, int(text))


def decode_stats(raw: Any) -> RoomStats:
    data = text_map(raw)
    return RoomStats(
        head=int(data.get("head", 0)), presale_head=int(data.get("presale_head", 0)),
        presale_tail=int(data.get("presale_tail", 0)), tail=int(data.get("tail", 0)),
        lottery_done=data.get("lottery_done") == "1", sold_out=data.get("sold_out") == "1",
        rate=RateSample(float(data.get("rate_mean", 0)), float(data.get("rate_stdev", 0))))


async def lookup(redis: Redis, event_id: str, ticket_id: str) -> tuple[Place | None,
                                                                       Admission | None]:
    """A ticket's place and admission: two HGETs in one round trip."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.queue_places(event_id), ticket_id)
    pipe.hget(keys.queue_admitted(event_id), ticket_id)
    place, admitted = await pipe.execute()
    return decode_place(place), decode_admission(admitted) if admitted is not None else None


async def room_stats(redis: Redis, event_id: str) -> RoomStats:
    return decode_stats(await redis.hgetall(keys.room(event_id)))


async def room_fields(redis: Redis, event_id: str) -> dict[str, str]:
    return text_map(await redis.hgetall(keys.room(event_id)))


async def lottery_seed(redis: Redis, event_id: str, draw: Callable[[int], bytes]) -> bytes:
    """The event's lottery seed, drawn once (by whoever comes first: the event's creation or
    its room); its sha256 commitment is public from then on, the seed only from on-sale."""
    from domain.waiting import lottery

    fresh = lottery.new_seed(draw)
    await redis.set(keys.lottery_seed(event_id), fresh.hex(), nx=True)
    seed = bytes.fromhex(text(await redis.get(keys.lottery_seed(event_id))))
    await redis.hsetnx(keys.room(event_id), "commitment", lottery.commitment(seed))
    return seed


async def save_persisted_offsets(redis: Redis, event_id: str, offsets: dict[int, int]) -> None:
    """Per joins partition, the last offset whose joins (and all before) are persisted here.
    Stored as the next offset to read, in Redis beside the queue it describes: a Redis that
    loses its last writes loses these with them, so they never claim a lost join."""
    if offsets:
        await redis.hset(keys.queue_offsets(event_id),
                         mapping={str(p): str(o + 1) for p, o in offsets.items()})


async def persisted_offsets(redis: Redis, event_id: str) -> dict[int, int]:
    """Per joins partition, the next offset whose join this Redis has not persisted."""
    raw = text_map(await redis.hgetall(keys.queue_offsets(event_id)))
    return {int(p): int(o) for p, o in raw.items()}
