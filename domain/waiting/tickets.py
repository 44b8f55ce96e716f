"""Ticket states and the only transitions allowed between them.

A ticket is one user's place in one event's queue. Each transition is a function that returns a
new frozen `Ticket` or raises `IllegalTransition`, so a replayed or racing command can never
push a ticket backwards (for example re-admit an expired ticket) without being noticed.

Lifecycle::

    pre_queue --open_queue--> waiting
    pre_queue | waiting --admit--> admitted --expire--> expired
    pre_queue | waiting --mark_sold_out--> sold_out --resume--> waiting

`sold_out` is not final: when expired holds bring seats back, admission resumes and sold-out
tickets wait again. `expired` is final: an admitted user who never held gives the place back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from domain.waiting.errors import IllegalTransition, InvalidParameter


class TicketState(StrEnum):
    PRE_QUEUE = "pre_queue"
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Join:
    """One join as produced to Kafka by the ingress and read back by the waiting room.

    `joined_at_ms` is the NTP-corrected ingress time; `uncertainty_ms` bounds its error
    (|joined_at_ms - true time| <= uncertainty_ms). `clock_synced` is False when no NTP server
    answered, in which case the ingress should report a large uncertainty. `partition` and
    `offset` locate the record in Kafka so offsets are committed only after persistence.
    """

    ticket_id: str
    event_id: str
    user_id: str
    joined_at_ms: int
    uncertainty_ms: int
    clock_synced: bool
    priority_code: str | None
    partition: int
    offset: int


@dataclass(frozen=True)
class Ticket:
    """A ticket's current state; times are the instants of the transitions that set them."""

    ticket_id: str
    state: TicketState
    updated_at_ms: int
    admitted_at_ms: int | None = None
    admission_expires_at_ms: int | None = None
    held_at_ms: int | None = None


def new_ticket(ticket_id: str, joined_at_ms: int, onsale_at_ms: int) -> Ticket:
    """A fresh ticket: `pre_queue` if it joined before on-sale (lottery), else `waiting`."""
    state = TicketState.PRE_QUEUE if joined_at_ms < onsale_at_ms else TicketState.WAITING
    return Ticket(ticket_id=ticket_id, state=state, updated_at_ms=joined_at_ms)


def _require(ticket: Ticket, allowed: tuple[TicketState, ...], target: TicketState) -> None:
    if ticket.state not in allowed:
        raise IllegalTransition(
            f"ticket {ticket.ticket_id}: {ticket.state} -> {target} is not allowed")


def open_queue(ticket: Ticket, now_ms: int) -> Ticket:
    """At on-sale the lottery has placed pre-queue tickets; they now wait like everyone."""
    _require(ticket, (TicketState.PRE_QUEUE,), TicketState.WAITING)
    return replace(ticket, state=TicketState.WAITING, updated_at_ms=now_ms)


def admit(ticket: Ticket, now_ms: int, admission_ttl_ms: int) -> Ticket:
    """Let a queued ticket in; its admission lapses `admission_ttl_ms` later unless used."""
    if admission_ttl_ms <= 0:
        raise InvalidParameter("admission_ttl_ms must be positive")
    _require(ticket, (TicketState.PRE_QUEUE, TicketState.WAITING), TicketState.ADMITTED)
    return replace(ticket, state=TicketState.ADMITTED, updated_at_ms=now_ms,
                   admitted_at_ms=now_ms, admission_expires_at_ms=now_ms + admission_ttl_ms)


def record_hold(ticket: Ticket, now_ms: int) -> Ticket:
    """Note the admitted user's first hold: from now on it no longer counts as an admitted
    user who has not held (which the admission controller reserves a seat for)."""
    _require(ticket, (TicketState.ADMITTED,), TicketState.ADMITTED)
    if ticket.admission_expires_at_ms is not None and now_ms >= ticket.admission_expires_at_ms:
        raise IllegalTransition(f"ticket {ticket.ticket_id}: admission already lapsed")
    if ticket.held_at_ms is not None:
        return ticket
    return replace(ticket, held_at_ms=now_ms, updated_at_ms=now_ms)


def expire(ticket: Ticket, now_ms: int) -> Ticket:
    """End an admission whose TTL has passed; refusing earlier keeps a clock slip from
    cutting a user's admission short."""
    _require(ticket, (TicketState.ADMITTED,), TicketState.EXPIRED)
    assert ticket.admission_expires_at_ms is not None
    if now_ms < ticket.admission_expires_at_ms:
        raise IllegalTransition(
            f"ticket {ticket.ticket_id}: admission valid until {ticket.admission_expires_at_ms}")
    return replace(ticket, state=TicketState.EXPIRED, updated_at_ms=now_ms)


def mark_sold_out(ticket: Ticket, now_ms: int) -> Ticket:
    """Tell a queued ticket there are no seats left (for now)."""
    _require(ticket, (TicketState.PRE_QUEUE, TicketState.WAITING), TicketState.SOLD_OUT)
    return replace(ticket, state=TicketState.SOLD_OUT, updated_at_ms=now_ms)


def resume(ticket: Ticket, now_ms: int) -> Ticket:
    """Seats came back (expired holds): a sold-out ticket waits again, keeping its place,
    which lives in the queue's ordering key, not in the ticket."""
    _require(ticket, (TicketState.SOLD_OUT,), TicketState.WAITING)
    return replace(ticket, state=TicketState.WAITING, updated_at_ms=now_ms)


def gave_place_back(ticket: Ticket) -> bool:
    """True for an admission that lapsed without any hold: its seat reservation is freed."""
    return ticket.state is TicketState.EXPIRED and ticket.held_at_ms is None
