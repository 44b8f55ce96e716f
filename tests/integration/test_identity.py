"""A queue place belongs to an authenticated person; admissions verify with public keys alone."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from domain import keyring, tokens
from domain.settings import Settings
from tests.integration.conftest import identity_of, user_header

pytestmark = pytest.mark.integration


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def join(http: httpx.AsyncClient, event_id: str, headers: dict[str, str],
               body: dict[str, Any] | None = None) -> httpx.Response:
    return await http.post(f"/v1/events/{event_id}/queue", json=body or {},
                           headers=headers | {"X-Forwarded-For": "198.51.100.77"})


def user_token_cases(settings: Settings) -> dict[str, dict[str, str]]:
    identity = identity_of(settings)
    key, now = identity.ring.active(), time.time()
    stranger = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), now)
    good = {"iss": tokens.DEV_ISSUER, "sub": "mallory", "aud": settings.auth_audience,
            "exp": int(now + 600), "iat": int(now)}

    def es256(payload: dict[str, Any], private: Any = key.private, kid: str = key.kid) -> str:
        return jwt.encode(payload, private, algorithm="ES256", headers={"kid": kid})

    def hs256(secret: str) -> str:
        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64(good)}"
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    return {
        "no token": {},
        "not a bearer": {"Authorization": "Basic bWFsbG9yeTpwdw=="},
        "garbage": bearer("not.a.jwt"),
        "forged (another key, our kid)": bearer(es256(good, stranger.private)),
        "forged (another key, its own kid)": bearer(es256(good, stranger.private, stranger.kid)),
        "expired": bearer(es256(good | {"exp": int(now - 1)})),
        "other issuer": bearer(es256(good | {"iss": "https://evil.example/"})),
        "other audience": bearer(es256(good | {"aud": "another-app"})),
        "no subject": bearer(es256({k: v for k, v in good.items() if k != "sub"})),
        "HS256 with the token secret": bearer(hs256(settings.token_secret)),
        "HS256 with the public key": bearer(hs256(json.dumps(identity.jwks()["keys"][0]))),
        "alg none": bearer(f"{b64({'alg': 'none', 'kid': key.kid})}.{b64(good)}."),
        "a ticket token": bearer(identity.sign(tokens.Claims(
            tokens.TICKET, "mallory", "ev000000000000", now + 600, "tq0000000000000000"))),
    }


async def test_a_join_without_a_valid_user_token_is_401_and_queues_nobody(
        http, new_event, app_settings: Settings, admin) -> None:
    event = await new_event()
    failures = []
    for name, headers in user_token_cases(app_settings).items():
        response = await join(http, event["event_id"], headers, {"user_id": "mallory"})
        if response.status_code != 401 or response.json()["error"]["code"] != "unauthorized":
            failures.append((name, response.status_code, response.text[:120]))
    assert failures == []
    await asyncio.sleep(1.0)  # anything logged would be placed by now
    stats = (await http.get(f"/v1/events/{event['event_id']}/queue/stats", headers=admin)).json()
    assert stats["waiting"] == 0


async def test_impersonation_never_yields_alices_ticket_nor_a_token_that_reads_her_status(
        http, new_event) -> None:
    event = await new_event(admission_rate_per_s=0)
    event_id = event["event_id"]
    alice = (await join(http, event_id, user_header("alice"))).json()
    # Bob signs in as bob and names alice in the body: refused, nothing of alice's comes back.
    claimed = await join(http, event_id, user_header("bob"), {"user_id": "alice"})
    assert claimed.status_code == 403 and "ticket_id" not in claimed.json()
    bob = await join(http, event_id, user_header("bob"))
    assert bob.status_code == 202
    assert bob.json()["ticket_id"] != alice["ticket_id"]
    assert jwt.decode(bob.json()["ticket_token"], options={"verify_signature": False})["sub"] == "bob"
    read = await http.get(f"/v1/events/{event_id}/queue/{alice['ticket_id']}",
                          headers=bearer(bob.json()["ticket_token"]))
    assert read.status_code == 403
    # Alice's rejoin returns her ticket, to her.
    again = await join(http, event_id, user_header("alice"), {"user_id": "alice"})
    assert again.status_code == 202 and again.json()["ticket_id"] == alice["ticket_id"]
    assert jwt.decode(again.json()["ticket_token"], options={"verify_signature": False})["sub"] == "alice"


async def test_admission_tokens_verify_with_pyjwt_against_the_published_jwks_alone(
        api, http, new_event) -> None:
    event = await new_event()
    event_id = event["event_id"]
    ticket = (await join(http, event_id, user_header("gate-scanned"))).json()
    admission = None
    deadline = time.monotonic() + 30
    while admission is None and time.monotonic() < deadline:
        status = await http.get(f"/v1/events/{event_id}/queue/{ticket['ticket_id']}",
                                headers=bearer(ticket["ticket_token"]))
        admission = status.json()["admission_token"]
        await asyncio.sleep(0.2)
    assert admission is not None
    published = await http.get("/.well-known/jwks.json")
    assert published.status_code == 200
    assert all("d" not in k for k in published.json()["keys"])
    # What a gate scanner does: nothing but the public JWKS URL and PyJWT.
    keys = jwt.PyJWKClient(f"{api}/.well-known/jwks.json")
    signing_key = await asyncio.to_thread(keys.get_signing_key_from_jwt, admission)
    claims = jwt.decode(admission, signing_key, algorithms=["ES256"], audience=event_id,
                        issuer=tokens.ISSUER, options={"require": ["exp", "sub", "jti"]})
    assert claims["sub"] == "gate-scanned" and claims["kind"] == tokens.ADMISSION
    assert jwt.get_unverified_header(admission)["kid"] == signing_key.key_id
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(admission, signing_key, algorithms=["ES256"], audience="ev000000000000")


async def test_the_dev_issuer_signs_a_name_in_and_refuses_a_bad_name(http, new_event) -> None:
    issued = await http.post("/v1/dev/token", json={"user_id": "dev-dora"},
                             headers={"X-Forwarded-For": "198.51.100.78"})
    assert issued.status_code == 200
    event = await new_event()
    joined = await join(http, event["event_id"], bearer(issued.json()["token"]))
    assert joined.status_code == 202
    bad = await http.post("/v1/dev/token", json={"user_id": "a|b"},
                          headers={"X-Forwarded-For": "198.51.100.78"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
