import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.presale import PresaleCode, check_code, find_code, has_uses_left

CODES = (PresaleCode("FANCLUB-2026"), PresaleCode("VIP-7Q3X", max_uses=1))


def test_valid_code_is_accepted():
    assert check_code(CODES, "FANCLUB-2026")
    assert find_code(CODES, "VIP-7Q3X") == CODES[1]


def test_unknown_missing_or_near_miss_codes_are_rejected():
    assert not check_code(CODES, "FANCLUB-2025")
    assert not check_code(CODES, "fanclub-2026")
    assert not check_code(CODES, "FANCLUB-2026 ")
    assert not check_code(CODES, "")
    assert not check_code(CODES, None)
    assert not check_code((), "FANCLUB-2026")


def test_single_use_code_is_spent_after_one_use():
    vip = CODES[1]
    assert has_uses_left(vip, uses_so_far=0)
    assert not has_uses_left(vip, uses_so_far=1)


def test_code_without_cap_is_never_spent():
    assert has_uses_left(CODES[0], uses_so_far=10**9)


def test_empty_code_or_zero_cap_is_refused():
    with pytest.raises(InvalidParameter):
        PresaleCode("")
    with pytest.raises(InvalidParameter):
        PresaleCode("X", max_uses=0)
