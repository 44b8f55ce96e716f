import pytest

from domain.errors import InvalidRequest
from domain.event import MAX_HOLD_TTL_S, Event, iso, parse_event, parse_time
from domain.venue import Section

EVENT = "ev0123456789ab"
NOW = 1_700_000_000.0
SECTIONS = [{"name": "A", "rows": 10, "seats_per_row": 20, "price_cents": 5000},
            {"name": "B", "rows": 2, "seats_per_row": 5, "price_cents": 2500}]


def parse(**body) -> Event:
    body.setdefault("name", "The Show")
    body.setdefault("sections", SECTIONS)
    return parse_event(body, EVENT, NOW, default_ttl_s=600, default_max_seats=6,
                       block_max_seats=100, max_quantity=50)


def test_an_event_takes_defaults_for_what_the_body_leaves_out():
    ev = parse()
    assert ev == Event(event_id=EVENT, name="The Show", onsale_at=NOW, hold_ttl_s=600,
                       max_seats_per_user=6,
                       sections=(Section("A", 10, 20, 5000), Section("B", 2, 5, 2500)),
                       block_max_seats=100, ends_at=NOW + 30 * 86400)
    assert [(b.section, b.first_row, b.last_row) for b in ev.venue.blocks] == [
        ("A", 1, 5), ("A", 6, 10), ("B", 1, 2)]


def test_the_body_overrides_ttl_and_seat_cap():
    ev = parse(hold_ttl_s=120, max_seats_per_user=50)
    assert (ev.hold_ttl_s, ev.max_seats_per_user) == (120, 50)


def test_the_name_is_stripped():
    assert parse(name="  The Show \n").name == "The Show"


@pytest.mark.parametrize("name", [None, 1, "", "   ", "x" * 201, ["x"]])
def test_a_missing_blank_or_long_name_is_refused(name):
    with pytest.raises(InvalidRequest, match="name"):
        parse(name=name)


def test_a_name_of_exactly_the_limit_is_accepted():
    assert parse(name="x" * 200).name == "x" * 200


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-01-01T00:00:00Z", 1_704_067_200.0),
    ("2024-01-01T00:00:00+00:00", 1_704_067_200.0),
    ("2024-01-01T01:00:00+01:00", 1_704_067_200.0),
    ("2024-01-01T00:00:00.500Z", 1_704_067_200.5),
    (1_704_067_200, 1_704_067_200.0),
    (1_704_067_200.25, 1_704_067_200.25),
    (0, 0.0),
])
def test_onsale_at_is_iso_with_a_zone_or_epoch_seconds(value, expected):
    assert parse(onsale_at=value).onsale_at == expected


def test_onsale_at_defaults_to_now():
    assert parse_time(None, NOW) == NOW


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00", "2024-01-01", "tomorrow", "", True, False,
                                   -1, 1e11, float("nan"), float("inf"), [2024], {"t": 1}])
def test_naive_iso_junk_bools_and_out_of_range_epochs_are_refused(value):
    with pytest.raises(InvalidRequest, match="onsale_at"):
        parse(onsale_at=value)


def test_iso_formats_epoch_seconds_in_utc_with_z():
    assert iso(1_704_067_200.0) == "2024-01-01T00:00:00Z"
    assert parse_time(iso(1_704_067_200.5), 0) == 1_704_067_200.5


@pytest.mark.parametrize("ttl", [0, -1, MAX_HOLD_TTL_S + 1, True, 60.0, "60", None])
def test_hold_ttl_must_be_an_integer_from_1_to_the_maximum(ttl):
    with pytest.raises(InvalidRequest, match="hold_ttl_s"):
        parse(hold_ttl_s=ttl)


def test_hold_ttl_bounds_are_inclusive():
    assert parse(hold_ttl_s=1).hold_ttl_s == 1
    assert parse(hold_ttl_s=MAX_HOLD_TTL_S).hold_ttl_s == MAX_HOLD_TTL_S


@pytest.mark.parametrize("cap", [0, -1, 51, True, 6.0, "6"])
def test_the_seat_cap_must_be_an_integer_from_1_to_max_quantity(cap):
    with pytest.raises(InvalidRequest, match="max_seats_per_user"):
        parse(max_seats_per_user=cap)


def test_bad_sections_are_refused():
    with pytest.raises(InvalidRequest):
        parse(sections=[])
    with pytest.raises(InvalidRequest):
        parse(sections=None)


def test_an_event_round_trips_through_json():
    ev = parse(onsale_at=1_704_067_200.25, hold_ttl_s=90)
    assert Event.from_json(ev.to_json()) == ev
    assert Event.from_json(ev.to_json().encode()) == ev


def test_json_leaves_out_the_computed_venue():
    ev = parse()
    assert ev.venue.seats_total == 210
    assert "venue" not in ev.to_json()
    assert Event.from_json(ev.to_json()).venue == ev.venue


def test_with_price_changes_one_sections_price_only():
    ev = parse()
    repriced = ev.with_price("B", 9_999)
    assert repriced.price_of("B") == 9_999
    assert repriced.price_of("A") == 5000
    assert ev.price_of("B") == 2500
    assert repriced.venue.blocks == ev.venue.blocks


def test_with_price_of_an_unknown_section_is_refused():
    with pytest.raises(InvalidRequest):
        parse().with_price("Z", 1)


def test_an_event_ends_when_it_says_and_never_before_its_on_sale():
    assert parse(ends_at=NOW + 3600).ends_at == NOW + 3600
    with pytest.raises(InvalidRequest, match="ends_at"):
        parse(onsale_at=NOW + 100, ends_at=NOW + 50)
    with pytest.raises(InvalidRequest, match="ends_at"):
        parse(ends_at="tomorrow")


def test_an_event_closes_once_and_closes_by_itself_a_setting_after_it_ends():
    ev = parse(ends_at=NOW + 3600)
    assert not ev.closed and ev.close_due_at(86400) == NOW + 3600 + 86400
    closed = ev.close(NOW + 10)
    assert closed.closed and closed.close(NOW + 99).closed_at == NOW + 10
    assert Event.from_json(closed.to_json()) == closed


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                   "1969-12-31T23:59:59Z", float("nan"), float("inf"), 1e300,
                                   "2030-01-01T00:00:00Z" + " " * 80])
def test_onsale_at_that_could_not_be_printed_back_is_refused(value):
    """Year 1 at +14:00 parses, but lies before year 1 in UTC: once stored, every read failed."""
    with pytest.raises(InvalidRequest):
        parse_time(value, NOW)


@pytest.mark.parametrize("body", [[], None, "x", 5, True])
def test_an_event_body_that_is_not_an_object_is_refused(body):
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_event(body, "ev0123456789ab", NOW, 600, 6, 2000, 50)


def test_a_fan_sees_upcoming_before_the_onsale_then_on_sale_then_sold_out_or_closed():
    ev = parse(onsale_at="2023-11-14T22:15:00Z")
    assert ev.sale_state(seats_available=210, now=ev.onsale_at - 1).value == "upcoming"
    assert ev.sale_state(seats_available=0, now=ev.onsale_at - 1).value == "upcoming"
    assert ev.sale_state(seats_available=1, now=ev.onsale_at).value == "on_sale"
    assert ev.sale_state(seats_available=0, now=ev.onsale_at).value == "sold_out"
    assert ev.close(NOW).sale_state(seats_available=210, now=ev.onsale_at).value == "closed"


def test_the_price_range_spans_the_cheapest_and_dearest_section():
    assert parse().price_range_cents == (2500, 5000)
