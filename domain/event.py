"""An event as created by an admin: its venue, on-sale time and per-event limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from domain.errors import InvalidRequest
from domain.pow import parse_difficulty
from domain.venue import Section, Venue, parse_sections

MAX_NAME = 200
MAX_HOLD_TTL_S = 3600
MAX_RATE = 100_000
MAX_CODES = 1000


class SaleState(StrEnum):
    """What a fan browsing the events is told of one."""

    UPCOMING = "upcoming"
    ON_SALE = "on_sale"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    onsale_at: float  # epoch seconds
    hold_ttl_s: int
    max_seats_per_user: int
    sections: tuple[Section, ...]
    block_max_seats: int
    admission_rate_per_s: float = 50.0
    presale_codes: tuple[str, ...] = ()
    pow_difficulty: int = 0  # leading zero bits a join's proof of work needs; 0 = none
    ends_at: float | None = None  # epoch seconds; it closes by itself a setting's time after
    closed_at: float | None = None  # set once, by its owner, when it closes

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @cached_property
    def venue(self) -> Venue:
        return Venue.build(self.sections, self.block_max_seats)

    def price_of(self, section: str) -> int:
        return self.venue.section(section).price_cents

    def with_price(self, section: str, price_cents: int) -> Event:
        self.venue.section(section)
        sections = tuple(replace(s, price_cents=price_cents) if s.name == section else s
                         for s in self.sections)
        return replace(self, sections=sections)

    def with_rate(self, admission_rate_per_s: float) -> Event:
        return replace(self, admission_rate_per_s=parse_rate(admission_rate_per_s))

    def sale_state(self, seats_available: int, now: float) -> SaleState:
        """Closed first; before its on-sale it is upcoming whatever is left; then on sale
        until no seat is available (held seats may come back, and the page says so live)."""
        if self.closed:
            return SaleState.CLOSED
        if now < self.onsale_at:
            return SaleState.UPCOMING
        return SaleState.SOLD_OUT if seats_available <= 0 else SaleState.ON_SALE

    @property
    def price_range_cents(self) -> tuple[int, int]:
        prices = [s.price_cents for s in self.sections]
        return min(prices), max(prices)

    def close(self, now: float) -> Event:
        """Closed once: a second close keeps the first time."""
        return self if self.closed else replace(self, closed_at=now)

    def close_due_at(self, close_after_s: float) -> float | None:
        return None if self.ends_at is None else self.ends_at + close_after_s

    def to_json(self) -> str:
        data = {k: v for k, v in vars(self).items() if k not in ("sections", "venue")}
        data["sections"] = [vars(s) for s in self.sections]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        data = json.loads(raw)
        data["sections"] = tuple(Section(**s) for s in data["sections"])
        data["presale_codes"] = tuple(data.get("presale_codes", ()))
        return cls(**data)


def parse_event(body: Any, event_id: str, now: float, default_ttl_s: int,
                default_max_seats: int, block_max_seats: int, max_quantity: int,
                default_rate_per_s: float = 50.0, default_length_s: float = 30 * 86400) -> Event:
    """The event a create request describes, or InvalidRequest saying what is wrong."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise InvalidRequest(f"name must be a non-empty string of at most {MAX_NAME} characters")
    onsale_at = parse_time(body.get("onsale_at"), now)
    ends_at = parse_time(body.get("ends_at"), onsale_at + default_length_s, "ends_at")
    if ends_at < onsale_at:
        raise InvalidRequest("ends_at must not be before onsale_at")
    return Event(
        event_id=event_id, name=name.strip(), onsale_at=onsale_at, ends_at=ends_at,
        hold_ttl_s=_positive(body.get("hold_ttl_s", default_ttl_s), "hold_ttl_s", MAX_HOLD_TTL_S),
        max_seats_per_user=_positive(
            body.get("max_seats_per_user", default_max_seats), "max_seats_per_user", max_quantity),
        sections=parse_sections(body.get("sections")),
        block_max_seats=block_max_seats,
        admission_rate_per_s=parse_rate(body.get("admission_rate_per_s", default_rate_per_s)),
        presale_codes=_codes(body.get("presale_codes", [])),
        pow_difficulty=parse_difficulty(body.get("pow_difficulty", 0)),
    )


def parse_rate(value: object) -> float:
    """Admissions per second: 0 pauses admission."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_RATE:
        raise InvalidRequest(f"admission_rate_per_s must be a number from 0 to {MAX_RATE}")
    return float(value)


def _codes(value: object) -> tuple[str, ...]:
    if (not isinstance(value, list) or len(value) > MAX_CODES
            or not all(isinstance(c, str) and 4 <= len(c) <= 64 for c in value)):
        raise InvalidRequest(f"presale_codes must be a list of at most {MAX_CODES} strings "
                             "of 4 to 64 characters")
    return tuple(value)


MAX_EPOCH_S = 1e11  # year 5138: every time inside [0, MAX_EPOCH_S) prints back as ISO 8601


def parse_time(value: object, default: float, name: str = "onsale_at") -> float:
    """ISO 8601 with a zone, or epoch seconds, within [1970, MAX_EPOCH_S); absent means `default`.

    The range is checked on the epoch value, after the zone is applied: "0001-01-01T00:00+14:00"
    parses, but lies before year 1 in UTC and could never be printed back (it was stored once,
    and every read of the event failed)."""
    if value is None:
        return default
    epoch: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        epoch = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            epoch = parsed.timestamp() if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            epoch = None
    if epoch is None or not 0 <= epoch < MAX_EPOCH_S:  # also refuses NaN
        raise InvalidRequest(f"{name} must be ISO 8601 with a time zone, or epoch seconds, "
                             "between 1970 and 5138")
    return epoch


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def _positive(value: object, name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from 1 to {high}")
    return value
