"""An event's seating: sections, seat ids, and how seats are split into seat blocks.

Seat ids are `SECTION-ROW-NUMBER` (rows and numbers from 1). Each section is cut into blocks of
whole rows, at most `block_max_seats` seats each; one actor owns one block, so a hold (which
must stay inside one block) is decided by exactly one owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from domain.errors import InvalidRequest, SeatsNotInOneBlock

# `\Z`, not `$` (which also matches before a trailing newline); ASCII digits only, no leading
# zeros, so each seat has exactly one id (`A-1-01` is not a second name of `A-1-1`).
SECTION_NAME = re.compile(r"^[A-Za-z0-9_]{1,16}\Z")
SEAT_ID = re.compile(r"^([A-Za-z0-9_]{1,16})-([1-9][0-9]{0,5})-([1-9][0-9]{0,5})\Z")
MAX_ROWS = 1000
MAX_SEATS_PER_ROW = 1000
MAX_SEATS_PER_EVENT = 200_000
MAX_SECTIONS = 100
MAX_PRICE_CENTS = 100_000_000


@dataclass(frozen=True)
class Section:
    name: str
    rows: int
    seats_per_row: int
    price_cents: int

    @property
    def seats_total(self) -> int:
        return self.rows * self.seats_per_row


@dataclass(frozen=True)
class Block:
    """Whole rows `first_row..last_row` of one section, owned by one actor."""

    index: int
    section: str
    first_row: int
    last_row: int
    seats_per_row: int

    @property
    def seats_total(self) -> int:
        return (self.last_row - self.first_row + 1) * self.seats_per_row

    def seat_index(self, seat: str) -> int:
        """Position of `seat` in this block (0-based, row-major): its bit in Redis bitmaps."""
        index = self.index_of(seat)
        if index is not None:
            return index
        parsed = parse_seat_id(seat)
        return (parsed.row - self.first_row) * self.seats_per_row + parsed.number - 1

    def index_of(self, seat: str) -> int | None:
        """The index of one of this block's seat ids, else None: a dict lookup, no parsing,
        because the owner maps every seat of every hold on its hot path."""
        return self._indices.get(seat) if isinstance(seat, str) else None

    def seat_at(self, index: int) -> str:
        if 0 <= index < len(self.ids):
            return self.ids[index]
        row, number = divmod(index, self.seats_per_row)
        return seat_id(self.section, self.first_row + row, number + 1)

    def seat_ids(self) -> Iterator[str]:
        return iter(self.ids)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        """Every seat id of the block by index, built once (strings are never rebuilt)."""
        return tuple(seat_id(self.section, row, number)
                     for row in range(self.first_row, self.last_row + 1)
                     for number in range(1, self.seats_per_row + 1))

    @cached_property
    def _indices(self) -> dict[str, int]:
        return {seat: i for i, seat in enumerate(self.ids)}


@dataclass(frozen=True)
class SeatId:
    section: str
    row: int
    number: int


def seat_id(section: str, row: int, number: int) -> str:
    return f"{section}-{row}-{number}"


def parse_seat_id(value: object) -> SeatId:
    match = SEAT_ID.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRequest(f"malformed seat id: {str(value)[:40]!r}")
    section, row, number = match.groups()
    return SeatId(section, int(row), int(number))


@dataclass(frozen=True)
class Venue:
    sections: tuple[Section, ...]
    blocks: tuple[Block, ...]

    @classmethod
    def build(cls, sections: tuple[Section, ...], block_max_seats: int) -> Venue:
        blocks: list[Block] = []
        for section in sections:
            rows_per_block = max(1, block_max_seats // section.seats_per_row)
            for first in range(1, section.rows + 1, rows_per_block):
                last = min(section.rows, first + rows_per_block - 1)
                blocks.append(Block(len(blocks), section.name, first, last, section.seats_per_row))
        return cls(sections, tuple(blocks))

    @property
    def seats_total(self) -> int:
        return sum(s.seats_total for s in self.sections)

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise InvalidRequest(f"no such section: {name[:40]!r}")

    def blocks_of(self, section: str) -> list[Block]:
        return [b for b in self.blocks if b.section == section]

    def block_of(self, seat: SeatId) -> Block:
        section = self.section(seat.section)
        if not (1 <= seat.row <= section.rows and 1 <= seat.number <= section.seats_per_row):
            raise InvalidRequest(f"no such seat: {seat_id(seat.section, seat.row, seat.number)}")
        for block in self.blocks_of(seat.section):
            if block.first_row <= seat.row <= block.last_row:
                return block
        raise AssertionError("every seat of a section lies in one of its blocks")

    def block_for_seats(self, seat_ids: list[str]) -> Block:
        """The one block holding all `seat_ids`; holds never span two owners."""
        blocks = {self.block_of(parse_seat_id(s)).index for s in seat_ids}
        if len(blocks) != 1:
            raise SeatsNotInOneBlock(
                "a hold's seats must lie in one section and block of rows; hold them separately")
        return self.blocks[blocks.pop()]


def parse_sections(raw: object) -> tuple[Section, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SECTIONS:
        raise InvalidRequest(f"sections must be a list of 1 to {MAX_SECTIONS} sections")
    sections = tuple(_parse_section(item) for item in raw)
    if len({s.name for s in sections}) != len(sections):
        raise InvalidRequest("section names must be unique")
    if sum(s.seats_total for s in sections) > MAX_SEATS_PER_EVENT:
        raise InvalidRequest(f"an event has at most {MAX_SEATS_PER_EVENT} seats")
    return sections


def _parse_section(item: object) -> Section:
    if not isinstance(item, dict):
        raise InvalidRequest("each section must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not SECTION_NAME.match(name):
        raise InvalidRequest("section name must be 1-16 letters, digits or underscores")
    return Section(
        name=name,
        rows=_int_in(item.get("rows"), "rows", 1, MAX_ROWS),
        seats_per_row=_int_in(item.get("seats_per_row"), "seats_per_row", 1, MAX_SEATS_PER_ROW),
        price_cents=_int_in(item.get("price_cents"), "price_cents", 0, MAX_PRICE_CENTS),
    )


def _int_in(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}")
    return value
