import pytest

from domain.waiting.errors import IllegalTransition, InvalidParameter, WaitingRoomError
from domain.waiting.tickets import (
    TicketState,
    admit,
    expire,
    gave_place_back,
    mark_sold_out,
    new_ticket,
    open_queue,
    record_hold,
    resume,
)

ONSALE_MS = 10_000


def waiting_ticket():
    return new_ticket("t1", joined_at_ms=ONSALE_MS + 5, onsale_at_ms=ONSALE_MS)


def test_states_are_lowercase_strings():
    assert [s.value for s in TicketState] == [
        "pre_queue", "waiting", "admitted", "sold_out", "expired"]
    assert TicketState.SOLD_OUT == "sold_out"


def test_joins_before_onsale_start_in_pre_queue_and_after_in_waiting():
    assert new_ticket("a", ONSALE_MS - 1, ONSALE_MS).state is TicketState.PRE_QUEUE
    assert new_ticket("b", ONSALE_MS, ONSALE_MS).state is TicketState.WAITING


def test_pre_queue_opens_into_waiting_once():
    ticket = open_queue(new_ticket("a", 1, ONSALE_MS), ONSALE_MS)
    assert ticket.state is TicketState.WAITING
    with pytest.raises(IllegalTransition):
        open_queue(ticket, ONSALE_MS)


def test_admission_sets_its_expiry_from_the_ttl():
    ticket = admit(waiting_ticket(), now_ms=20_000, admission_ttl_ms=1_800_000)
    assert ticket.state is TicketState.ADMITTED
    assert ticket.admitted_at_ms == 20_000
    assert ticket.admission_expires_at_ms == 1_820_000


def test_admitted_ticket_cannot_be_admitted_again():
    ticket = admit(waiting_ticket(), 20_000, 1_000)
    with pytest.raises(IllegalTransition) as err:
        admit(ticket, 20_001, 1_000)
    assert err.value.code == "illegal_transition"
    assert isinstance(err.value, WaitingRoomError)


def test_admission_ttl_must_be_positive():
    with pytest.raises(InvalidParameter):
        admit(waiting_ticket(), 20_000, 0)


def test_admission_cannot_expire_before_its_ttl():
    ticket = admit(waiting_ticket(), 20_000, 1_000)
    with pytest.raises(IllegalTransition):
        expire(ticket, 20_999)
    assert expire(ticket, 21_000).state is TicketState.EXPIRED


def test_expired_ticket_is_final():
    expired = expire(admit(waiting_ticket(), 20_000, 1_000), 21_000)
    for transition in (open_queue, mark_sold_out, resume):
        with pytest.raises(IllegalTransition):
            transition(expired, 22_000)
    with pytest.raises(IllegalTransition):
        admit(expired, 22_000, 1_000)


def test_only_waiting_tickets_are_told_sold_out():
    sold_out = mark_sold_out(waiting_ticket(), 20_000)
    assert sold_out.state is TicketState.SOLD_OUT
    with pytest.raises(IllegalTransition):
        mark_sold_out(admit(waiting_ticket(), 20_000, 1_000), 20_001)


def test_sold_out_ticket_waits_again_when_seats_come_back():
    ticket = resume(mark_sold_out(waiting_ticket(), 20_000), 30_000)
    assert ticket.state is TicketState.WAITING
    assert admit(ticket, 30_001, 1_000).state is TicketState.ADMITTED


def test_sold_out_ticket_cannot_be_admitted_before_resuming():
    with pytest.raises(IllegalTransition):
        admit(mark_sold_out(waiting_ticket(), 20_000), 20_001, 1_000)


def test_admission_that_lapses_without_a_hold_gives_the_place_back():
    lapsed = expire(admit(waiting_ticket(), 20_000, 1_000), 21_000)
    assert gave_place_back(lapsed)


def test_admission_that_held_does_not_give_the_place_back():
    held = record_hold(admit(waiting_ticket(), 20_000, 1_000), 20_500)
    assert held.held_at_ms == 20_500
    assert record_hold(held, 20_600).held_at_ms == 20_500  # first hold counts
    assert not gave_place_back(expire(held, 21_000))


def test_hold_after_admission_lapsed_is_refused():
    with pytest.raises(IllegalTransition):
        record_hold(admit(waiting_ticket(), 20_000, 1_000), 21_000)
