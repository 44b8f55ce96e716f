import pytest

from domain.waiting.admission import AdmissionController, seats_left
from domain.waiting.errors import InvalidParameter

PLENTY = 10**6


def test_admissions_follow_the_configured_rate():
    ctl = AdmissionController(rate_per_s=10, now_ms=0)
    admitted = sum(ctl.admit_count(t, PLENTY, PLENTY, 0) for t in range(100, 10_001, 100))
    assert admitted == 100


def test_quiet_time_does_not_bank_more_than_the_burst():
    ctl = AdmissionController(rate_per_s=10, now_ms=0, burst=5)
    assert ctl.admit_count(3_600_000, PLENTY, PLENTY, 0) == 5


def test_never_admits_more_than_are_waiting_and_keeps_unused_tokens():
    ctl = AdmissionController(rate_per_s=10, now_ms=0)
    assert ctl.admit_count(1_000, waiting=3, remaining_seats=PLENTY, outstanding_admitted=0) == 3
    assert ctl.admit_count(1_000, waiting=PLENTY, remaining_seats=PLENTY,
                           outstanding_admitted=0) == 7


def test_a_step_limit_caps_one_step_and_keeps_the_rest_of_the_rate():
    ctl = AdmissionController(rate_per_s=100, now_ms=0)
    assert ctl.admit_count(1_000, PLENTY, PLENTY, 0, limit=30) == 30
    assert ctl.admit_count(1_000, PLENTY, PLENTY, 0, limit=30) == 30
    assert ctl.admit_count(1_000, PLENTY, PLENTY, 0) == 40


def test_admitted_users_who_have_not_held_count_against_remaining_seats():
    ctl = AdmissionController(rate_per_s=100, now_ms=0)
    assert ctl.admit_count(1_000, waiting=50, remaining_seats=30, outstanding_admitted=25) == 5


def test_sold_out_admits_nobody():
    ctl = AdmissionController(rate_per_s=100, now_ms=0)
    assert ctl.admit_count(1_000, waiting=50, remaining_seats=0, outstanding_admitted=0) == 0
    assert ctl.admit_count(1_000, waiting=50, remaining_seats=3, outstanding_admitted=9) == 0


def test_admission_resumes_when_seats_come_back():
    ctl = AdmissionController(rate_per_s=100, now_ms=0)
    assert ctl.admit_count(1_000, 50, remaining_seats=0, outstanding_admitted=0) == 0
    assert ctl.admit_count(1_000, 50, remaining_seats=4, outstanding_admitted=0) == 4


def test_rate_change_applies_from_the_change_on():
    ctl = AdmissionController(rate_per_s=10, now_ms=0, burst=1_000)
    ctl.set_rate(100, now_ms=1_000)  # the first second still accrues at 10/s
    assert ctl.admit_count(2_000, PLENTY, PLENTY, 0) == 110


def test_rate_zero_pauses_admission():
    ctl = AdmissionController(rate_per_s=10, now_ms=0)
    ctl.set_rate(0, now_ms=0)
    assert ctl.admit_count(60_000, PLENTY, PLENTY, 0) == 0


def test_clock_stepping_back_credits_nothing():
    ctl = AdmissionController(rate_per_s=10, now_ms=10_000)
    assert ctl.admit_count(5_000, PLENTY, PLENTY, 0) == 0
    assert ctl.admit_count(10_500, PLENTY, PLENTY, 0) == 5


def test_negative_or_infinite_rates_are_refused():
    with pytest.raises(InvalidParameter):
        AdmissionController(rate_per_s=-1, now_ms=0)
    ctl = AdmissionController(rate_per_s=1, now_ms=0)
    with pytest.raises(InvalidParameter):
        ctl.set_rate(float("inf"), now_ms=0)


def test_seats_left_sums_the_blocks_and_is_unknown_while_a_block_count_is_missing():
    assert seats_left({0: 3, 1: 0, 2: 5}, [0, 1, 2]) == 8
    assert seats_left({0: 0, 1: 0}, [0, 1]) == 0  # sold out
    assert seats_left({0: 3}, [0, 1]) is None  # block 1 not recounted yet (an empty Redis)
    assert seats_left({}, [0]) is None  # not 0: nobody may be told sold_out
