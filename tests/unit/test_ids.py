import pytest

from domain.errors import NotFound
from domain.ids import (
    HoldRef,
    is_event_id,
    new_event_id,
    new_hold_ref,
    parse_booking_id,
    parse_hold_id,
)

EVENT = "ev0123456789ab"
TOKEN = "0123456789abcdef"


def test_new_event_ids_are_event_ids():
    assert is_event_id(new_event_id())


@pytest.mark.parametrize("value", ["", "ev", "ev0123456789a", "ev0123456789abc", "EV0123456789ab",
                                   "ev0123456789AB", "xx0123456789ab", "ev0123456789ab\n"])
def test_malformed_event_ids_are_not_event_ids(value):
    assert not is_event_id(value)


def test_a_hold_id_names_its_event_block_and_token():
    ref = HoldRef(EVENT, 7, TOKEN)
    assert ref.hold_id == f"hd.{EVENT}.7.{TOKEN}"
    assert ref.booking_id == f"bk.{EVENT}.7.{TOKEN}"


def test_a_hold_id_parses_back_to_its_ref():
    ref = new_hold_ref(EVENT, 12)
    assert parse_hold_id(ref.hold_id) == ref


def test_a_booking_id_parses_back_to_the_ref_of_its_hold():
    ref = new_hold_ref(EVENT, 0)
    assert parse_booking_id(ref.booking_id) == ref
    assert parse_booking_id(ref.booking_id).hold_id == ref.hold_id


def test_new_hold_refs_are_unique():
    assert len({new_hold_ref(EVENT, 0).token for _ in range(100)}) == 100


def test_a_booking_id_is_not_a_hold_id_and_vice_versa():
    ref = HoldRef(EVENT, 1, TOKEN)
    with pytest.raises(NotFound):
        parse_hold_id(ref.booking_id)
    with pytest.raises(NotFound):
        parse_booking_id(ref.hold_id)


@pytest.mark.parametrize("value", [
    "",
    "hd",
    f"hd.{EVENT}.1",
    f"hd.{EVENT}.1.{TOKEN}.x",
    f"hd.ev0123.1.{TOKEN}",
    f"hd.{EVENT}.-1.{TOKEN}",
    f"hd.{EVENT}.x.{TOKEN}",
    f"hd.{EVENT}..{TOKEN}",
    f"hd.{EVENT}.1234567.{TOKEN}",
    f"hd.{EVENT}.1.0123456789ABCDEF",
    f"hd.{EVENT}.1.0123",
    f"hd.{EVENT}.\u00b2.{TOKEN}",
    f"hd.{EVENT}.\u0661.{TOKEN}",
    f"hd.{EVENT}.1.{TOKEN}\n",
])
def test_malformed_hold_ids_are_not_found(value):
    with pytest.raises(NotFound):
        parse_hold_id(value)
