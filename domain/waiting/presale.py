"""Presale codes: a join with a valid code is admitted before the general queue.

Codes are multi-use with an optional cap: `max_uses=None` means unlimited (a code shared with
a fan club), `max_uses=1` is single-use (a code mailed to one person). One ticket uses a code
at most once, since joining again returns the same ticket; the waiting room counts uses per
code and asks `has_uses_left` before granting the presale tier.

Comparison is constant-time over the whole code list: every code is compared (no early exit)
via `hmac.compare_digest` on sha256 digests, so neither the content nor the length of a guess
changes the timing, and guessing codes by timing gets nowhere. Codes compare exactly (case and
whitespace matter); normalise at the edge if codes are typed by humans.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from domain.waiting.errors import InvalidParameter


@dataclass(frozen=True)
class PresaleCode:
    code: str
    max_uses: int | None = None

    def __post_init__(self) -> None:
        if not self.code:
            raise InvalidParameter("a presale code must not be empty")
        if self.max_uses is not None and self.max_uses < 1:
            raise InvalidParameter("max_uses must be >= 1 or None (unlimited)")


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode("utf-8")).digest()


def find_code(codes: Iterable[PresaleCode], code: str | None) -> PresaleCode | None:
    """The event code matching `code`, compared in constant time against every code."""
    if not code:
        return None
    guess = _digest(code)
    found: PresaleCode | None = None
    for candidate in codes:
        if hmac.compare_digest(_digest(candidate.code), guess):
            found = candidate
    return found


def check_code(codes: Iterable[PresaleCode], code: str | None) -> bool:
    """Is `code` one of the event's presale codes? (Use caps are checked separately.)"""
    return find_code(codes, code) is not None


def has_uses_left(code: PresaleCode, uses_so_far: int) -> bool:
    """May one more ticket use this code?"""
    return code.max_uses is None or uses_so_far < code.max_uses
