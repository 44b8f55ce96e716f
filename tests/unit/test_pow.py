"""Proof of work: one hash to check, 2^bits on average to find."""

import hashlib

import pytest

from domain.errors import InvalidRequest
from domain.pow import leading_zero_bits, parse_difficulty, solve, solves


def test_leading_zero_bits_counts_bits_not_bytes():
    assert leading_zero_bits(b"\x00\x00\x01") == 23
    assert leading_zero_bits(b"\x80") == 0
    assert leading_zero_bits(b"\x00\x0f") == 12
    assert leading_zero_bits(b"\x00\x00") == 16


def test_a_found_nonce_solves_its_challenge_at_its_difficulty_only():
    nonce = solve("challenge-a", 12)
    digest = hashlib.sha256(f"challenge-a:{nonce}".encode()).digest()
    assert leading_zero_bits(digest) >= 12 and solves("challenge-a", nonce, 12)
    assert not solves("challenge-b", nonce, 12) or solve("challenge-b", 12) == nonce


@pytest.mark.parametrize("nonce", ["", "x" * 65, "é"])
def test_empty_long_or_non_ascii_nonces_never_solve(nonce):
    assert not solves("c", nonce, 0)


@pytest.mark.parametrize("value", [-1, 29, 1.5, True, "8", None])
def test_difficulty_is_an_integer_from_0_to_28(value):
    with pytest.raises(InvalidRequest, match="pow_difficulty"):
        parse_difficulty(value)
