from dataclasses import replace

import pytest

from domain.errors import (
    CheckoutInProgress,
    Forbidden,
    HoldAlreadyConfirmed,
    HoldExpired,
    HoldNotActive,
)
from domain.holds import (
    Hold,
    HoldStatus,
    abort_checkout,
    begin_checkout,
    check_owner,
    confirm,
    expire,
    expiry_of,
    is_replay,
    release,
)

T0 = 1_000.0
TTL = 600.0


def hold(status: HoldStatus = HoldStatus.ACTIVE, key: str = "") -> Hold:
    return Hold(hold_id="hd.ev0123456789ab.0.0123456789abcdef", event_id="ev0123456789ab",
                user_id="alice", section="A", seat_ids=("A-1-5", "A-1-6"), total_cents=10_000,
                expires_at=T0 + TTL, status=status, idempotency_key=key)


# -- begin_checkout --------------------------------------------------------------------------

def test_begin_checkout_moves_an_active_hold_to_confirming_under_its_key():
    h = begin_checkout(hold(), "key-1", T0 + 1)
    assert h.status is HoldStatus.CONFIRMING
    assert h.idempotency_key == "key-1"
    assert replace(h, status=HoldStatus.ACTIVE, idempotency_key="") == hold()


def test_begin_checkout_of_an_active_hold_past_its_expiry_is_hold_expired():
    with pytest.raises(HoldExpired):
        begin_checkout(hold(), "key-1", T0 + TTL)


def test_begin_checkout_of_an_expired_hold_is_hold_expired():
    with pytest.raises(HoldExpired):
        begin_checkout(hold(HoldStatus.EXPIRED), "key-1", T0 + 1)


def test_begin_checkout_of_a_confirmed_hold_is_hold_already_confirmed():
    with pytest.raises(HoldAlreadyConfirmed):
        begin_checkout(hold(HoldStatus.CONFIRMED, "key-1"), "key-2", T0 + 1)


def test_begin_checkout_of_a_confirmed_hold_is_already_confirmed_even_after_expiry():
    with pytest.raises(HoldAlreadyConfirmed):
        begin_checkout(hold(HoldStatus.CONFIRMED, "key-1"), "key-2", T0 + TTL + 1)


def test_begin_checkout_while_another_checkout_runs_is_checkout_in_progress():
    with pytest.raises(CheckoutInProgress):
        begin_checkout(hold(HoldStatus.CONFIRMING, "key-1"), "key-2", T0 + 1)


def test_begin_checkout_of_a_released_hold_is_hold_not_active():
    with pytest.raises(HoldNotActive):
        begin_checkout(hold(HoldStatus.RELEASED), "key-1", T0 + 1)


# -- replays ---------------------------------------------------------------------------------

def test_the_confirming_key_replays_a_confirmed_hold():
    assert is_replay(hold(HoldStatus.CONFIRMED, "key-1"), "key-1")


def test_another_key_or_no_key_is_not_a_replay():
    confirmed = hold(HoldStatus.CONFIRMED, "key-1")
    assert not is_replay(confirmed, "key-2")
    assert not is_replay(confirmed, "")
    assert not is_replay(hold(HoldStatus.CONFIRMED, ""), "")


@pytest.mark.parametrize("status", [HoldStatus.ACTIVE, HoldStatus.CONFIRMING, HoldStatus.RELEASED,
                                    HoldStatus.EXPIRED])
def test_only_a_confirmed_hold_can_be_replayed(status):
    assert not is_replay(hold(status, "key-1"), "key-1")


# -- abort and confirm -----------------------------------------------------------------------

def test_abort_checkout_returns_a_confirming_hold_to_active_keeping_seats_and_expiry():
    confirming = begin_checkout(hold(), "key-1", T0 + 1)
    h = abort_checkout(confirming)
    assert h.status is HoldStatus.ACTIVE
    assert (h.seat_ids, h.expires_at, h.total_cents) == (("A-1-5", "A-1-6"), T0 + TTL, 10_000)


def test_confirm_moves_a_confirming_hold_to_confirmed_keeping_its_key():
    h = confirm(begin_checkout(hold(), "key-1", T0 + 1))
    assert h.status is HoldStatus.CONFIRMED
    assert is_replay(h, "key-1")


@pytest.mark.parametrize("status", [HoldStatus.ACTIVE, HoldStatus.CONFIRMED, HoldStatus.RELEASED,
                                    HoldStatus.EXPIRED])
def test_abort_and_confirm_need_a_confirming_hold(status):
    with pytest.raises(HoldNotActive):
        abort_checkout(hold(status))
    with pytest.raises(HoldNotActive):
        confirm(hold(status))


# -- release and expire ----------------------------------------------------------------------

def test_release_moves_an_active_hold_to_released():
    assert release(hold(), T0 + 1).status is HoldStatus.RELEASED


def test_release_after_expiry_is_hold_expired():
    with pytest.raises(HoldExpired):
        release(hold(), T0 + TTL)


@pytest.mark.parametrize("status", [HoldStatus.CONFIRMING, HoldStatus.CONFIRMED, HoldStatus.RELEASED])
def test_release_of_a_hold_that_is_not_active_is_hold_not_active(status):
    with pytest.raises(HoldNotActive):
        release(hold(status), T0 + 1)


def test_expire_moves_an_active_hold_past_its_expiry_to_expired():
    assert expire(hold(), T0 + TTL).status is HoldStatus.EXPIRED


def test_expire_before_the_expiry_is_refused():
    with pytest.raises(HoldNotActive):
        expire(hold(), T0 + TTL - 0.001)


@pytest.mark.parametrize("status", [HoldStatus.CONFIRMING, HoldStatus.CONFIRMED, HoldStatus.RELEASED,
                                    HoldStatus.EXPIRED])
def test_only_an_active_hold_can_expire_so_a_checkout_is_never_swept(status):
    with pytest.raises(HoldNotActive):
        expire(hold(status), T0 + TTL + 1)


# -- what clients see ------------------------------------------------------------------------

def test_an_active_hold_is_seen_expired_from_its_expiry_on_swept_or_not():
    assert hold().visible_status(T0 + TTL - 0.001) is HoldStatus.ACTIVE
    assert hold().visible_status(T0 + TTL) is HoldStatus.EXPIRED


@pytest.mark.parametrize("status", [HoldStatus.CONFIRMING, HoldStatus.CONFIRMED, HoldStatus.RELEASED])
def test_holds_that_are_not_active_are_seen_as_they_are_after_expiry(status):
    assert hold(status).visible_status(T0 + TTL + 1) is status


def test_the_holder_passes_the_owner_check():
    check_owner(hold(), "alice")


def test_another_user_is_forbidden_from_a_hold():
    with pytest.raises(Forbidden):
        check_owner(hold(), "bob")


@pytest.mark.parametrize("status", list(HoldStatus))
def test_a_hold_round_trips_through_json(status):
    h = hold(status, "key-1")
    back = Hold.from_json(h.to_json())
    assert back == h
    assert isinstance(back.seat_ids, tuple)
    assert back.status is status


def test_a_holds_expiry_is_kept_to_the_millisecond():
    assert expiry_of(1_000.0, 600) == 1_600.0
    assert expiry_of(1.23456, 1) == 2.235
    assert expiry_of(1.2344, 1) == 2.234


def test_a_hold_decodes_from_bytes():
    assert Hold.from_json(hold().to_json().encode()) == hold()


def test_a_paid_hold_set_back_to_active_resumes_its_checkout_even_past_its_expiry():
    from domain.holds import resume_paid_checkout

    paid = replace(hold(key="k1"), expires_at=1.0)
    resumed = resume_paid_checkout(paid)
    assert resumed.status is HoldStatus.CONFIRMING and resumed.idempotency_key == "k1"
    with pytest.raises(HoldNotActive):
        resume_paid_checkout(resumed)
