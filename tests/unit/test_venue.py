import pytest

from domain.errors import InvalidRequest, SeatsNotInOneBlock
from domain.venue import (
    MAX_SEATS_PER_EVENT,
    MAX_SECTIONS,
    Block,
    SeatId,
    Section,
    Venue,
    parse_seat_id,
    parse_sections,
    seat_id,
)


def section(name: str = "A", rows: int = 10, seats_per_row: int = 20, price_cents: int = 5000) -> dict:
    return {"name": name, "rows": rows, "seats_per_row": seats_per_row, "price_cents": price_cents}


def venue(block_max_seats: int = 100) -> Venue:
    return Venue.build((Section("A", 10, 20, 5000), Section("B", 3, 7, 2500)), block_max_seats)


# -- seat ids -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("A-1-1", SeatId("A", 1, 1)),
    ("floor_2-12-345", SeatId("floor_2", 12, 345)),
    ("B7-1000-1000", SeatId("B7", 1000, 1000)),
])
def test_well_formed_seat_ids_parse_into_section_row_and_number(value, expected):
    assert parse_seat_id(value) == expected
    assert seat_id(expected.section, expected.row, expected.number) == value


@pytest.mark.parametrize("value", [
    None, 1, b"A-1-1", ["A-1-1"], "", "A", "A-1", "A-1-1-1", "-1-1", "A--1", "A-1-", "A-x-1",
    "A-1-x", "A-+1-1", "A- 1-1", "A-1.0-1", "A b-1-1", "ABCDEFGHIJKLMNOPQ-1-1", "A-0-1", "A-1-0",
    "A-01-1", "A-1-01", "A-\u00b2-1", "A-\u0661-1", "A\n-1-1", "A-1-1\n", "A-" + "9" * 5000 + "-1",
])
def test_malformed_seat_ids_are_invalid_requests(value):
    with pytest.raises(InvalidRequest):
        parse_seat_id(value)


# -- blocks ----------------------------------------------------------------------------------

def test_blocks_are_whole_rows_of_at_most_block_max_seats():
    v = venue(block_max_seats=100)
    a_blocks = v.blocks_of("A")
    assert [(b.first_row, b.last_row) for b in a_blocks] == [(1, 5), (6, 10)]
    assert all(b.seats_total <= 100 and b.seats_total % b.seats_per_row == 0 for b in v.blocks)


def test_a_short_last_block_takes_the_remaining_rows():
    v = Venue.build((Section("A", 10, 20, 1),), block_max_seats=60)
    assert [(b.first_row, b.last_row) for b in v.blocks] == [(1, 3), (4, 6), (7, 9), (10, 10)]


def test_blocks_cover_every_seat_exactly_once_with_consecutive_indices():
    v = venue(block_max_seats=50)
    assert [b.index for b in v.blocks] == list(range(len(v.blocks)))
    seats = [s for b in v.blocks for s in b.seat_ids()]
    assert len(seats) == len(set(seats)) == v.seats_total == 10 * 20 + 3 * 7


def test_blocks_never_mix_sections():
    v = venue(block_max_seats=1000)
    assert [(b.section, b.first_row, b.last_row) for b in v.blocks] == [("A", 1, 10), ("B", 1, 3)]


def test_a_row_wider_than_block_max_seats_still_gets_a_block_of_its_own():
    v = Venue.build((Section("A", 2, 30, 1),), block_max_seats=10)
    assert [(b.first_row, b.last_row) for b in v.blocks] == [(1, 1), (2, 2)]


def test_seat_index_and_seat_at_round_trip_row_major():
    block = Block(index=4, section="A", first_row=6, last_row=10, seats_per_row=20)
    assert block.seat_index("A-6-1") == 0
    assert block.seat_index("A-6-20") == 19
    assert block.seat_index("A-7-1") == 20
    for i, seat in enumerate(block.seat_ids()):
        assert block.seat_index(seat) == i
        assert block.seat_at(i) == seat
    assert i == block.seats_total - 1 == 99


# -- finding a seat's block -----------------------------------------------------------------

def test_seats_of_one_block_find_that_block():
    v = venue(block_max_seats=100)
    assert v.block_for_seats(["A-6-1", "A-10-20"]) == v.blocks_of("A")[1]


def test_seats_across_two_blocks_of_a_section_are_refused():
    v = venue(block_max_seats=100)
    with pytest.raises(SeatsNotInOneBlock):
        v.block_for_seats(["A-5-20", "A-6-1"])


def test_seats_across_two_sections_are_refused():
    v = venue(block_max_seats=1000)
    with pytest.raises(SeatsNotInOneBlock):
        v.block_for_seats(["A-1-1", "B-1-1"])


@pytest.mark.parametrize("seat", ["A-11-1", "A-1-21", "B-4-1", "B-1-8", "C-1-1", "nonsense"])
def test_unknown_seats_and_sections_are_invalid_requests(seat):
    with pytest.raises(InvalidRequest):
        venue().block_for_seats(["A-1-1", seat])


def test_looking_up_an_unknown_section_is_an_invalid_request():
    with pytest.raises(InvalidRequest):
        venue().section("Z")


# -- parsing sections ----------------------------------------------------------------------

def test_sections_parse_into_typed_sections():
    assert parse_sections([section("A"), section("B", 2, 3, 0)]) == (
        Section("A", 10, 20, 5000), Section("B", 2, 3, 0))


@pytest.mark.parametrize("raw", [None, {}, "A", [], [section(str(i)) for i in range(MAX_SECTIONS + 1)]])
def test_sections_must_be_a_list_of_one_to_max_sections(raw):
    with pytest.raises(InvalidRequest):
        parse_sections(raw)


def test_duplicate_section_names_are_refused():
    with pytest.raises(InvalidRequest, match="unique"):
        parse_sections([section("A"), section("A", rows=1)])


def test_more_than_the_event_seat_limit_is_refused():
    per_section = 1000 * 100
    count = MAX_SEATS_PER_EVENT // per_section + 1
    with pytest.raises(InvalidRequest, match="at most"):
        parse_sections([section(f"S{i}", 1000, 100) for i in range(count)])


def test_exactly_the_event_seat_limit_is_accepted():
    count = MAX_SEATS_PER_EVENT // (1000 * 100)
    assert len(parse_sections([section(f"S{i}", 1000, 100) for i in range(count)])) == count


@pytest.mark.parametrize("name", [None, 1, "", "A-B", "A B", "ABCDEFGHIJKLMNOPQ", "A\n", "é"])
def test_bad_section_names_are_refused(name):
    with pytest.raises(InvalidRequest):
        parse_sections([section(name)])


def test_a_section_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest):
        parse_sections([["A", 1, 1, 1]])


@pytest.mark.parametrize("field", ["rows", "seats_per_row", "price_cents"])
@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, -1, "3", None, 10**9])
def test_section_numbers_must_be_plain_integers_in_range(field, value):
    with pytest.raises(InvalidRequest, match=field):
        parse_sections([{**section(), field: value}])


@pytest.mark.parametrize(("field", "value"), [("rows", 0), ("seats_per_row", 0), ("rows", 1001),
                                              ("seats_per_row", 1001), ("price_cents", 100_000_001)])
def test_section_numbers_outside_their_bounds_are_refused(field, value):
    with pytest.raises(InvalidRequest, match=field):
        parse_sections([{**section(), field: value}])


def test_a_free_section_is_allowed():
    assert parse_sections([section(price_cents=0)])[0].price_cents == 0
