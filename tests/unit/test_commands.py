import json
from typing import Any

import pytest

from api import models
from domain.commands import (
    HoldCommand,
    check_user_id,
    parse_hold,
    parse_idempotency_key,
    parse_limit,
)
from domain.errors import InvalidRequest

MAX = 6


def test_a_hold_by_seat_ids_keeps_their_order():
    assert parse_hold({"seat_ids": ["A-1-2", "A-1-1"]}, MAX) == HoldCommand(seat_ids=("A-1-2", "A-1-1"))


def test_a_hold_by_section_and_quantity():
    assert parse_hold({"section": "A", "quantity": 3}, MAX) == HoldCommand(section="A", quantity=3)


@pytest.mark.parametrize("body", [
    {"seat_ids": ["A-1-1"], "section": "A"},
    {"seat_ids": ["A-1-1"], "quantity": 1},
    {"seat_ids": ["A-1-1"], "section": "A", "quantity": 1},
])
def test_seat_ids_and_section_quantity_together_are_refused(body):
    with pytest.raises(InvalidRequest, match="not both"):
        parse_hold(body, MAX)


@pytest.mark.parametrize("body", [None, [], "seat_ids", 1, {}])
def test_a_hold_body_must_be_an_object_asking_for_something(body):
    with pytest.raises(InvalidRequest):
        parse_hold(body, MAX)


@pytest.mark.parametrize("quantity", [0, -1, MAX + 1, 10**9, True, False, 1.0, "2", None])
def test_quantity_must_be_an_integer_from_1_to_the_maximum(quantity):
    with pytest.raises(InvalidRequest, match="quantity"):
        parse_hold({"section": "A", "quantity": quantity}, MAX)


def test_quantity_bounds_are_inclusive():
    assert parse_hold({"section": "A", "quantity": 1}, MAX).quantity == 1
    assert parse_hold({"section": "A", "quantity": MAX}, MAX).quantity == MAX


@pytest.mark.parametrize("section", [None, "", 1, "A-B", "A\n", "x" * 17])
def test_a_section_must_be_a_section_name(section):
    with pytest.raises(InvalidRequest, match="section"):
        parse_hold({"section": section, "quantity": 1}, MAX)


@pytest.mark.parametrize("seat_ids", [None, "A-1-1", ("A-1-1",), {"A-1-1": 1}, [],
                                      [f"A-1-{n}" for n in range(1, MAX + 2)]])
def test_seat_ids_must_be_a_list_of_1_to_the_maximum(seat_ids):
    with pytest.raises(InvalidRequest, match="seat_ids"):
        parse_hold({"seat_ids": seat_ids}, MAX)


def test_duplicate_seat_ids_are_refused():
    with pytest.raises(InvalidRequest, match="duplicates"):
        parse_hold({"seat_ids": ["A-1-1", "A-1-2", "A-1-1"]}, MAX)


def test_a_seat_cannot_be_named_twice_by_spelling_it_with_leading_zeros():
    with pytest.raises(InvalidRequest):
        parse_hold({"seat_ids": ["A-1-1", "A-1-01"]}, MAX)


@pytest.mark.parametrize("seat", ["A-1", "A-x-1", 7, None, ["A-1-1"], {"s": 1}, "A-\u00b2-1"])
def test_malformed_seat_ids_are_refused(seat):
    with pytest.raises(InvalidRequest, match="malformed"):
        parse_hold({"seat_ids": ["A-1-1", seat]}, MAX)


def user_id_of(body: Any) -> str:
    """POST /v1/dev/token's user id: the model's types, then the anchored check."""
    return check_user_id(models.decode(json.dumps(body).encode(), models.DevTokenRequest).user_id)


@pytest.mark.parametrize("user_id", ["alice", "a", "user_1.x@example.com:42-b", "x" * 128])
def test_user_ids_of_allowed_characters_are_accepted(user_id):
    assert user_id_of({"user_id": user_id}) == user_id


@pytest.mark.parametrize("body", [None, [], {}, {"user_id": ""}, {"user_id": "x" * 129},
                                  {"user_id": "a b"}, {"user_id": "a/b"}, {"user_id": "bob\n"},
                                  {"user_id": "é"}, {"user_id": 7}])
def test_bad_user_ids_are_refused(body):
    with pytest.raises(InvalidRequest):
        user_id_of(body)


def test_a_payment_token_is_a_short_non_empty_string():
    for token in ("tok_visa", "x" * 200):
        body = json.dumps({"payment_token": token}).encode()
        assert models.decode(body, models.CheckoutRequest).payment_token == token


@pytest.mark.parametrize("body", [None, [], {}, {"payment_token": ""}, {"payment_token": "x" * 201},
                                  {"payment_token": 1}, {"payment_token": None}])
def test_bad_payment_tokens_are_refused(body):
    with pytest.raises(InvalidRequest):
        models.decode(json.dumps(body).encode(), models.CheckoutRequest)


def test_no_idempotency_key_is_the_empty_key():
    assert parse_idempotency_key(None) == ""


@pytest.mark.parametrize("key", ["k", "550e8400-e29b-41d4-a716-446655440000", "!~" * 10, "x" * 255])
def test_printable_ascii_idempotency_keys_are_accepted(key):
    assert parse_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", " ", "a b", "x" * 256, "k\n", "k\t", "é", "k\x7f"])
def test_bad_idempotency_keys_are_refused(key):
    with pytest.raises(InvalidRequest):
        parse_idempotency_key(key)


@pytest.mark.parametrize("price", [0, 1, 100_000_000])
def test_a_price_is_an_integer_of_cents_from_0_to_the_limit(price):
    body = json.dumps({"price_cents": price}).encode()
    assert models.decode(body, models.PriceChange).price_cents == price


@pytest.mark.parametrize("body", [None, [], {}, {"price_cents": -1}, {"price_cents": 100_000_001},
                                  {"price_cents": True}, {"price_cents": 10.0}, {"price_cents": "10"}])
def test_bad_prices_are_refused(body):
    with pytest.raises(InvalidRequest):
        models.decode(json.dumps(body).encode(), models.PriceChange)


def test_a_list_limit_defaults_to_50_and_takes_1_to_100():
    assert parse_limit(None) == parse_limit("") == 50
    assert (parse_limit("1"), parse_limit("100")) == (1, 100)


@pytest.mark.parametrize("raw", ["0", "101", "-1", "1.5", "abc", "²", "1" * 400, " 5"])
def test_a_list_limit_outside_1_to_100_or_not_digits_is_refused(raw):
    with pytest.raises(InvalidRequest):
        parse_limit(raw)
