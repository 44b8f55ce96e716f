"""Every failure a client can cause or see is a type with a stable code.

`STATUS` at the end maps each class to its HTTP status: the one table that decides statuses.
The ingress answers with it (serve_app.py) and the OpenAPI document lists with it which
statuses an operation can refuse with (api/openapi.py), so the two cannot disagree.
"""

from __future__ import annotations


class TicketingError(Exception):
    """Root of all errors the platform reports to clients."""

    code = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")


class InvalidRequest(TicketingError):
    code = "invalid_request"


class BodyTooLarge(TicketingError):
    code = "body_too_large"


class Unauthorized(TicketingError):
    code = "unauthorized"


class Forbidden(TicketingError):
    code = "forbidden"


class NotFound(TicketingError):
    code = "not_found"


class SeatsUnavailable(TicketingError):
    code = "seats_unavailable"


class SeatsNotInOneBlock(TicketingError):
    code = "seats_not_in_one_block"


class UserLimitExceeded(TicketingError):
    code = "user_limit_exceeded"


class CardLimitExceeded(TicketingError):
    """The payment instrument already paid for the event's seat cap (per person, not account)."""

    code = "card_limit_exceeded"


class HoldExpired(TicketingError):
    code = "hold_expired"


class HoldNotActive(TicketingError):
    code = "hold_not_active"


class HoldAlreadyConfirmed(TicketingError):
    code = "hold_already_confirmed"


class CheckoutInProgress(TicketingError):
    code = "checkout_in_progress"


class PaymentDeclined(TicketingError):
    code = "payment_declined"


class NotOnSale(TicketingError):
    code = "not_on_sale"


class EventClosed(TicketingError):
    """The event is over and closed: its bookings stay readable, nothing else changes."""

    code = "event_closed"


class ChallengeRequired(TicketingError):
    """The event asks joins for a proof of work, and this join carries no valid solution."""

    code = "challenge_required"


class RateLimited(TicketingError):
    code = "rate_limited"

    def __init__(self, message: str = "", retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(TicketingError):
    """A dependency (actor, Redis, Kafka) did not answer; the client may retry."""

    code = "unavailable"


class StaleOwner(TicketingError):
    """A zombie actor incarnation tried to write after a newer one took over."""

    code = "stale_owner"


STATUS: dict[type[TicketingError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    PaymentDeclined: 402,
    Forbidden: 403,
    NotOnSale: 403,
    NotFound: 404,
    SeatsUnavailable: 409,
    UserLimitExceeded: 409,
    CardLimitExceeded: 409,
    HoldNotActive: 409,
    HoldAlreadyConfirmed: 409,
    CheckoutInProgress: 409,
    EventClosed: 409,
    HoldExpired: 410,
    BodyTooLarge: 413,
    SeatsNotInOneBlock: 422,
    ChallengeRequired: 428,
    RateLimited: 429,
    Unavailable: 503,
    StaleOwner: 503,
}


def status_of(error: type[TicketingError] | TicketingError) -> int:
    """The HTTP status of an error (class or instance): its own class's, else the nearest
    ancestor's in STATUS, else 400 (a client's mistake without a class of its own)."""
    cls = error if isinstance(error, type) else type(error)
    for klass in cls.__mro__:
        if klass in STATUS:
            return STATUS[klass]  # type: ignore[index]
    return 400
