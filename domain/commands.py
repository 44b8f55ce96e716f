"""Client requests' rules past their types, as typed commands; every violation is an
InvalidRequest. The types and bounds of bodies are the models' (api/models.py), checked first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidRequest
from domain.venue import SECTION_NAME, parse_seat_id

USER_ID = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}\Z")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")


@dataclass(frozen=True)
class HoldCommand:
    seat_ids: tuple[str, ...] = ()
    section: str = ""
    quantity: int = 0


def parse_hold(body: Any, max_quantity: int) -> HoldCommand:
    """`{"seat_ids": [...]}` or `{"section", "quantity"}`, never both."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return hold_command(body.get("seat_ids"), body.get("section"), body.get("quantity"),
                        max_quantity, "seat_ids" in body)


def hold_command(seat_ids: Any, section: Any, quantity: Any, max_quantity: int,
                 seats_given: bool = False) -> HoldCommand:
    """The rules of a hold request past its types (api/models.HoldRequest checks those): seat
    ids, or section and quantity, never both; at most `max_quantity` seats (a setting)."""
    if seats_given or seat_ids is not None:
        if section is not None or quantity is not None:
            raise InvalidRequest("give seat_ids, or section and quantity, not both")
        return HoldCommand(seat_ids=_seat_ids(seat_ids, max_quantity))
    if not isinstance(section, str) or not SECTION_NAME.match(section):
        raise InvalidRequest("section must be a section name (or give seat_ids)")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= max_quantity:
        raise InvalidRequest(f"quantity must be an integer from 1 to {max_quantity}")
    return HoldCommand(section=section, quantity=quantity)


def _seat_ids(value: Any, max_quantity: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= max_quantity:
        raise InvalidRequest(f"seat_ids must be a list of 1 to {max_quantity} seat ids")
    for seat in value:
        parse_seat_id(seat)
    if len(set(value)) != len(value):
        raise InvalidRequest("seat_ids contains duplicates")
    return tuple(value)


def check_user_id(user_id: str) -> str:
    """A user id of 1-128 letters, digits or _.@:-, anchored with \\Z: the model's pattern is
    ECMA's, whose `$` Python's re also reads as "before a final newline"."""
    if not USER_ID.match(user_id):
        raise InvalidRequest("user_id must be 1-128 letters, digits or _.@:-")
    return user_id


def parse_idempotency_key(value: str | None) -> str:
    if value is None:
        return ""
    if not IDEMPOTENCY_KEY.match(value):
        raise InvalidRequest("Idempotency-Key must be 1-255 printable ASCII characters")
    return value


LIST_LIMIT_MAX = 100


def parse_limit(raw: str | None, default: int = 50) -> int:
    """A list's `limit` query parameter: 1 to LIST_LIMIT_MAX, `default` when absent."""
    if raw is None or raw == "":
        return default
    # ASCII digits only: str.isdigit() takes "²", which int() refuses
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not (
            1 <= int(raw) <= LIST_LIMIT_MAX):
        raise InvalidRequest(f"limit must be an integer from 1 to {LIST_LIMIT_MAX}")
    return int(raw)
