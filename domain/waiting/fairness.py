"""Hash-chained admission log, so every user can check where they stood.

Each admission appends an entry whose hash covers the previous entry's hash; publishing the
head hash therefore commits to the whole history, and rewriting any past entry changes every
later hash.

Canonical encoding (so anyone can recompute without this code). The hash of an entry is the
lowercase hex sha256 of the UTF-8 bytes of these six lines joined by a single "\\n" (no
trailing newline)::

    waiting-room-log/v1
    <seq>               decimal, 0 for the first entry, +1 each entry
    <ticket_id>         as is; must not contain "\\n"
    <position>          decimal: the ticket's place in the queue when admitted (1 = front)
    <admitted_at_ms>    decimal epoch milliseconds
    <prev_hash>         the previous entry's hash; 64 "0" characters for the first entry

For example ``printf 'waiting-room-log/v1\\n0\\nt1\\n1\\n1700000000000\\n000...000' | sha256sum``.
Integers carry no sign for non-negatives and no leading zeros (Python `str(int)`).

A proof for one ticket is its entry plus every later entry: recomputing each hash and checking
each `prev_hash` link up to the published head hash shows the entry is in that history. This is
O(entries after it); a chain cannot do better (a Merkle tree could, at more complexity).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from domain.waiting.errors import InvalidParameter

GENESIS_HASH = "0" * 64
LOG_VERSION = "waiting-room-log/v1"


@dataclass(frozen=True)
class LogEntry:
    seq: int
    ticket_id: str
    position: int
    admitted_at_ms: int
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Proof:
    """A ticket's entry and the entries after it, up to the head the verifier trusts."""

    entry: LogEntry
    successors: tuple[LogEntry, ...]


def entry_hash(seq: int, ticket_id: str, position: int, admitted_at_ms: int,
               prev_hash: str) -> str:
    """sha256 of the canonical encoding described in the module docstring."""
    if "\n" in ticket_id:
        raise InvalidParameter("ticket_id must not contain a newline")
    text = "\n".join(
        [LOG_VERSION, str(seq), ticket_id, str(position), str(admitted_at_ms), prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(prev: LogEntry | None, ticket_id: str, position: int,
           admitted_at_ms: int) -> LogEntry:
    """The entry that follows `prev` (None for the first)."""
    seq = 0 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    return LogEntry(seq, ticket_id, position, admitted_at_ms, prev_hash,
                    entry_hash(seq, ticket_id, position, admitted_at_ms, prev_hash))


def _recomputes(entry: LogEntry) -> bool:
    try:
        expected = entry_hash(entry.seq, entry.ticket_id, entry.position,
                              entry.admitted_at_ms, entry.prev_hash)
    except InvalidParameter:
        return False
    return expected == entry.hash


def first_bad_index(entries: Sequence[LogEntry]) -> int | None:
    """Index of the first entry that breaks the chain from genesis, or None if it is intact."""
    prev_hash = GENESIS_HASH
    for i, entry in enumerate(entries):
        if entry.seq != i or entry.prev_hash != prev_hash or not _recomputes(entry):
            return i
        prev_hash = entry.hash
    return None


def verify_chain(entries: Sequence[LogEntry]) -> bool:
    """True when the whole log links back to genesis and every hash recomputes."""
    return first_bad_index(entries) is None


def proof_for(entries: Sequence[LogEntry], ticket_id: str) -> Proof | None:
    """The proof for `ticket_id`'s admission, or None if it was never admitted."""
    for i, entry in enumerate(entries):
        if entry.ticket_id == ticket_id:
            return Proof(entry=entry, successors=tuple(entries[i + 1:]))
    return None


def verify_proof(proof: Proof, head_hash: str) -> bool:
    """Does the proof's entry link, hash by hash, to the published `head_hash`?"""
    chain = (proof.entry, *proof.successors)
    for prev, entry in itertools.pairwise(chain):
        if entry.prev_hash != prev.hash or entry.seq != prev.seq + 1:
            return False
    return all(_recomputes(e) for e in chain) and chain[-1].hash == head_hash
