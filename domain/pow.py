"""Proof of work at join, per event (as Queue-it offers against bots).

The server issues a challenge: a signed, short-lived token for (user, event) — see
`tokens.CHALLENGE` — so it stores nothing, a solution works for one user only (a bot with
many accounts pays per account), and a challenge cannot be made up. The client finds a nonce
such that SHA-256("<challenge>:<nonce>") starts with `difficulty_bits` zero bits: 2^bits
hashes on average (a browser's Web Worker does ~1M/s with SubtleCrypto at bits 16-20; a bot
farm pays the same per join), checked here with one hash.
"""

from __future__ import annotations

import hashlib
from itertools import count

from domain.errors import InvalidRequest

MAX_DIFFICULTY_BITS = 28
MAX_NONCE_CHARS = 64


def parse_difficulty(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 <= value <= MAX_DIFFICULTY_BITS):
        raise InvalidRequest(f"pow_difficulty must be an integer from 0 (off) to "
                             f"{MAX_DIFFICULTY_BITS} bits")
    return value


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def solves(challenge: str, nonce: str, difficulty_bits: int) -> bool:
    """Whether `nonce` solves `challenge` at `difficulty_bits`."""
    if not 1 <= len(nonce) <= MAX_NONCE_CHARS or not nonce.isascii():
        return False
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return leading_zero_bits(digest) >= difficulty_bits


def solve(challenge: str, difficulty_bits: int) -> str:
    """A solution (what the web client's worker does; tests and the demo use this)."""
    for n in count():
        if solves(challenge, str(n), difficulty_bits):
            return str(n)
    raise AssertionError("unreachable")
