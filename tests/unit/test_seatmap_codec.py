"""The compact seat-state format: round trips, edges, and the vectors web/seatmap.js checks too."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from domain.seatmap_codec import (
    FORMAT,
    STATUS_NAMES,
    CodecError,
    cells_of,
    codes_from_bitmaps,
    decode_block,
    decode_runs,
    encode_block,
    encode_runs,
    etag_matches,
    layout,
    layout_body,
    pack_bitmap,
    unpack_bitmap,
)
from domain.venue import Section, Venue

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "seatmap_vectors.json").read_text())


def codes(text: str) -> bytes:
    return bytes(int(c) for c in text)


@pytest.mark.parametrize("vector", VECTORS["blocks"], ids=lambda v: v["name"])
def test_every_block_vector_encodes_to_its_pinned_string_and_back(vector) -> None:
    assert encode_block(codes(vector["codes"])) == vector["encoded"]
    assert decode_block(vector["encoded"], vector["seats"]) == codes(vector["codes"])


@pytest.mark.parametrize("vector", VECTORS["deltas"], ids=lambda v: v["name"])
def test_every_delta_vector_encodes_to_its_pinned_runs_and_back(vector) -> None:
    cells = {(b, i): s for b, i, s in vector["cells"]}
    assert encode_runs(cells) == vector["encoded"]
    runs = decode_runs(vector["encoded"])
    assert [list(r) for r in runs] == vector["runs"]
    assert cells_of(runs) == cells


def test_the_venue_vector_decodes_to_its_seat_map_before_and_after_the_delta() -> None:
    vector = VECTORS["venues"][0]
    venue = Venue.build((Section("A", 2, 3, 5000), Section("B", 3, 2, 2500)), 4)
    assert layout(venue) == vector["layout"]
    seats = {}
    for block, text in zip(venue.blocks, vector["blocks"], strict=True):
        for i, code in enumerate(decode_block(text, block.seats_total)):
            seats[block.seat_at(i)] = STATUS_NAMES[code]
    assert seats == vector["seats"]
    for (b, i), code in cells_of(decode_runs(vector["delta"])).items():
        seats[venue.blocks[b].seat_at(i)] = STATUS_NAMES[code]
    assert seats == vector["seats_after_delta"]


def test_a_hand_worked_block_puts_the_first_seat_in_the_top_two_bits() -> None:
    # available, held, sold, available | held: 00 01 10 00 | 01 00 00 00 = 0x18 0x40
    assert pack_bitmap(codes("01201")) == b"\x18\x40"
    assert encode_block(codes("01201")) == "B" + base64.b64encode(b"\x18\x40").decode()


@pytest.mark.parametrize("seats", [1, 2, 3, 4, 5, 7, 8, 99, 100, 101, 5000, 20_001])
def test_random_blocks_of_every_size_round_trip_with_every_status(seats) -> None:
    rng = random.Random(seats)
    for weights in ((1, 1, 1), (50, 1, 1), (1, 1, 50), (1, 0, 0), (0, 0, 1)):
        block = bytes(rng.choices((0, 1, 2), weights, k=seats))
        assert decode_block(encode_block(block), seats) == block
        assert unpack_bitmap(pack_bitmap(block), seats) == block


def test_the_first_and_last_seat_of_a_block_are_kept_apart_from_their_neighbours() -> None:
    for seats in (4, 5, 6, 7, 5000):
        for status in (1, 2):
            block = bytearray(seats)
            block[0] = block[-1] = status
            assert decode_block(encode_block(bytes(block)), seats) == block
            delta = {(3, 0): status, (3, seats - 1): status}
            assert cells_of(decode_runs(encode_runs(delta))) == delta


def test_an_empty_or_full_block_costs_a_few_bytes_and_a_mixed_one_at_most_its_bitmap() -> None:
    for status in (0, 1, 2):
        assert len(encode_block(bytes([status]) * 20_000)) <= 5
    mixed = bytes(random.Random(3).choices((0, 1, 2), k=60_000))
    assert len(encode_block(mixed)) == 1 + 4 * ((15_000 + 2) // 3)  # the bitmap, not longer


def test_a_block_with_no_seats_round_trips() -> None:
    assert decode_block(encode_block(b""), 0) == b""


def test_a_delta_of_isolated_seats_costs_under_ten_bytes_a_seat() -> None:
    rng = random.Random(7)
    cells = {(rng.randrange(12), rng.randrange(5000)): rng.randrange(3) for _ in range(20)}
    assert len(encode_runs(cells)) / len(cells) < 10


def test_adjacent_seats_with_one_status_become_one_run() -> None:
    assert decode_runs(encode_runs({(2, k): 1 for k in range(10, 16)})) == [(2, 10, 6, 1)]


def test_owner_bitmaps_become_codes_with_sold_winning_over_held() -> None:
    held, sold = bytes([0b1100_0000, 0b0000_0001]), bytes([0b0100_0000, 0, 0b1000_0000])
    out = codes_from_bitmaps(held, sold, 17)
    assert out[0] == 1 and out[1] == 2 and out[15] == 1 and out[16] == 2
    assert sum(out) == 6


@pytest.mark.parametrize("text, seats", [
    ("", 3), ("X", 3), ("B!!", 3), ("BAA==", 9), ("RBA==", 3), ("R" + "gA==", 1),
    ("B/w==", 4), ("RBw==", 1)])
def test_malformed_block_states_are_refused_with_a_codec_error(text, seats) -> None:
    with pytest.raises(CodecError):
        decode_block(text, seats)


@pytest.mark.parametrize("text", ["AAA", "AAAA//8=", "!!"])
def test_malformed_delta_runs_are_refused_with_a_codec_error(text) -> None:
    with pytest.raises(CodecError):
        decode_runs(text)


def test_the_layout_names_its_format_and_its_etag_follows_its_bytes() -> None:
    venue = Venue.build((Section("A", 50, 100, 5000),), 2000)
    assert layout(venue)["format"] == FORMAT == VECTORS["format"]
    assert len(layout(venue)["blocks"]) == 3
    assert layout_body(venue) == layout_body(Venue.build((Section("A", 50, 100, 1),), 2000))


def test_if_none_match_accepts_lists_weak_tags_and_star() -> None:
    assert etag_matches('"a", W/"b"', '"b"') and etag_matches("*", '"x"')
    assert not etag_matches('"a"', '"b"') and not etag_matches(None, '"b"')
