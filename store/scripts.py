"""The Lua scripts, each registered once, behind wrappers that turn return codes into types.

Each script's header (in `store/lua/`) says what every KEYS and ARGV entry is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from domain.errors import HoldNotActive, StaleOwner
from store import keys
from store.records import epoch_ms


class HoldOutcome(StrEnum):
    OK = "ok"
    TAKEN = "taken"
    LIMIT = "limit"


def load_script(name: str) -> str:
    """A script's source, read once at import by the module that registers it."""
    return resources.files("store").joinpath("lua", name).read_text()


HOLD_BATCH = load_script("hold_batch.lua")
FREE_HOLDS = load_script("free_holds.lua")
TRANSITION = load_script("transition.lua")


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
        self._hold = redis.register_script(HOLD_BATCH)
        self._free = redis.register_script(FREE_HOLDS)
        self._transition = redis.register_script(TRANSITION)

    async def hold_batch(self, holds: list[PlannedHold], max_per_user: int) -> list[HoldOutcome]:
        batch = [[h.token, h.user_id, h.seat_indices, h.record] for h in holds]
        raw = await self._hold(self._keys, [self._epoch, self._block, max_per_user,
                                            json.dumps(batch, separators=(",", ":")),
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
        raw = await self._transition(self._keys, [
            self._epoch, self._block, token, expected, record,
            "sell" if booking is not None else "none", json.dumps(booking or {}),
            self._log_max])
        text = _text(raw)
        if text.startswith("state:"):
            raise HoldNotActive(f"hold is {text[6:] or 'missing'}, expected {expected}")
        _json(raw)

    async def _free_call(self, status: str, now: float, tokens: list[str]) -> list[str]:
        raw = await self._free(self._keys, [self._epoch, self._block, status, epoch_ms(now),
                                            json.dumps(tokens), self._log_max])
        return list(_json(raw))


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _json(raw: Any) -> Any:
    text = _text(raw)
    if text == "stale":
        raise StaleOwner("a newer incarnation owns this block")
    return json.loads(text) if text != "ok" else None
