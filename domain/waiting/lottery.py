"""Commit-reveal lottery that orders the pre-queue.

Before on-sale the event publishes `commitment(seed)`; at on-sale it reveals `seed` and the
list of pre-queue ticket ids. Anyone can then check `verify(seed, commitment)` and recompute
`lottery_order(seed, ticket_ids)`. Because the commitment is published before the list is
closed, the operator cannot pick a seed after seeing who joined.

The order sorts tickets by key(t) = sha256(seed || utf8(ticket_id)), ties (never seen in
practice) broken by ticket_id. The seed is a fixed 32 bytes, so the concatenation is
unambiguous. Why this is a uniform permutation: modelling sha256 as a random function, the
keys of distinct ticket ids under a secret, uniformly random seed are independent and uniform
over 2^256 values, and sorting independent identically distributed keys yields every
permutation with equal probability (by symmetry; ties occur with probability < n^2 / 2^257).
Why it is independent of join order: the key depends only on the seed and the ticket id, never
on a ticket's position in the input list or its join time, so joining early inside the
pre-queue window gives no advantage.

Limitation (documented, not solved here): the operator knows the seed before on-sale and could
mint ticket ids that sort well; mixing in public randomness revealed after the pre-queue
closes (a beacon) would remove that, at the cost of an external dependency.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

from domain.waiting.errors import InvalidParameter

SEED_BYTES = 32


def new_seed(rng_bytes: Callable[[int], bytes]) -> bytes:
    """A fresh seed from an injected source of random bytes (production: `secrets.token_bytes`
    or `os.urandom`; tests: a seeded generator). Refuses a short read."""
    seed = rng_bytes(SEED_BYTES)
    if len(seed) != SEED_BYTES:
        raise InvalidParameter(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
    return bytes(seed)


def commitment(seed: bytes) -> str:
    """Hex sha256 of the seed, published before on-sale; hides the seed (256 bits of entropy)
    while binding the operator to it."""
    _check_seed(seed)
    return hashlib.sha256(seed).hexdigest()


def verify(seed: bytes, commitment_hex: str) -> bool:
    """Does the revealed seed match the published commitment?"""
    if len(seed) != SEED_BYTES:
        return False
    return hmac.compare_digest(hashlib.sha256(seed).hexdigest(), commitment_hex.lower())


def lottery_key(seed: bytes, ticket_id: str) -> bytes:
    """The sort key of one ticket: sha256(seed || utf8(ticket_id))."""
    return hashlib.sha256(seed + ticket_id.encode("utf-8")).digest()


def lottery_order(seed: bytes, ticket_ids: Iterable[str]) -> list[str]:
    """The pre-queue in lottery order (first admitted first). Duplicate ids are refused since
    a published list with duplicates could not be recomputed unambiguously."""
    _check_seed(seed)
    ids = list(ticket_ids)
    if len(set(ids)) != len(ids):
        raise InvalidParameter("ticket_ids contains duplicates")
    return sorted(ids, key=lambda t: (lottery_key(seed, t), t))


def lottery_ranks(seed: bytes, ticket_ids: Iterable[str]) -> dict[str, int]:
    """Rank (0 = first) of each ticket in the lottery order, (its place in the pre-queue lane)."""
    return {t: rank for rank, t in enumerate(lottery_order(seed, ticket_ids))}


def _check_seed(seed: bytes) -> None:
    if len(seed) != SEED_BYTES:
        raise InvalidParameter(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
