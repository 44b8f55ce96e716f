"""Ticket, admission and user tokens are standard JWTs anyone can verify with the public keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from domain import keyring
from domain.errors import Forbidden, Unauthorized
from domain.tokens import (
    ADMISSION,
    DEV_ISSUER,
    ISSUER,
    TICKET,
    Claims,
    sign,
    sign_user,
    verify,
    verify_user,
)

NOW = 1_750_000_000.0
EVENT = "ev0123456789ab"
TTL = 1800.0
RING = keyring.derived("unit-test-secret-0123456789", TTL)
KEY = RING.active()


def claims(**overrides: object) -> Claims:
    base = {"kind": ADMISSION, "user_id": "alice", "event_id": EVENT,
            "expires_at": NOW + 600, "subject": "tq0123456789abcdef"}
    return Claims(**(base | overrides))  # type: ignore[arg-type]


def keys(ring: keyring.KeyRing = RING, now: float = NOW) -> dict:
    return ring.verifying(now)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_verifies_and_carries_its_claims():
    assert verify(keys(), sign(KEY, claims(), NOW, "j1"), ADMISSION, EVENT, NOW) == claims(
        expires_at=float(int(NOW + 600)))


def test_an_admission_token_is_a_standard_es256_jwt_with_sub_aud_exp_jti_and_kid():
    token = sign(KEY, claims(), NOW, "jti-1")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == KEY.kid
    jwk = jwt.PyJWK(RING.jwks(NOW)["keys"][0])
    data = jwt.decode(token, jwk, algorithms=["ES256"], audience=EVENT, issuer=ISSUER,
                      options={"verify_exp": False, "verify_iat": False})
    assert (data["sub"], data["aud"], data["jti"], data["kind"]) == (
        "alice", EVENT, "jti-1", ADMISSION)
    assert data["exp"] == int(NOW + 600)


def test_the_published_key_set_holds_no_private_part():
    for jwk in RING.jwks(NOW)["keys"]:
        assert "d" not in jwk and jwk["kid"] and jwk["alg"] == "ES256"


def test_a_token_signed_by_another_key_with_our_kid_is_refused():
    other = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), 0)
    forged = sign(keyring.SigningKey(KEY.kid, other.private, 0), claims(), NOW, "j")
    with pytest.raises(Unauthorized):
        verify(keys(), forged, ADMISSION, EVENT, NOW)


def test_hs256_signed_with_the_public_key_or_a_secret_is_refused():
    pem_like = json.dumps(RING.jwks(NOW)["keys"][0])
    payload = {"iss": ISSUER, "sub": "alice", "aud": EVENT, "exp": NOW + 600, "jti": "j",
               "kind": ADMISSION, "tid": ""}
    for secret in (pem_like, "unit-test-secret-0123456789"):
        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': KEY.kid})}.{b64(payload)}"
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        with pytest.raises(Unauthorized):
            verify(keys(), token, ADMISSION, EVENT, NOW)
        with pytest.raises(Unauthorized):
            verify_user(KEY.private.public_key(), token, DEV_ISSUER, "ticketing", NOW)


def test_alg_none_is_refused():
    payload = {"iss": ISSUER, "sub": "alice", "aud": EVENT, "exp": NOW + 600, "jti": "j",
               "kind": ADMISSION, "tid": ""}
    token = f"{b64({'alg': 'none', 'kid': KEY.kid})}.{b64(payload)}."
    with pytest.raises(Unauthorized):
        verify(keys(), token, ADMISSION, EVENT, NOW)
    user = f"{b64({'alg': 'none', 'kid': KEY.kid})}.{b64(payload | {'aud': 'ticketing'})}."
    with pytest.raises(Unauthorized):
        verify_user(KEY.private.public_key(), user, ISSUER, "ticketing", NOW)


def test_a_tampered_payload_is_refused():
    head, _, rest = sign(KEY, claims(), NOW, "j").partition(".")
    _, _, sig = rest.partition(".")
    other = {"iss": ISSUER, "sub": "mallory", "aud": EVENT, "exp": NOW + 600, "jti": "j",
             "kind": ADMISSION}
    forged = f"{head}.{b64(other)}.{sig}"
    with pytest.raises(Unauthorized):
        verify(keys(), forged, ADMISSION, EVENT, NOW)


@pytest.mark.parametrize("garbage", ["", "nope", "a.b.c", "é.é.é", "x" * 9000, "..", "e30.e30."])
def test_garbage_is_unauthorized_not_a_crash(garbage: str):
    with pytest.raises(Unauthorized):
        verify(keys(), garbage, ADMISSION, EVENT, NOW)
    with pytest.raises(Unauthorized):
        verify_user(KEY.private.public_key(), garbage, DEV_ISSUER, "ticketing", NOW)


def test_an_expired_token_is_refused():
    with pytest.raises(Unauthorized, match="expired"):
        verify(keys(), sign(KEY, claims(expires_at=NOW), NOW, "j"), ADMISSION, EVENT, NOW)


def test_a_token_for_another_event_is_forbidden():
    token = sign(KEY, claims(event_id="evffffffffffff"), NOW, "j")
    with pytest.raises(Forbidden):
        verify(keys(), token, ADMISSION, EVENT, NOW)


def test_a_ticket_token_never_passes_as_an_admission_token_nor_back():
    with pytest.raises(Unauthorized):
        verify(keys(), sign(KEY, claims(kind=TICKET), NOW, "j"), ADMISSION, EVENT, NOW)
    with pytest.raises(Unauthorized):
        verify(keys(), sign(KEY, claims(kind=ADMISSION), NOW, "j"), TICKET, EVENT, NOW)


def test_a_user_token_is_never_a_ticket_token():
    user = sign_user(KEY, "alice", "ticketing", NOW, 600, "j")
    with pytest.raises(Unauthorized):
        verify(keys(), user, TICKET, None, NOW)
    ticket = sign(KEY, claims(kind=TICKET), NOW, "j")
    with pytest.raises(Unauthorized):
        verify_user(KEY.private.public_key(), ticket, DEV_ISSUER, "ticketing", NOW)


def test_a_user_token_names_its_user_and_must_match_issuer_audience_and_time():
    token = sign_user(KEY, "alice", "ticketing", NOW, 600, "j")
    public = KEY.private.public_key()
    assert verify_user(public, token, DEV_ISSUER, "ticketing", NOW) == "alice"
    for issuer, audience, now in ((ISSUER, "ticketing", NOW), (DEV_ISSUER, "other", NOW),
                                  (DEV_ISSUER, "ticketing", NOW + 600)):
        with pytest.raises(Unauthorized):
            verify_user(public, token, issuer, audience, now)


def test_a_user_token_whose_subject_cannot_be_a_user_id_is_refused():
    token = jwt.encode({"iss": DEV_ISSUER, "sub": "a|b", "aud": "ticketing", "exp": NOW + 60},
                       KEY.private, algorithm="ES256", headers={"kid": KEY.kid})
    with pytest.raises(Unauthorized):
        verify_user(KEY.private.public_key(), token, DEV_ISSUER, "ticketing", NOW)


def test_after_a_rotation_old_tokens_verify_until_they_expire_and_new_ones_use_the_new_key():
    old_token = sign(KEY, claims(expires_at=NOW + TTL), NOW, "j")
    new_key = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), NOW + 10)
    rotated = RING.rotate(new_key, NOW + 10)
    assert rotated.active().kid == new_key.kid != KEY.kid
    assert {k["kid"] for k in rotated.jwks(NOW + 10)["keys"]} == {KEY.kid, new_key.kid}
    assert verify(keys(rotated, NOW + 20), old_token, ADMISSION, EVENT, NOW + 20).user_id == "alice"
    new_token = sign(rotated.active(), claims(expires_at=NOW + 2 * TTL), NOW + 20, "j2")
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    # The retired key is published until its last token can have expired, then dropped.
    assert KEY.kid in keys(rotated, NOW + 10 + TTL - 1)
    assert KEY.kid not in keys(rotated, NOW + 10 + TTL)
    assert [k["kid"] for k in rotated.jwks(NOW + 10 + TTL)["keys"]] == [new_key.kid]
    with pytest.raises(Unauthorized):
        verify(keys(rotated, NOW + 10 + TTL), old_token, ADMISSION, EVENT, NOW + 10 + TTL)


def test_a_key_ring_survives_its_json_and_refuses_a_broken_one():
    new_key = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), NOW)
    ring = RING.rotate(new_key, NOW)
    again = keyring.parse(ring.to_json(), TTL)
    assert again.active().kid == new_key.kid
    assert again.jwks(NOW) == ring.jwks(NOW)
    for broken in ("", "{}", '{"keys": []}', json.dumps({"keys": [RING.jwks(NOW)["keys"][0]]}),
                   json.dumps({"keys": [KEY.private_jwk() | {"retired_at": 1}]})):
        with pytest.raises(ValueError):
            keyring.parse(broken, TTL)


def test_the_development_key_is_derived_from_the_token_secret():
    assert keyring.derived("unit-test-secret-0123456789", TTL).active().kid == KEY.kid
    assert keyring.derived("another-secret-0123456789", TTL).active().kid != KEY.kid


def test_a_ticket_token_is_a_standard_hs256_jwt_under_a_mac_derived_from_its_ring_key():
    token = sign(KEY, claims(kind=TICKET), NOW, "jti-t")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["kid"] == KEY.kid
    data = jwt.decode(token, KEY.ticket_mac, algorithms=["HS256"], issuer=ISSUER,
                      options={"verify_exp": False, "verify_aud": False})
    assert (data["sub"], data["aud"], data["kind"], data["tid"]) == (
        "alice", EVENT, TICKET, "tq0123456789abcdef")
    assert verify(RING.ticket_macs(NOW), token, TICKET, EVENT, NOW).subject == "tq0123456789abcdef"
    other = keyring.derived("another-secret-0123456789", TTL).active()
    assert other.ticket_mac != KEY.ticket_mac and len(KEY.ticket_mac) == 32


def test_a_ticket_is_checked_with_its_mac_key_only_never_with_a_public_key():
    ticket = sign(KEY, claims(kind=TICKET), NOW, "j")
    with pytest.raises(Unauthorized):  # the public keys do not check tickets
        verify(keys(), ticket, TICKET, EVENT, NOW)
    admission = sign(KEY, claims(), NOW, "j")
    with pytest.raises(Unauthorized):  # and MAC keys check nothing but tickets
        verify(RING.ticket_macs(NOW), admission, ADMISSION, EVENT, NOW)
    payload = {"iss": ISSUER, "sub": "alice", "aud": EVENT, "exp": NOW + 600, "jti": "j",
               "kind": ADMISSION, "tid": ""}
    signing_input = f"{b64({'alg': 'HS256', 'kid': KEY.kid})}.{b64(payload)}"
    for secret in (KEY.ticket_mac, json.dumps(RING.jwks(NOW)["keys"][0]).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        with pytest.raises(Unauthorized):  # an HS256 admission, whatever its MAC key
            verify(keys(), forged, ADMISSION, EVENT, NOW)
        with pytest.raises(Unauthorized):  # and as a ticket it is of the wrong kind
            verify(RING.ticket_macs(NOW), forged, TICKET, EVENT, NOW)


def test_a_ticket_with_a_tampered_payload_or_stray_signature_bits_is_refused():
    ticket = sign(KEY, claims(kind=TICKET), NOW, "j")
    head, body, mac = ticket.split(".")
    mallory = b64({"iss": ISSUER, "sub": "mallory", "aud": EVENT, "exp": NOW + 600, "jti": "j",
                   "kind": TICKET, "tid": "tq0123456789abcdef"})
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(mac[-1])
    stray = mac[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last | 1]
    assert stray != mac  # a 32-byte MAC leaves 2 unused bits in its last character
    for forged in (f"{head}.{mallory}.{mac}", f"{head}.{body}.{stray}", f"{head}.{body}.{mac}==",
                   f"{head}.{body}", f"{head}.{body}.{mac}.x", f"{head}.{body}.{mac[:-1]}!"):
        with pytest.raises(Unauthorized):
            verify(RING.ticket_macs(NOW), forged, TICKET, EVENT, NOW)


def test_after_a_rotation_old_tickets_verify_until_their_key_is_dropped():
    old_ticket = sign(KEY, claims(kind=TICKET, expires_at=NOW + TTL), NOW, "j")
    rotated = RING.rotate(keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()),
                                                   NOW + 10), NOW + 10)
    assert verify(rotated.ticket_macs(NOW + 20), old_ticket, TICKET, EVENT, NOW + 20)
    assert KEY.kid not in rotated.ticket_macs(NOW + 10 + TTL)
    with pytest.raises(Unauthorized):
        verify(rotated.ticket_macs(NOW + 10 + TTL), old_ticket, TICKET, EVENT, NOW + 10 + TTL)
