"""Typed errors of the waiting-room core.

They are faults of the platform, not of a client (a bad rate, a rewound consumer), so they are
not `TicketingError`s: if one ever reached HTTP it would be logged and answered as a 500.
"""

from __future__ import annotations


class WaitingRoomError(Exception):
    """Root of every waiting-room error."""

    code = "waiting_room_error"


class InvalidParameter(WaitingRoomError):
    """A value outside what the rule can work with (negative rate, bad seed, ...)."""

    code = "invalid_parameter"


class OffsetRegression(WaitingRoomError):
    """A new record arrived from a partition at or below an offset already seen there."""

    code = "offset_regression"
