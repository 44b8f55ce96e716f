"""Typed errors of the waiting-room core.

Each carries a stable string `code` so the HTTP layer can map it to a response without
parsing messages. They derive from a local root for now; the lead re-parents
`WaitingRoomError` under the project's root error later, which changes nothing here.
"""

from __future__ import annotations


class WaitingRoomError(Exception):
    """Root of every waiting-room error."""

    code = "waiting_room_error"


class IllegalTransition(WaitingRoomError):
    """A ticket was asked to move to a state its current state cannot reach."""

    code = "illegal_transition"


class InvalidParameter(WaitingRoomError):
    """A value outside what the rule can work with (negative rate, bad seed, ...)."""

    code = "invalid_parameter"


class OffsetRegression(WaitingRoomError):
    """A new record arrived from a partition at or below an offset already seen there."""

    code = "offset_regression"
