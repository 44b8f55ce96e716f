import hashlib
from dataclasses import replace

import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.fairness import (
    GENESIS_HASH,
    append,
    first_bad_index,
    proof_for,
    verify_chain,
    verify_proof,
)


def build(n: int):
    entries = []
    prev = None
    for i in range(n):
        prev = append(prev, f"t{i}", position=i + 1, admitted_at_ms=1_000 + i)
        entries.append(prev)
    return entries


def test_first_entry_links_to_genesis_and_the_next_to_it():
    a, b = build(2)
    assert a.seq == 0 and a.prev_hash == GENESIS_HASH
    assert b.seq == 1 and b.prev_hash == a.hash


def test_hash_is_recomputable_from_the_documented_encoding():
    entry = append(None, "t-42", position=7, admitted_at_ms=1_700_000_000_000)
    text = "waiting-room-log/v1\n0\nt-42\n7\n1700000000000\n" + "0" * 64
    assert entry.hash == hashlib.sha256(text.encode()).hexdigest()


def test_intact_chain_verifies():
    assert verify_chain(build(5))
    assert verify_chain([])


def test_edited_entry_is_detected_at_its_index():
    entries = build(5)
    entries[2] = replace(entries[2], position=1)
    assert not verify_chain(entries)
    assert first_bad_index(entries) == 2


def test_rehashed_edit_breaks_the_next_link():
    entries = build(5)
    forged = append(entries[1], "intruder", position=3, admitted_at_ms=1_002)
    entries[2] = forged
    assert first_bad_index(entries) == 3


def test_dropped_or_reordered_entries_are_detected():
    entries = build(5)
    assert first_bad_index(entries[:2] + entries[3:]) == 2
    assert first_bad_index([entries[1], entries[0]]) == 0


def test_proof_links_a_ticket_to_the_published_head():
    entries = build(6)
    proof = proof_for(entries, "t2")
    assert proof is not None and proof.entry == entries[2]
    assert verify_proof(proof, head_hash=entries[-1].hash)
    assert not verify_proof(proof, head_hash=entries[-2].hash)


def test_proof_with_a_tampered_position_fails():
    entries = build(6)
    proof = proof_for(entries, "t2")
    assert proof is not None
    assert not verify_proof(replace(proof, entry=replace(proof.entry, position=1)),
                            entries[-1].hash)


def test_proof_for_the_head_itself_needs_no_successors():
    entries = build(3)
    proof = proof_for(entries, "t2")
    assert proof is not None and proof.successors == ()
    assert verify_proof(proof, entries[-1].hash)


def test_unknown_ticket_has_no_proof():
    assert proof_for(build(3), "nobody") is None


def test_ticket_ids_with_newlines_are_refused():
    with pytest.raises(InvalidParameter):
        append(None, "t\n1", position=1, admitted_at_ms=0)
