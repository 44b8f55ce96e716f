import base64
import json

import pytest

from domain.errors import Forbidden, Unauthorized
from domain.tokens import ADMISSION, TICKET, Claims, sign, verify

SECRET = "unit-test-secret-0123456789"
EVENT = "ev0123456789ab"
NOW = 1_000_000.0


def claims(kind: str = ADMISSION, event_id: str = EVENT, expires_at: float = NOW + 60,
           subject: str = "") -> Claims:
    return Claims(kind=kind, user_id="alice", event_id=event_id, expires_at=expires_at, subject=subject)


def test_a_signed_token_verifies_back_to_its_claims():
    c = claims(subject="tk-42")
    assert verify(SECRET, sign(SECRET, c), ADMISSION, EVENT, NOW) == c


def test_any_event_is_accepted_when_no_event_is_required():
    c = claims(event_id="evffffffffffff")
    assert verify(SECRET, sign(SECRET, c), ADMISSION, None, NOW) == c


def test_a_token_signed_with_another_secret_is_refused():
    token = sign("another-secret-0123456789", claims())
    with pytest.raises(Unauthorized):
        verify(SECRET, token, ADMISSION, EVENT, NOW)


def test_a_forged_signature_is_refused():
    payload, _, mac = sign(SECRET, claims()).partition(".")
    forged = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    with pytest.raises(Unauthorized):
        verify(SECRET, f"{payload}.{forged}", ADMISSION, EVENT, NOW)


def test_a_tampered_payload_is_refused():
    payload, _, mac = sign(SECRET, claims()).partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = "mallory"
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    tampered = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(Unauthorized):
        verify(SECRET, f"{tampered}.{mac}", ADMISSION, EVENT, NOW)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "payload.mäc"])
def test_malformed_tokens_are_refused_as_unauthorized(token):
    with pytest.raises(Unauthorized):
        verify(SECRET, token, ADMISSION, EVENT, NOW)


def test_a_genuine_token_with_a_non_ascii_suffix_is_unauthorized_not_a_crash():
    payload, _, _ = sign(SECRET, claims()).partition(".")
    with pytest.raises(Unauthorized):
        verify(SECRET, f"{payload}.é", ADMISSION, EVENT, NOW)


def test_an_expired_token_is_refused():
    token = sign(SECRET, claims(expires_at=NOW))
    with pytest.raises(Unauthorized, match="expired"):
        verify(SECRET, token, ADMISSION, EVENT, NOW)


def test_a_token_is_valid_until_just_before_its_expiry():
    token = sign(SECRET, claims(expires_at=NOW + 1))
    assert verify(SECRET, token, ADMISSION, EVENT, NOW + 0.999).user_id == "alice"


def test_another_events_token_is_forbidden():
    token = sign(SECRET, claims(event_id="evffffffffffff"))
    with pytest.raises(Forbidden):
        verify(SECRET, token, ADMISSION, EVENT, NOW)


def test_a_ticket_token_never_passes_as_an_admission_token():
    token = sign(SECRET, claims(kind=TICKET))
    with pytest.raises(Unauthorized):
        verify(SECRET, token, ADMISSION, EVENT, NOW)


def test_an_admission_token_never_passes_as_a_ticket_token():
    token = sign(SECRET, claims(kind=ADMISSION))
    with pytest.raises(Unauthorized):
        verify(SECRET, token, TICKET, EVENT, NOW)


def test_a_valid_mac_over_a_payload_that_is_not_claims_is_refused():
    # Someone holding the secret signs junk; decoding must still fail as Unauthorized.
    from domain.tokens import _b64, _mac

    for raw in (b"not json", b"[1,2,3]", b'{"k":"admission"}'):
        payload = _b64(raw)
        with pytest.raises(Unauthorized):
            verify(SECRET, f"{payload}.{_mac(SECRET, ADMISSION, payload)}", ADMISSION, EVENT, NOW)
