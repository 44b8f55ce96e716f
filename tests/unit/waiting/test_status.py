from domain.waiting.eta import RateSample
from domain.waiting.queue_order import QueueTier
from domain.waiting.status import Admission, Place, RoomStats, view
from domain.waiting.tickets import TicketState

ONSALE = 10_000
OPEN = RoomStats(head=5, tail=50, lottery_done=True, rate=RateSample(10.0, 2.0))


def test_position_is_seq_minus_head_and_the_eta_comes_from_the_measured_rate() -> None:
    ticket = view(Place(QueueTier.GENERAL, 24), None, OPEN, ONSALE, ONSALE + 1)
    assert ticket.state is TicketState.WAITING and ticket.position == 20
    assert ticket.eta.eta_s == 2.0
    assert ticket.eta.eta_low_s is not None and ticket.eta.eta_low_s < 2.0
    assert ticket.eta.eta_high_s is not None and ticket.eta.eta_high_s > 2.0


def test_positions_only_go_down_as_the_head_moves() -> None:
    place = Place(QueueTier.GENERAL, 30)
    views = [view(place, None, RoomStats(head=h, tail=50, lottery_done=True), ONSALE,
                  ONSALE + 1) for h in range(0, 30, 7)]
    positions = [v.position for v in views if v.position is not None]
    assert len(positions) == len(views) and positions == sorted(positions, reverse=True)


def test_presale_holders_lengthen_the_general_eta_but_never_its_positions() -> None:
    busy = RoomStats(head=5, tail=50, presale_tail=10, lottery_done=True,
                     rate=RateSample(10.0, 0.0))
    quiet = view(Place(QueueTier.GENERAL, 24), None, OPEN, ONSALE, ONSALE + 1)
    crowded = view(Place(QueueTier.GENERAL, 24), None, busy, ONSALE, ONSALE + 1)
    assert crowded.position == quiet.position
    assert crowded.eta.eta_s == 3.0


def test_before_the_lottery_a_prequeue_ticket_has_no_position() -> None:
    ticket = view(Place(QueueTier.PREQUEUE), None, RoomStats(), ONSALE, ONSALE - 5)
    assert ticket.state is TicketState.PRE_QUEUE and ticket.position is None


def test_a_join_not_yet_merged_is_waiting_without_a_position_after_onsale() -> None:
    ticket = view(None, None, OPEN, ONSALE, ONSALE + 1)
    assert ticket.state is TicketState.WAITING and ticket.position is None


def test_waiting_users_are_told_sold_out() -> None:
    stats = RoomStats(head=5, tail=50, lottery_done=True, sold_out=True)
    assert view(Place(QueueTier.GENERAL, 9), None, stats, ONSALE, ONSALE + 1).state is (
        TicketState.SOLD_OUT)


def test_an_admission_that_lapsed_without_a_hold_gives_the_place_back() -> None:
    lapsed = Admission(admitted_at_ms=1, expires_at_ms=100, user_id="u")
    assert view(None, lapsed, OPEN, ONSALE, 101).state is TicketState.EXPIRED
    held = Admission(admitted_at_ms=1, expires_at_ms=100, user_id="u", held=True)
    assert view(None, held, OPEN, ONSALE, 101).state is TicketState.ADMITTED
