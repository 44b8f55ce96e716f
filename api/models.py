"""The HTTP API's request and response models (msgspec Structs): one definition per shape.

Each request body, query string and answer of the API is a Struct here. The same Struct
checks a request (`decode`: the body's types and bounds, before any handler logic) and
describes it in the OpenAPI document (`api/openapi.py`), so the document and the checks cannot
drift. msgspec over pydantic by benchmarks/bench_models.py (results/bench_models.json): on the
hot bodies it decodes and encodes several times faster, in microseconds either way.

What a type cannot say stays in `domain/`: rules that depend on settings (the per-user seat
cap), on the stored event (a section that exists) or on several fields (seat ids or section and
quantity, never both). Patterns are the JSON Schema (ECMA 262) form; the domain's own checks
still anchor with `\\Z`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from domain.commands import LIST_LIMIT_MAX
from domain.errors import InvalidRequest
from domain.event import MAX_CODES, MAX_HOLD_TTL_S, MAX_NAME, MAX_RATE
from domain.pow import MAX_DIFFICULTY_BITS
from domain.venue import MAX_PRICE_CENTS, MAX_ROWS, MAX_SEATS_PER_ROW, MAX_SECTIONS

T = TypeVar("T")

SECTION_PATTERN = "^[A-Za-z0-9_]{1,16}$"
SEAT_PATTERN = "^[A-Za-z0-9_]{1,16}-[1-9][0-9]{0,5}-[1-9][0-9]{0,5}$"
USER_PATTERN = "^[A-Za-z0-9_.@:-]{1,128}$"
IDEMPOTENCY_PATTERN = "^[\\x21-\\x7e]{1,255}$"
EVENT_ID_PATTERN = "^ev[0-9a-f]{12}$"
TICKET_ID_PATTERN = "^tq[0-9a-f]{16}$"
HOLD_ID_PATTERN = "^hd\\.ev[0-9a-f]{12}\\.[0-9]{1,6}\\.[0-9a-f]{16}$"
BOOKING_ID_PATTERN = "^bk\\.ev[0-9a-f]{12}\\.[0-9]{1,6}\\.[0-9a-f]{16}$"
MAX_QUANTITY_DOC = 100  # the schema's cap; the stack's own `max_quantity` may be lower

SectionName = Annotated[str, Meta(pattern=SECTION_PATTERN, description="1-16 letters, digits or _")]
SeatId = Annotated[str, Meta(pattern=SEAT_PATTERN, description="section-row-number, e.g. A-2-3")]
Instant = Annotated[str | float, Meta(
    description="ISO 8601 with a time zone, or epoch seconds; between 1970 and 5138")]


# -- requests ------------------------------------------------------------------------------

class SectionIn(Struct, forbid_unknown_fields=False):
    name: SectionName
    rows: Annotated[int, Meta(ge=1, le=MAX_ROWS)]
    seats_per_row: Annotated[int, Meta(ge=1, le=MAX_SEATS_PER_ROW)]
    price_cents: Annotated[int, Meta(ge=0, le=MAX_PRICE_CENTS)]


class EventCreate(Struct, forbid_unknown_fields=False):
    """POST /v1/events. Section names are unique and an event has at most 200,000 seats
    (domain/venue.py); onsale_at defaults to now, ends_at to 30 days after it."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    sections: Annotated[list[SectionIn], Meta(min_length=1, max_length=MAX_SECTIONS)]
    onsale_at: Instant | None = None
    ends_at: Instant | None = None
    hold_ttl_s: Annotated[int, Meta(ge=1, le=MAX_HOLD_TTL_S)] | None = None
    max_seats_per_user: Annotated[int, Meta(ge=1, le=MAX_QUANTITY_DOC)] | None = None
    admission_rate_per_s: Annotated[float, Meta(ge=0, le=MAX_RATE)] | None = None
    presale_codes: Annotated[list[Annotated[str, Meta(min_length=4, max_length=64)]],
                             Meta(max_length=MAX_CODES)] | None = None
    pow_difficulty: Annotated[int, Meta(ge=0, le=MAX_DIFFICULTY_BITS)] | None = None


class EventPatch(Struct, forbid_unknown_fields=False):
    """PATCH /v1/events/{id}: the admission rate, live (0 pauses admission)."""

    admission_rate_per_s: Annotated[float, Meta(ge=0, le=MAX_RATE)]


class PriceChange(Struct, forbid_unknown_fields=False):
    price_cents: Annotated[int, Meta(ge=0, le=MAX_PRICE_CENTS)]


class Pow(Struct, forbid_unknown_fields=False):
    """A solved proof-of-work challenge (GET .../queue/challenge)."""

    challenge: str
    nonce: str


class JoinRequest(Struct, forbid_unknown_fields=False):
    """POST /v1/events/{id}/queue (an empty body is `{}`). The joiner is the signed-in user: a
    user_id naming somebody else is a 403."""

    user_id: str | None = None
    priority_code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    pow: Pow | None = None


class HoldRequest(Struct, forbid_unknown_fields=False):
    """POST /v1/events/{id}/holds: seat_ids, or section and quantity, never both."""

    seat_ids: Annotated[list[SeatId], Meta(min_length=1, max_length=MAX_QUANTITY_DOC)] | None = None
    section: SectionName | None = None
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY_DOC)] | None = None


class CheckoutRequest(Struct, forbid_unknown_fields=False):
    payment_token: Annotated[str, Meta(min_length=1, max_length=200, description=(
        "the payment provider's token; tok_visa pays, tok_chargeDeclined is declined"))]


class DevTokenRequest(Struct, forbid_unknown_fields=False):
    user_id: Annotated[str, Meta(pattern=USER_PATTERN)]


# -- query strings (documented one parameter a field; parsed by the handlers) --------------

class ListQuery(Struct):
    limit: Annotated[int, Meta(ge=1, le=LIST_LIMIT_MAX)] | Literal[""] = 50  # "": the default


class SeatsQuery(Struct):
    section: Annotated[str, Meta(pattern="^([A-Za-z0-9_]{1,16})?$",
                                 description="one section's seats (empty: all)")] | None = None
    format: Literal["json", "compact"] = "json"


class StreamQuery(Struct):
    format: Literal["json", "compact"] = "json"
    last_event_id: Annotated[str, Meta(description=(
        "the seat version last seen, for clients that cannot send Last-Event-ID; junk or a "
        "version too old means a fresh snapshot"))] | None = None


class QueueStreamQuery(Struct):
    token: Annotated[str, Meta(description="the ticket token (EventSource cannot send headers)")]


# -- answers -------------------------------------------------------------------------------

class ErrorDetail(Struct):
    code: Annotated[str, Meta(description="stable, from domain/errors.py")]
    message: str


class Error(Struct):
    """Every refusal: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class SectionView(Struct):
    name: str
    rows: int
    seats_per_row: int
    price_cents: int
    seats_available: int


class EventView(Struct):
    event_id: str
    name: str
    onsale_at: str
    state: Literal["upcoming", "on_sale", "sold_out", "closed"]
    price_min_cents: int
    price_max_cents: int
    ends_at: str | None
    closed_at: str | None
    hold_ttl_s: int
    max_seats_per_user: int
    admission_rate_per_s: float
    pow_difficulty: int
    seats_total: int
    seats_available: int
    sections: list[SectionView]


class EventList(Struct):
    events: list[EventView]


class SeatView(Struct):
    seat_id: str
    section: str
    row: int
    number: int
    price_cents: int
    status: Literal["available", "held", "sold"]


class SeatMap(Struct):
    """format=json: every seat (of the section) with its price and status."""

    event_id: str
    seats: list[SeatView]


class CompactSeatMap(Struct):
    """format=compact: seatmap-v1 block states (see SeatmapV1)."""

    event_id: str
    version: int
    format: Literal["seatmap-v1"]
    layout: str
    first_block: int
    blocks: list[str]


class LayoutSection(Struct):
    name: str
    rows: int
    seats_per_row: int


class LayoutBlock(Struct):
    section: str
    first_row: int
    last_row: int
    seats_per_row: int


class Layout(Struct):
    format: Literal["seatmap-v1"]
    sections: list[LayoutSection]
    blocks: list[LayoutBlock]
    statuses: list[str]


TicketStateName = Literal["pre_queue", "waiting", "admitted", "sold_out", "expired"]


class Ticket(Struct):
    """A join's answer: the ticket and the token its status is read with."""

    ticket_id: str
    ticket_token: str
    state: TicketStateName
    joined_at: str
    clock_synced: bool
    clock_uncertainty_ms: float


class QueueStatus(Struct):
    ticket_id: str
    state: TicketStateName
    position: int | None
    eta_s: float | None
    eta_low_s: float | None
    eta_high_s: float | None
    admission_token: Annotated[str | None, Meta(
        description="once admitted: the bearer token of holds and checkout")]
    admission_expires_at: str | None = None


class Challenge(Struct):
    challenge: str
    difficulty: int
    expires_in_s: float


class QueueStats(Struct):
    waiting: int
    pre_queue: int
    admitted: int
    admission_rate_per_s: float
    measured_rate_per_s: float
    oldest_wait_s: float
    sold_out: bool


class Fairness(Struct):
    commitment: str | None
    seed: str | None
    lottery_done: bool
    prequeue_ticket_ids: list[str]
    log_length: int
    log_head: str | None


class Proof(Struct):
    entry: dict[str, Any]
    successors: list[dict[str, Any]]
    head: str


class HoldView(Struct):
    hold_id: str
    event_id: str
    status: Literal["active", "confirming", "confirmed", "released", "expired"]
    seat_ids: list[str]
    section: str
    total_cents: int
    expires_at: str
    expires_in_s: float


class Booking(Struct):
    booking_id: str
    hold_id: str
    event_id: str
    block: int
    user_id: str
    seat_ids: list[str]
    total_cents: int
    status: Literal["confirmed"]
    confirmed_at: float


class JwkSet(Struct):
    keys: list[dict[str, Any]]


class DevToken(Struct):
    token: str
    user_id: str
    expires_in_s: float


class Health(Struct):
    status: Literal["ok", "degraded"]
    checks: dict[str, bool]


class SeatEvent(Struct):
    """One server-sent event of the availability stream: `data` is JSON, a snapshot
    {"version","seats"} (or seatmap-v1's {"version","format","layout","blocks"}), a delta
    {"version","seats"} (or {"version","runs"}), or an error; `id` is the seat version."""

    event: Literal["snapshot", "delta", "error"]
    data: str
    id: str | None = None


class QueueEvent(Struct):
    """One server-sent event of a ticket's stream: `data` is JSON of a QueueStatus."""

    event: Literal["position", "admitted", "sold_out", "expired"]
    data: str
    id: str | None = None


class ConsoleErrors(Struct):
    """Error answers of this replica for the event since it started, by what they mean."""

    server: Annotated[int, Meta(description="5xx: the platform failing")]
    rate_limited: Annotated[int, Meta(description="429: fans turned away by the rate limits")]
    refused: Annotated[int, Meta(description="other 4xx: seats taken, bad input, no token")]


class ConsoleSection(Struct):
    name: str
    price_cents: int
    seats_total: int


class ConsoleSnapshot(Struct):
    """An event's live numbers at `at` (epoch seconds), as the operator console shows them."""

    at: float
    event_id: str
    name: str
    closed: bool
    waiting: Annotated[int, Meta(description="in the queue and the pre-queue, not yet admitted")]
    pre_queue: int
    admitted: Annotated[int, Meta(description="admitted since the on-sale began")]
    admission_rate_per_s: Annotated[float, Meta(description="the rate set (PATCH the event)")]
    admitted_per_s: Annotated[float, Meta(description="admissions/s measured over 10 s")]
    seats_total: int
    seats_held: Annotated[int, Meta(description="seats in live holds")]
    seats_sold: int
    seats_available: int
    revenue_cents: Annotated[int, Meta(description="paid for the confirmed bookings")]
    sold_per_s: Annotated[float, Meta(description="seats sold per second over 10 s")]
    sellout_in_s: Annotated[float | None, Meta(description=(
        "seconds to sell out at the last minute's pace; 0 sold out, null no sales in it"))]
    position_lag_s: Annotated[float | None, Meta(description=(
        "room publication to fans' positions on this replica's streams; null when none"))]
    errors: ConsoleErrors
    sections: list[ConsoleSection]


class ConsoleHistory(Struct):
    snapshots: list[ConsoleSnapshot]


class ConsoleEvent(Struct):
    """One server-sent event of the operator console's stream: `data` is JSON, a
    ConsoleHistory (`history`, first), a ConsoleSnapshot (`snapshot`, every second) or an
    ErrorDetail (`error`, a second whose numbers could not be read)."""

    event: Literal["history", "snapshot", "error"]
    data: str
    id: str | None = None


# -- decoding ------------------------------------------------------------------------------

_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def decode(body: bytes, model: type[T]) -> T:
    """The body as `model`, or InvalidRequest saying what is wrong (never a 500: bad UTF-8,
    NaN, 50,000 nested brackets and wrong types are all the client's mistake)."""
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    try:
        body.decode("utf-8")  # JSON is UTF-8 (RFC 8259), also in fields the model ignores
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest("body is not valid JSON") from exc
    except RecursionError as exc:
        raise InvalidRequest("body is nested too deeply") from exc


def loads(body: bytes) -> Any:
    """The body as plain JSON values (after `decode` checked its shape)."""
    return json.loads(body)


_ENCODER = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """An answer's JSON bytes (Structs, dicts and lists alike)."""
    return _ENCODER.encode(value)
