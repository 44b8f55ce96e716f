"""The Lua scripts, each registered once, behind wrappers that turn return codes into types.

Each script's header (in `store/lua/`) says what every KEYS and ARGV entry is. The seat
block's three writes (hold, free, transition) are one Redis Functions library,
`store/lua/block.lua`, so they share the epoch guard and the seat-change publish instead of
repeating them: loaded once per Redis (FUNCTION LOAD), named after the hash of its source.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.errors import HoldNotActive, StaleOwner
from store import keys
from store.records import compact_json, epoch_ms


class HoldOutcome(StrEnum):
    OK = "ok"
    TAKEN = "taken"
    LIMIT = "limit"


def load_script(name: str) -> str:
    """A script's source, read once at import by the module that registers it."""
    return resources.files("store").joinpath("lua", name).read_text()


TAKE_EPOCH = load_script("take_epoch.lua")


def block_library(template: str) -> tuple[str, str]:
    """The block library's source with its version in place, and the version: the first 12
    hex digits of the template's SHA-1 (the library and function names carry it)."""
    version = hashlib.sha1(template.encode()).hexdigest()[:12]
    return template.replace("@VERSION@", version), version


BLOCK_LIBRARY, BLOCK_VERSION = block_library(load_script("block.lua"))


def block_function(name: str, version: str = BLOCK_VERSION) -> str:
    """A block function's name in Redis: `hold_batch` -> `ticketing_hold_batch_<version>`."""
    return f"ticketing_{name}_{version}"


async def _fcall(redis: Redis, function: str, keys_: list[str], args: list[Any]) -> Any:
    """FCALL, loading the library first when this Redis does not have it (a new server, an
    empty one after a restart, or one this version never ran on): the call did not run, so
    it is safe to send again."""
    try:
        return await redis.fcall(function, len(keys_), *keys_, *args)
    except ResponseError as exc:
        if "function not found" not in str(exc).lower():
            raise
    await redis.function_load(BLOCK_LIBRARY, replace=True)
    return await redis.fcall(function, len(keys_), *keys_, *args)


async def take_epoch(redis: Redis, key: str, now_ms: int) -> int:
    """A new incarnation's epoch (`take_epoch.lua`): above every epoch taken before, so a
    Redis that lost its epoch keys still fences off incarnations that predate the loss
    (a bare INCR would hand out 1 again)."""
    return int(await redis.eval(TAKE_EPOCH, 1, key, now_ms))


@dataclass(frozen=True)
class Transition:
    """One hold's move to `record`, if it is `expected` now; with a booking, a sale."""

    token: str
    expected: str
    record: str
    booking: dict[str, Any] | None = None


@dataclass(frozen=True)
class PlannedHold:
    token: str
    user_id: str
    seat_indices: list[int]
    record: str


class BlockScripts:
    """The fenced writes of one seat block's owner, at one epoch."""

    def __init__(self, redis: Redis, event_id: str, block: int, epoch: int,
                 seat_log_max: int = 10_000) -> None:
        self._keys = keys.block_script_keys(event_id, block)
        self._block = str(block)
        self._epoch = str(epoch)
        self._log_max = str(seat_log_max)  # cap of the event's seat change stream
        self._redis = redis

    async def hold_batch(self, holds: list[PlannedHold], max_per_user: int) -> list[HoldOutcome]:
        batch = [[h.token, h.user_id, h.seat_indices, h.record] for h in holds]
        raw = await self._call("hold_batch", [max_per_user, json.dumps(batch, separators=(",", ":")),
                                              self._log_max])
        return [HoldOutcome(code) for code in _json(raw)]

    async def release(self, tokens: list[str], now: float) -> list[str]:
        return await self._free_call("released", now, tokens)

    async def expire(self, tokens: list[str], now: float) -> list[str]:
        """Expire holds the owner found due; the script frees only those whose record is still
        active with an expiry <= now, and returns their tokens."""
        return await self._free_call("expired", now, tokens)

    async def transition(self, token: str, expected: str, record: str,
                         booking: dict[str, Any] | None = None) -> None:
        """One hold's transition; raises HoldNotActive when it is not in `expected`."""
        [answer] = await self.transitions([Transition(token, expected, record, booking)])
        if answer is not None:
            raise answer

    async def transitions(self, batch: list[Transition]) -> list[HoldNotActive | None]:
        """Several holds' transitions in one fenced call (a checkout batch): None for each
        applied, HoldNotActive for each whose hold was not in its expected status (that one
        alone is not written). Raises StaleOwner, writing nothing, for a zombie caller."""
        if not batch:
            return []
        raw = await self._call("transition", [compact_json([
            [t.token, t.expected, t.record,
             compact_json(t.booking) if t.booking is not None else ""] for t in batch]),
            self._log_max])
        return [None if answer == "ok" else HoldNotActive(
                    f"hold is {answer[6:] or 'missing'}, expected {t.expected}")
                for t, answer in zip(batch, _json(raw), strict=True)]

    async def _free_call(self, status: str, now: float, tokens: list[str]) -> list[str]:
        raw = await self._call("free_holds", [status, epoch_ms(now), json.dumps(tokens),
                                              self._log_max])
        return list(_json(raw))

    async def _call(self, name: str, args: list[Any]) -> Any:
        """One fenced block function: the caller's epoch and block index first, as all take."""
        return await _fcall(self._redis, block_function(name), self._keys,
                            [self._epoch, self._block, *args])


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _json(raw: Any) -> Any:
    text = _text(raw)
    if text == "stale":
        raise StaleOwner("a newer incarnation owns this block")
    return json.loads(text) if text != "ok" else None
