import json

import pytest

from domain.availability import (
    Change,
    Coalescer,
    History,
    SeatBoard,
    VersionGap,
    change_of,
    delta_message,
    parse_last_event_id,
    retry_hint,
    snapshot_message,
    sse,
)
from domain.errors import InvalidRequest
from domain.venue import Block

BLOCK = Block(index=2, section="B", first_row=3, last_row=4, seats_per_row=5)


def test_a_recorded_change_names_seats_by_id_from_their_block_indices():
    change = change_of(7, BLOCK, "held", "0,6")
    assert change == Change(7, {"B-3-1": "held", "B-4-2": "held"}, {(2, 0): 1, (2, 6): 1})


def test_an_unknown_status_in_the_log_is_refused():
    with pytest.raises(InvalidRequest):
        change_of(1, BLOCK, "exploded", "0")


def test_the_board_applies_changes_in_order_and_skips_ones_it_has():
    board = SeatBoard({"B-3-1": "available"}, 4)
    assert board.apply(Change(5, {"B-3-1": "held"})) is True
    assert board.apply(Change(5, {"B-3-1": "sold"})) is False
    assert (board.version, board.statuses["B-3-1"]) == (5, "held")


def test_a_skipped_version_is_a_gap_that_forces_a_reload():
    with pytest.raises(VersionGap):
        SeatBoard({}, 4).apply(Change(6, {}))


def test_changes_within_one_window_become_one_delta_where_the_last_status_wins():
    window = Coalescer(since=10)
    window.add(Change(11, {"A-1-1": "held", "A-1-2": "held"}))
    window.add(Change(12, {"A-1-1": "available"}))
    delta = window.take()
    assert delta is not None
    assert (delta.since, delta.version) == (10, 12)
    assert delta.seats == {"A-1-1": "available", "A-1-2": "held"}
    assert window.take() is None and window.since == 12


def _history() -> History:
    history = History(max_seats=100)
    history.add(_delta(10, 12, {"A-1-1": "held"}))
    history.add(_delta(12, 15, {"A-1-2": "sold", "A-1-1": "available"}))
    return history


def _delta(since: int, version: int, seats: dict[str, str]):
    window = Coalescer(since)
    window.add(Change(version, seats))
    return window.take()


def test_a_reconnect_resumes_with_one_merged_delta_of_what_it_missed():
    resumed = _history().resume(last_seen=11, current=15)
    assert resumed is not None
    assert resumed.version == 15
    assert resumed.seats == {"A-1-1": "available", "A-1-2": "sold"}


def test_a_client_that_is_up_to_date_gets_an_empty_delta():
    up_to_date = _history().resume(15, 15)
    assert up_to_date is not None and up_to_date.seats == {}
    not_yet_sent = _history().resume(16, 17)  # 16..17 are not sent yet; they will be
    assert not_yet_sent is not None and not_yet_sent.seats == {}


def test_a_reconnect_too_old_for_the_history_gets_a_snapshot():
    assert _history().resume(9, 15) is None


def test_a_version_newer_than_the_log_gets_a_snapshot():
    assert _history().resume(99, 15) is None


def test_the_history_forgets_its_oldest_deltas_beyond_its_bound():
    history = History(max_seats=2)
    history.add(_delta(0, 1, {"A-1-1": "held"}))
    history.add(_delta(1, 2, {"A-1-2": "held", "A-1-3": "held"}))
    assert history.resume(0, 2) is None
    kept = history.resume(1, 2)
    assert kept is not None and kept.seats == {"A-1-2": "held", "A-1-3": "held"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("42", 42), (" 7 ", 7), (None, None), ("", None), ("-1", None), ("1e3", None),
    ("٣", None), ("9" * 19, None)])
def test_last_event_id_is_a_plain_bounded_number(raw, expected):
    assert parse_last_event_id(raw) == expected


def test_messages_carry_the_version_as_their_sse_id():
    board = SeatBoard({"A-1-1": "held"}, 3)
    text = snapshot_message(board, {"source": "primary"}).decode()
    assert text.startswith("id: 3\nevent: snapshot\ndata: ")
    assert text.endswith("\n\n")
    assert json.loads(text.split("data: ", 1)[1]) == {
        "version": 3, "seats": {"A-1-1": "held"}, "source": "primary"}
    delta = delta_message(_delta(3, 4, {"A-1-1": "sold"})).decode()
    assert delta == 'id: 4\nevent: delta\ndata: {"version":4,"seats":{"A-1-1":"sold"}}\n\n'
    assert sse("error", {"code": "x"}) == b'event: error\ndata: {"code":"x"}\n\n'


def test_the_reconnect_delay_is_spread_between_one_and_three_times_the_base():
    assert retry_hint(0.0) == b"retry: 1000\n\n"
    assert retry_hint(0.5) == b"retry: 2000\n\n"
    assert retry_hint(1.0) == b"retry: 3000\n\n"
    assert retry_hint(7.0) == b"retry: 3000\n\n"


def test_a_compact_board_re_encodes_only_the_block_a_change_touched():
    from domain.seatmap_codec import decode_block

    board = SeatBoard({}, 0, [bytearray(10), bytearray(6)])
    before = board.block_states()
    board.apply(Change(1, {}, {(1, 5): 2}))
    after = board.block_states()
    assert after[0] is before[0]  # cached, not re-encoded
    assert decode_block(after[1], 6) == bytes([0, 0, 0, 0, 0, 2])
    assert len(board.block_states(1, 1)) == 1


def test_a_coalesced_and_resumed_delta_keeps_the_last_status_of_each_cell():
    window = Coalescer(0)
    window.add(Change(1, {"B-3-1": "held"}, {(2, 0): 1}))
    window.add(Change(2, {"B-3-1": "available"}, {(2, 0): 0}))
    delta = window.take()
    assert delta is not None and delta.cells == {(2, 0): 0}
    history = History(100)
    history.add(delta)
    resumed = history.resume(0, 2)
    assert resumed is not None and resumed.cells == {(2, 0): 0}


def test_compact_messages_carry_the_version_as_their_sse_id():
    from domain.availability import Delta, compact_delta_message, compact_snapshot_message
    from domain.seatmap_codec import decode_runs

    board = SeatBoard({}, 9, [bytearray(4)])
    snap = compact_snapshot_message(board, '"abc"').decode()
    assert snap.startswith("id: 9\nevent: snapshot\n")
    data = json.loads(snap.split("data: ", 1)[1])
    assert data == {"version": 9, "format": "seatmap-v1", "layout": '"abc"',
                    "blocks": board.block_states()}
    delta = compact_delta_message(Delta(8, 9, {"A-1-4": "held"}, {(0, 3): 1})).decode()
    assert delta.startswith("id: 9\nevent: delta\n")
    body = json.loads(delta.split("data: ", 1)[1])
    assert body["version"] == 9 and decode_runs(body["runs"]) == [(0, 3, 1, 1)]


def test_the_stream_format_is_json_by_default_and_anything_else_is_refused():
    from domain.availability import parse_format

    assert parse_format(None) == "json" and parse_format("compact") == "compact"
    with pytest.raises(InvalidRequest):
        parse_format("xml")


@pytest.mark.parametrize("raw", ["", "JSON", " compact", "Compact"])
def test_the_format_is_taken_exactly_as_the_documents_enum_spells_it(raw):
    from domain.availability import parse_format

    with pytest.raises(InvalidRequest):
        parse_format(raw)
