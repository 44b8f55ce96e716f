from dataclasses import replace

import pytest

from domain.errors import InvalidRequest, SeatsUnavailable
from domain.holds import Hold, HoldStatus
from domain.inventory import BlockInventory, HoldRequest, SeatStatus
from domain.venue import Block

EVENT = "ev0123456789ab"
NOW = 1_000.0
TTL = 600.0
PRICE = 5_000


def inventory(rows: int = 3, seats_per_row: int = 10, first_row: int = 1) -> BlockInventory:
    block = Block(index=0, section="A", first_row=first_row, last_row=first_row + rows - 1,
                  seats_per_row=seats_per_row)
    return BlockInventory(block, PRICE)


class Planner:
    def __init__(self, inv: BlockInventory) -> None:
        self.inv = inv
        self.n = 0

    def seats(self, *seat_ids: str, user: str = "alice", now: float = NOW) -> Hold:
        return self._plan(HoldRequest(user, seat_ids=seat_ids), now)

    def best(self, quantity: int, user: str = "alice", now: float = NOW) -> Hold:
        return self._plan(HoldRequest(user, quantity=quantity), now)

    def _plan(self, request: HoldRequest, now: float) -> Hold:
        self.n += 1
        return self.inv.plan(request, f"h{self.n}", EVENT, now, TTL)


# -- explicit seats --------------------------------------------------------------------------

def test_an_explicit_hold_takes_exactly_its_seats_at_the_current_price():
    inv = inventory()
    h = Planner(inv).seats("A-2-3", "A-2-4")
    assert h.seat_ids == ("A-2-3", "A-2-4")
    assert (h.total_cents, h.section, h.event_id, h.user_id) == (2 * PRICE, "A", EVENT, "alice")
    assert (h.expires_at, h.status) == (NOW + TTL, HoldStatus.ACTIVE)
    assert inv.status_of("A-2-3") is SeatStatus.HELD
    assert inv.status_of("A-2-5") is SeatStatus.AVAILABLE
    assert inv.seats_available == 28


def test_a_seat_held_by_someone_else_is_seats_unavailable():
    inv = inventory()
    p = Planner(inv)
    p.seats("A-1-1", "A-1-2", user="alice")
    with pytest.raises(SeatsUnavailable, match="A-1-2"):
        p.seats("A-1-2", "A-1-3", user="bob")
    assert inv.status_of("A-1-3") is SeatStatus.AVAILABLE
    assert inv.seats_available == 28
    assert list(inv.holds) == ["h1"]


def test_duplicate_seats_in_one_request_are_refused():
    inv = inventory()
    with pytest.raises(InvalidRequest, match="duplicates"):
        Planner(inv).seats("A-1-1", "A-1-1")
    assert inv.seats_available == 30


@pytest.mark.parametrize("seat", ["B-1-1", "A-4-1", "A-1-11", "A-0-1", "A-1-0", "junk"])
def test_seats_outside_the_block_are_refused(seat):
    inv = inventory()
    with pytest.raises(InvalidRequest):
        Planner(inv).seats("A-1-1", seat)
    assert inv.seats_available == 30


def test_seats_in_rows_before_a_later_block_are_outside_it():
    inv = inventory(rows=3, first_row=4)
    with pytest.raises(InvalidRequest):
        Planner(inv).seats("A-3-1")
    assert Planner(inv).seats("A-4-1").seat_ids == ("A-4-1",)


# -- best available --------------------------------------------------------------------------

def test_best_seats_prefer_adjacent_seats_in_the_front_row_centred():
    assert Planner(inventory()).best(2).seat_ids == ("A-1-5", "A-1-6")
    assert Planner(inventory()).best(3).seat_ids == ("A-1-4", "A-1-5", "A-1-6")
    assert Planner(inventory()).best(10).seat_ids == tuple(f"A-1-{n}" for n in range(1, 11))


def test_best_seats_take_the_most_central_free_run_of_the_front_row():
    inv = inventory()
    p = Planner(inv)
    p.seats("A-1-5", "A-1-6")
    # runs of 2 left in row 1 start at 0..2 and 6..8 (0-based); 2 and 6 tie with the centre 4,
    # and the left one wins
    assert p.best(2).seat_ids == ("A-1-3", "A-1-4")
    assert p.best(2).seat_ids == ("A-1-7", "A-1-8")


def test_best_seats_move_back_a_row_when_the_front_row_has_no_adjacent_run():
    inv = inventory()
    p = Planner(inv)
    p.seats("A-1-3", "A-1-6", "A-1-9")  # row 1 keeps 7 free seats but no 4 side by side
    assert p.best(4).seat_ids == ("A-2-4", "A-2-5", "A-2-6", "A-2-7")


def test_best_seats_skip_a_full_front_row():
    inv = inventory()
    p = Planner(inv)
    p.best(10)
    assert p.best(1).seat_ids == ("A-2-5",)


def test_best_seats_fall_back_to_the_frontmost_scattered_seats_when_no_row_has_a_run():
    inv = inventory(rows=2, seats_per_row=4)
    p = Planner(inv)
    p.seats("A-1-2", "A-2-3")
    h = p.best(3)
    assert h.seat_ids == ("A-1-1", "A-1-3", "A-1-4")
    assert h.total_cents == 3 * PRICE


def test_asking_for_more_seats_than_are_left_is_seats_unavailable():
    inv = inventory(rows=1, seats_per_row=4)
    p = Planner(inv)
    p.best(3)
    with pytest.raises(SeatsUnavailable):
        p.best(2)
    assert p.best(1).seat_ids == ("A-1-4",)
    with pytest.raises(SeatsUnavailable):
        p.best(1)


def test_a_whole_block_can_be_taken_by_best_available():
    inv = inventory(rows=2, seats_per_row=3)
    assert len(Planner(inv).best(6).seat_ids) == 6
    assert inv.seats_available == 0


# -- applying and forgetting -----------------------------------------------------------------

def test_forget_gives_a_plans_seats_back():
    inv = inventory()
    p = Planner(inv)
    h = p.best(2)
    inv.forget(h.hold_id)
    assert inv.seats_available == 30
    assert all(inv.status_of(s) is SeatStatus.AVAILABLE for s in h.seat_ids)
    assert p.best(2).seat_ids == h.seat_ids


def test_forgetting_an_unknown_hold_changes_nothing():
    inv = inventory()
    Planner(inv).best(2)
    inv.forget("nope")
    assert inv.seats_available == 28


def test_putting_a_confirmed_hold_marks_its_seats_sold():
    inv = inventory()
    h = Planner(inv).seats("A-1-1", "A-1-2")
    inv.put(replace(h, status=HoldStatus.CONFIRMING))
    assert inv.status_of("A-1-1") is SeatStatus.HELD
    inv.put(replace(h, status=HoldStatus.CONFIRMED))
    assert inv.status_of("A-1-1") is SeatStatus.SOLD
    assert inv.status_of("A-1-2") is SeatStatus.SOLD
    assert inv.seats_available == 28


@pytest.mark.parametrize("status", [HoldStatus.RELEASED, HoldStatus.EXPIRED])
def test_putting_a_released_or_expired_hold_frees_its_seats(status):
    inv = inventory()
    p = Planner(inv)
    h = p.seats("A-1-5", "A-1-6")
    inv.put(replace(h, status=status))
    assert inv.status_of("A-1-5") is SeatStatus.AVAILABLE
    assert inv.seats_available == 30
    assert h.hold_id not in inv.holds
    assert p.best(2).seat_ids == ("A-1-5", "A-1-6")


def test_a_recovered_confirmed_hold_is_sold_from_the_start():
    inv = inventory()
    sold = Hold("h9", EVENT, "carol", "A", ("A-3-1",), PRICE, NOW + TTL, HoldStatus.CONFIRMED)
    inv.put(sold)
    assert inv.status_of("A-3-1") is SeatStatus.SOLD
    with pytest.raises(SeatsUnavailable):
        Planner(inv).seats("A-3-1")


def test_putting_a_new_hold_on_seats_someone_owns_is_refused_and_changes_nothing():
    inv = inventory()
    Planner(inv).seats("A-1-1")
    other = Hold("h9", EVENT, "bob", "A", ("A-1-2", "A-1-1"), 2 * PRICE, NOW + TTL)
    with pytest.raises(SeatsUnavailable):
        inv.put(other)
    assert inv.status_of("A-1-2") is SeatStatus.AVAILABLE
    assert inv.seats_available == 29
    assert "h9" not in inv.holds


# -- prices and expiry -----------------------------------------------------------------------

def test_reprice_affects_only_new_plans_existing_holds_keep_their_locked_price():
    inv = inventory()
    p = Planner(inv)
    before = p.best(2)
    inv.reprice(9_000)
    after = p.best(2)
    assert inv.holds[before.hold_id].total_cents == 2 * PRICE
    assert after.total_cents == 2 * 9_000


def test_expired_holds_are_the_active_holds_whose_expiry_has_passed():
    inv = inventory()
    p = Planner(inv)
    early = p.best(1, now=NOW)
    late = p.best(1, now=NOW + 100)
    checkout = p.best(1, now=NOW)
    inv.put(replace(checkout, status=HoldStatus.CONFIRMING))
    assert inv.expired_holds(NOW + TTL - 1) == []
    assert inv.expired_holds(NOW + TTL) == [early]
    assert inv.expired_holds(NOW + TTL + 100) == [early, late]


def test_a_hold_back_to_active_after_a_failed_checkout_is_due_again():
    inv = inventory()
    h = Planner(inv).best(1)
    confirming = replace(h, status=HoldStatus.CONFIRMING)
    inv.put(confirming)
    assert inv.expired_holds(NOW + TTL) == []
    inv.put(replace(confirming, status=HoldStatus.ACTIVE))
    assert inv.expired_holds(NOW + TTL) == [h]


def test_forgotten_and_ended_holds_are_never_due():
    inv = inventory()
    p = Planner(inv)
    refused, released, sold = p.best(1), p.best(1), p.best(1)
    inv.forget(refused.hold_id)
    inv.put(replace(released, status=HoldStatus.RELEASED))
    inv.put(replace(sold, status=HoldStatus.CONFIRMED))
    assert inv.expired_holds(NOW + TTL + 1) == []


def test_expired_holds_come_soonest_first_at_most_limit_at_a_time():
    inv = inventory()
    p = Planner(inv)
    holds = [p.best(1, now=NOW + i) for i in (3, 1, 2)]
    assert inv.expired_holds(NOW + TTL + 9, limit=2) == [holds[1], holds[2]]
    inv.forget(holds[1].hold_id)
    assert inv.expired_holds(NOW + TTL + 9) == [holds[2], holds[0]]


def test_recovered_active_holds_are_due_by_their_stored_expiry():
    inv = inventory()
    recovered = Hold("h9", EVENT, "dana", "A", ("A-2-2",), PRICE, NOW + 5)
    inv.put(recovered)
    assert inv.expired_holds(NOW + 4.999) == []
    assert inv.expired_holds(NOW + 5) == [recovered]


def test_many_ended_holds_do_not_grow_the_expiry_queue_without_bound():
    inv = inventory(rows=1, seats_per_row=4)
    p = Planner(inv)
    for _ in range(5_000):
        inv.forget(p.best(4).hold_id)
    assert len(inv._expiry) <= 2 * 1024 + 2
    assert inv.expired_holds(NOW + TTL) == []


def _reference_best(free: list[list[bool]], quantity: int) -> list[tuple[int, int]]:
    """The rule spelled out seat by seat: the frontmost row with a run of `quantity` free seats,
    the run nearest the row centre (left on a tie); else the frontmost free seats."""
    width = len(free[0])
    centre = (width - quantity) / 2
    for row, flags in enumerate(free):
        starts = [s for s in range(width - quantity + 1) if all(flags[s:s + quantity])]
        if starts:
            best = min(starts, key=lambda s: (abs(s - centre), s))
            return [(row, n) for n in range(best, best + quantity)]
    return [(r, n) for r, flags in enumerate(free) for n, f in enumerate(flags) if f][:quantity]


@pytest.mark.parametrize("seed", range(20))
def test_best_seats_match_the_rule_seat_by_seat_on_random_blocks(seed):
    import random

    rng = random.Random(seed)
    rows, width = rng.randint(1, 6), rng.randint(1, 13)
    inv = inventory(rows=rows, seats_per_row=width)
    p = Planner(inv)
    for _ in range(rows * width):
        if rng.random() < 0.3 and inv.holds:
            inv.forget(rng.choice(list(inv.holds)))
            continue
        quantity = rng.randint(1, min(4, width))
        if quantity > inv.seats_available:
            continue
        free = [[inv.status_of(f"A-{r + 1}-{n + 1}") is SeatStatus.AVAILABLE
                 for n in range(width)] for r in range(rows)]
        expected = tuple(f"A-{r + 1}-{n + 1}" for r, n in _reference_best(free, quantity))
        assert p.best(quantity).seat_ids == expected


def test_the_next_expiry_is_the_soonest_active_hold_and_none_without_one():
    inv = inventory()
    p = Planner(inv)
    assert inv.next_expiry() is None
    early, late = p.seats("A-1-1", now=NOW), p.seats("A-1-2", now=NOW + 5)
    assert inv.next_expiry() == NOW + TTL
    inv.put(replace(early, status=HoldStatus.CONFIRMING))  # a checkout is never swept
    assert inv.next_expiry() == NOW + 5 + TTL
    inv.forget(late.hold_id)
    assert inv.next_expiry() is None
