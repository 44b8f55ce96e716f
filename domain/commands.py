"""Client requests parsed into typed commands; every malformed shape is an InvalidRequest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import Forbidden, InvalidRequest
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
    if "seat_ids" in body:
        if "section" in body or "quantity" in body:
            raise InvalidRequest("give seat_ids, or section and quantity, not both")
        return HoldCommand(seat_ids=_seat_ids(body["seat_ids"], max_quantity))
    section, quantity = body.get("section"), body.get("quantity")
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


def parse_user_id(body: Any) -> str:
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise InvalidRequest("user_id must be 1-128 letters, digits or _.@:-")
    return user_id


def parse_join(body: Any, user_id: str) -> str | None:
    """A join's optional presale code. The joiner is the signed-in user; a body that names
    somebody else is refused (an old client sending its own name is fine)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    claimed = body.get("user_id")
    if claimed is not None and claimed != user_id:
        raise Forbidden("user_id is not the signed-in user")
    return parse_priority_code(body)


def parse_pow(body: Any) -> tuple[str, str] | None:
    """A join's `{"pow": {"challenge", "nonce"}}`, or None when it carries none."""
    value = body.get("pow") if isinstance(body, dict) else None
    if value is None:
        return None
    if (not isinstance(value, dict) or not isinstance(value.get("challenge"), str)
            or not isinstance(value.get("nonce"), str)):
        raise InvalidRequest('pow must be {"challenge": string, "nonce": string}')
    return value["challenge"], value["nonce"]


def parse_priority_code(body: Any) -> str | None:
    """An optional presale code; whether it is valid is the room's business."""
    code = body.get("priority_code") if isinstance(body, dict) else None
    if code is not None and (not isinstance(code, str) or not 1 <= len(code) <= 64):
        raise InvalidRequest("priority_code must be a string of 1 to 64 characters")
    return code


def field(body: Any, name: str) -> Any:
    """One required field of a JSON object body."""
    if not isinstance(body, dict) or name not in body:
        raise InvalidRequest(f"body must be a JSON object with {name}")
    return body[name]


def parse_payment_token(body: Any) -> str:
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    token = body.get("payment_token")
    if not isinstance(token, str) or not 1 <= len(token) <= 200:
        raise InvalidRequest("payment_token must be a non-empty string")
    return token


def parse_idempotency_key(value: str | None) -> str:
    if value is None:
        return ""
    if not IDEMPOTENCY_KEY.match(value):
        raise InvalidRequest("Idempotency-Key must be 1-255 printable ASCII characters")
    return value


def parse_price(body: Any) -> int:
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    price = body.get("price_cents")
    if isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= 100_000_000:
        raise InvalidRequest("price_cents must be an integer from 0 to 100000000")
    return price


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
