"""The compact seat-state format ("seatmap-v1"): one definition for the server and the browser.

Why: the seat-id JSON of a 60,000-seat event is 1.3 MB per snapshot, and every connecting
client gets one. Here a seat is 2 bits, a block's uniform stretches are a few bytes, and a
change is a few bytes, so a snapshot fits in 20 KB and a delta in a few bytes per seat.
`web/seatmap.js` decodes exactly this; both are pinned by `tests/fixtures/seatmap_vectors.json`.

* **Status codes**: 0 available, 1 held, 2 sold (3 is never sent).
* **Layout** (`layout(venue)`, once per event, cacheable by its `layout_etag`): the sections
  and the blocks in order; block *k* covers rows `first_row..last_row` of its section, and
  its seat *i* (0-based, row-major) is row `first_row + i // seats_per_row`, number
  `i % seats_per_row + 1` - the same index as the owners' Redis bitmaps.
* **Block states** (one string per block, in block order): a tag and base64 (RFC 4648, padded):
  - `"B"` + base64 of a 2-bit bitmap: seat *i* is in byte `i // 4` at bits
    `7-2*(i%4) .. 6-2*(i%4)` (the first seat in the two most significant bits); pad bits 0.
  - `"R"` + base64 of runs covering the block in order, each one unsigned LEB128 varint
    `(length << 2) | status` (length >= 1).
  The encoder sends whichever is shorter (`B` on a tie), so a block never costs more than
  its bitmap and a uniform block costs a few bytes.
* **Delta runs** (`encode_runs`): base64 of varints, three per run, runs sorted by
  (block, start): `block - previous block`, `start - end of the previous run` when in the same
  block (else `start`), `(length << 2) | status`. Decoding starts at block 0, end 0.

Pure: no IO, no clock, no randomness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from domain.errors import InvalidRequest
from domain.venue import Venue

FORMAT = "seatmap-v1"
STATUS_NAMES = ("available", "held", "sold")
STATUS_CODES = {name: code for code, name in enumerate(STATUS_NAMES)}
AVAILABLE, HELD, SOLD = 0, 1, 2
_RUN = re.compile(rb"\x00+|\x01+|\x02+|\x03+", re.DOTALL)


class CodecError(InvalidRequest):
    """Malformed compact seat data (only ever seen when decoding untrusted input)."""


# -- varints --------------------------------------------------------------------------------
def _varint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varints(data: bytes) -> list[int]:
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise CodecError("varint too long")
        else:
            values.append(value)
            value, shift = 0, 0
    if shift:
        raise CodecError("truncated varint")
    return values


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError("bad base64 in seat data") from exc


# -- block states ---------------------------------------------------------------------------
def pack_bitmap(codes: bytes | bytearray) -> bytes:
    """Seat codes (one byte each, 0..3) packed 4 to a byte, first seat most significant.

    Done with a few big-integer shifts and masks (linear, in C) rather than a Python loop per
    seat, since a 200,000-seat snapshot is packed on the stream path."""
    n = len(codes)
    if n == 0:
        return b""
    padded = bytes(codes) + b"\x00" * (-n % 4)
    units = len(padded) // 4
    x = int.from_bytes(padded, "big")
    x = (x | x >> 6) & int.from_bytes(b"\x00\x0f" * (2 * units), "big")  # 2 seats -> 4 bits
    x = (x | x >> 12) & int.from_bytes(b"\x00\x00\x00\xff" * units, "big")  # 4 seats -> 8 bits
    return x.to_bytes(len(padded), "big")[3::4]


def unpack_bitmap(packed: bytes, seats: int) -> bytes:
    """The inverse of `pack_bitmap` (a plain loop: decoding is for clients and tests)."""
    if len(packed) != (seats + 3) // 4:
        raise CodecError(f"bitmap of {len(packed)} bytes for {seats} seats")
    out = bytearray(seats)
    for i in range(seats):
        out[i] = (packed[i >> 2] >> (6 - 2 * (i & 3))) & 3
    return bytes(out)


def encode_block(codes: bytes | bytearray) -> str:
    """One block's states, as the shorter of its bitmap and its runs."""
    bitmap = "B" + base64.b64encode(pack_bitmap(codes)).decode()
    if 4 * ((_run_count(codes) + 2) // 3) + 1 >= len(bitmap):
        return bitmap  # at least one byte a run: the runs cannot be shorter
    runs = bytearray()
    for match in _RUN.finditer(codes):
        _varint((match.end() - match.start()) << 2 | codes[match.start()], runs)
        if 4 * ((len(runs) + 2) // 3) + 1 >= len(bitmap):
            return bitmap  # the runs can only grow: the bitmap wins (or ties)
    encoded = "R" + base64.b64encode(bytes(runs)).decode()
    return encoded if len(encoded) < len(bitmap) else bitmap


def _run_count(codes: bytes | bytearray) -> int:
    """How many runs `codes` has: 1 + the neighbours that differ (big-integer XOR, in C)."""
    if len(codes) < 2:
        return len(codes)
    x = int.from_bytes(codes, "big")
    changes = (x ^ (x >> 8)).to_bytes(len(codes), "big")[1:]
    return 1 + len(changes) - changes.count(0)


def decode_block(text: str, seats: int) -> bytes:
    """A block's seat codes from its string; CodecError if it does not describe `seats` seats."""
    if not isinstance(text, str) or not text:
        raise CodecError("empty block states")
    tag, data = text[0], _b64decode(text[1:])
    if tag == "B":
        codes = unpack_bitmap(data, seats)
    elif tag == "R":
        out = bytearray()
        for value in _varints(data):
            length = value >> 2
            if length < 1 or len(out) + length > seats:
                raise CodecError("runs do not cover the block")
            out += bytes((value & 3,)) * length
        if len(out) != seats:
            raise CodecError("runs do not cover the block")
        codes = bytes(out)
    else:
        raise CodecError(f"unknown block encoding {tag!r}")
    if any(c > SOLD for c in codes):
        raise CodecError("status code 3 is not used")
    return codes


# -- delta runs -----------------------------------------------------------------------------
def encode_runs(cells: Mapping[tuple[int, int], int]) -> str:
    """Changed seats {(block, index): status} as (block, start, length, status) runs."""
    out = bytearray()
    prev_block, prev_end = 0, 0
    ordered = sorted(cells.items())
    i = 0
    while i < len(ordered):
        (block, start), status = ordered[i]
        length = 1
        while (i + length < len(ordered) and ordered[i + length][0] == (block, start + length)
               and ordered[i + length][1] == status):
            length += 1
        _varint(block - prev_block, out)
        _varint(start - prev_end if block == prev_block else start, out)
        _varint(length << 2 | status, out)
        prev_block, prev_end = block, start + length
        i += length
    return base64.b64encode(bytes(out)).decode()


def decode_runs(text: str) -> list[tuple[int, int, int, int]]:
    """(block, start, length, status) runs of a delta string."""
    values = _varints(_b64decode(text))
    if len(values) % 3:
        raise CodecError("delta runs come in threes")
    runs, block, end = [], 0, 0
    for step, gap, packed in zip(values[0::3], values[1::3], values[2::3], strict=True):
        if step:
            block, end = block + step, 0
        start, length = end + gap, packed >> 2
        if length < 1 or packed & 3 > SOLD:
            raise CodecError("bad run")
        runs.append((block, start, length, packed & 3))
        end = start + length
    return runs


def cells_of(runs: Iterable[tuple[int, int, int, int]]) -> dict[tuple[int, int], int]:
    return {(block, start + k): status
            for block, start, length, status in runs for k in range(length)}


# -- bitmaps from the owners' Redis bitmaps -------------------------------------------------
def codes_from_bitmaps(held: bytes, sold: bytes, seats: int) -> bytearray:
    """One code per seat from the owner's held and sold bitmaps (1 bit a seat, MSB first;
    sold wins, as in `store.catalog.block_statuses`)."""
    out = bytearray(seats)
    for bitmap, code in ((held, HELD), (sold, SOLD)):
        for byte_index, byte in enumerate(bitmap[: (seats + 7) // 8]):
            if byte:
                for bit in range(8):
                    i = byte_index * 8 + bit
                    if byte & (0x80 >> bit) and i < seats:
                        out[i] = code
    return out


# -- the layout -----------------------------------------------------------------------------
def layout(venue: Venue) -> dict[str, Any]:
    """What a client needs once to read block states: sections and blocks in order. No prices
    or counts (those change; they are in the event details), so it is cacheable for good."""
    return {"format": FORMAT,
            "sections": [{"name": s.name, "rows": s.rows, "seats_per_row": s.seats_per_row}
                         for s in venue.sections],
            "blocks": [{"section": b.section, "first_row": b.first_row, "last_row": b.last_row,
                        "seats_per_row": b.seats_per_row} for b in venue.blocks],
            "statuses": list(STATUS_NAMES)}


def layout_body(venue: Venue) -> bytes:
    return json.dumps(layout(venue), separators=(",", ":")).encode()


def etag_of(body: bytes) -> str:
    """A strong ETag from a body's content (same bytes, same tag, on every replica)."""
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match header against our ETag."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)
