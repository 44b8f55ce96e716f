import json

import pytest

from domain.holds import Hold, HoldStatus
from domain.ids import HoldRef
from domain.venue import Block
from store.records import booking_of, decode_hold, encode_hold

BLOCK = Block(index=3, section="A", first_row=6, last_row=10, seats_per_row=20)
REF = HoldRef("ev0123456789ab", 3, "0123456789abcdef")


def hold(status: HoldStatus = HoldStatus.ACTIVE, key: str = "k-1") -> Hold:
    return Hold(hold_id=REF.hold_id, event_id=REF.event_id, user_id="alice", section="A",
                seat_ids=("A-6-1", "A-7-20"), total_cents=10_000, expires_at=1_600.125,
                status=status, idempotency_key=key)


def test_a_hold_record_is_status_bar_compact_json_of_seat_indices_and_expiry_ms():
    assert encode_hold(hold(), BLOCK) == 'active|["alice",[0,39],10000,1600125,"k-1"]'


@pytest.mark.parametrize("status", list(HoldStatus))
def test_a_hold_round_trips_through_its_record(status):
    h = hold(status)
    assert decode_hold(encode_hold(h, BLOCK), REF, BLOCK) == h


def test_a_record_decodes_from_bytes_as_redis_returns_it():
    assert decode_hold(encode_hold(hold(), BLOCK).encode(), REF, BLOCK) == hold()


def test_a_record_keeps_the_expiry_to_the_millisecond():
    h = Hold(REF.hold_id, REF.event_id, "alice", "A", ("A-10-20",), 1, 2.34567)
    back = decode_hold(encode_hold(h, BLOCK), REF, BLOCK)
    assert back.expires_at == 2.346
    assert back.seat_ids == ("A-10-20",)


def test_a_one_seat_hold_record_stays_under_48_bytes():
    h = Hold(REF.hold_id, REF.event_id, "q1u778", "A", ("A-10-20",), 5_000, 1_795_891_262.763)
    assert len(encode_hold(h, BLOCK)) <= 47  # + sds header and NUL: one 56-byte allocation


def test_a_booking_names_its_hold_and_is_json_serialisable():
    booking = booking_of(hold(HoldStatus.CONFIRMED), REF, 1_234.5678)
    assert booking == {
        "booking_id": "bk.ev0123456789ab.3.0123456789abcdef",
        "hold_id": "hd.ev0123456789ab.3.0123456789abcdef",
        "event_id": "ev0123456789ab", "block": 3, "user_id": "alice",
        "seat_ids": ["A-6-1", "A-7-20"], "total_cents": 10_000, "status": "confirmed",
        "confirmed_at": 1_234.568,
    }
    assert json.loads(json.dumps(booking)) == booking


def test_the_ledger_reads_the_partition_the_producer_writes_an_event_to():
    from kafka.partitioner.default import DefaultPartitioner

    from store.ledger import partition_of

    class Cluster:
        def topics(self):
            return {"t"}

        def partitions_for_topic(self, topic):
            return {0, 1, 2, 3}

        def available_partitions_for_topic(self, topic):
            return {0, 1, 2, 3}

    for event_id in ("ev0123456789ab", "evffffffffffff", "ev5a5a5a5a5a5a"):
        key = event_id.encode()
        expected = DefaultPartitioner().partition("t", event_id, key, None, None, Cluster())
        assert partition_of(event_id, [0, 1, 2, 3]) == expected
