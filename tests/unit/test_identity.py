"""User tokens from a configured OIDC issuer, the dev issuer only in development, and a stack
with generated secrets trusting nothing signed with what the source contains.

The issuer is a real HTTP server on 127.0.0.1 serving its JWKS; the app runs in-process.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

import serve_app
from domain import keyring, tokens
from domain.errors import Unauthorized
from domain.settings import DEV_TOKEN_SECRET, Settings
from replica.identity import Identity

ISSUER = "https://login.example.test/"
AUDIENCE = "ticketing-web"
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
IDP_KID = "idp-2026-1"


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    body = json.dumps({"keys": [RSAAlgorithm.to_jwk(IDP_KEY.public_key(), as_dict=True)
                                | {"kid": IDP_KID, "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


def production(jwks_url: str, ring: keyring.KeyRing) -> Settings:
    return Settings.from_env({
        "TICKETING_PRODUCTION": "1", "TICKETING_TOKEN_SECRET": secrets.token_urlsafe(32),
        "TICKETING_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "TICKETING_SIGNING_KEYS": ring.to_json(), "AUTH_ISSUER": ISSUER,
        "AUTH_JWKS_URL": jwks_url, "AUTH_AUDIENCE": AUDIENCE})


def new_ring(ttl_s: float = 600) -> keyring.KeyRing:
    key = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), time.time())
    return keyring.KeyRing((key,), ttl_s)


def idp_token(**overrides: Any) -> str:
    payload = {"iss": ISSUER, "sub": "user-4711", "aud": AUDIENCE, "exp": int(time.time() + 300),
               "iat": int(time.time())} | overrides
    return jwt.encode(payload, IDP_KEY, algorithm="RS256", headers={"kid": IDP_KID})


async def test_a_user_token_from_the_configured_issuer_names_the_user(jwks_url: str) -> None:
    assert await Identity(production(jwks_url, new_ring())).user(idp_token()) == "user-4711"


@pytest.mark.parametrize("why,token", [
    ("other issuer", lambda: idp_token(iss="https://evil.example/")),
    ("other audience", lambda: idp_token(aud="someone-else")),
    ("expired", lambda: idp_token(exp=int(time.time() - 1))),
    ("unknown kid", lambda: jwt.encode({"iss": ISSUER, "sub": "u", "aud": AUDIENCE,
                                        "exp": int(time.time() + 60)}, IDP_KEY,
                                       algorithm="RS256", headers={"kid": "not-published"})),
    ("signed by another key", lambda: jwt.encode(
        {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": int(time.time() + 60)},
        rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
        headers={"kid": IDP_KID})),
    ("a dev-issuer token", lambda: tokens.sign_user(new_ring().active(), "u", AUDIENCE,
                                                    time.time(), 60, "j")),
])
async def test_a_user_token_not_from_the_configured_issuer_is_refused(
        jwks_url: str, why: str, token: Any) -> None:
    with pytest.raises(Unauthorized):
        await Identity(production(jwks_url, new_ring())).user(token())


async def test_in_production_there_is_no_dev_token_and_jwks_serves_the_configured_keys(
        jwks_url: str) -> None:
    ring = new_ring()
    app = serve_app.build_asgi_app(production(jwks_url, ring))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        dev = await c.post("/v1/dev/token", json={"user_id": "mallory"})
        assert dev.status_code == 404 and dev.json()["error"]["code"] == "not_found"
        published = (await c.get("/.well-known/jwks.json")).json()
    assert published == ring.jwks(time.time())


def test_a_stack_with_generated_secrets_refuses_tokens_signed_with_what_the_source_holds() -> None:
    """`make up` generates TICKETING_TOKEN_SECRET (and so the derived signing key): a token made
    with the development secret, as HMAC or as the key derived from it, is refused."""
    stack = Identity(Settings.from_env({}, token_secret=secrets.token_urlsafe(32),
                                       admin_token="unit-admin"))
    from_source = keyring.derived(DEV_TOKEN_SECRET, 3600).active()
    now = time.time()
    admission = tokens.sign(from_source, tokens.Claims(tokens.ADMISSION, "u", "ev000000000000",
                                                       now + 60, ""), now, "j")
    with pytest.raises(Unauthorized):
        stack.verify(admission, tokens.ADMISSION, None)
    hs = jwt.encode({"iss": tokens.ISSUER, "sub": "u", "aud": "ev000000000000",
                     "exp": int(now + 60), "jti": "j", "kind": tokens.ADMISSION},
                    DEV_TOKEN_SECRET, algorithm="HS256", headers={"kid": from_source.kid})
    with pytest.raises(Unauthorized):
        stack.verify(hs, tokens.ADMISSION, None)


def test_the_stack_generates_a_fresh_signing_ring_and_rotates_it_keeping_the_old_key() -> None:
    from infra import signing_keys

    first = signing_keys.generate(600)
    ring = keyring.parse(first, 600)
    rotated = keyring.parse(signing_keys.rotate(first, 600, time.time()), 600)
    assert rotated.active().kid != ring.active().kid
    assert ring.active().kid in rotated.verifying(time.time())
    assert keyring.parse(signing_keys.generate(600), 600).active().kid != ring.active().kid


async def test_the_openapi_document_renders_with_the_identity_routes() -> None:
    app = serve_app.build_asgi_app(Settings.from_env({}, token_secret=DEV_TOKEN_SECRET,
                                                     admin_token="unit-admin"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        paths = (await c.get("/openapi.json")).json()["paths"]
    for path in ("/v1/dev/token", "/.well-known/jwks.json", "/v1/events/{event_id}/queue/challenge"):
        assert path in paths


async def test_a_verified_user_token_is_trusted_again_until_it_expires_not_after(
        jwks_url: str) -> None:
    identity = Identity(production(jwks_url, new_ring()))
    token = idp_token(exp=int(time.time()) + 2)
    assert await identity.user(token) == "user-4711"
    assert await identity.user(token) == "user-4711"  # from the cache
    head, _body, signature = token.split(".")
    other = jwt.utils.base64url_encode(json.dumps(
        jwt.decode(token, options={"verify_signature": False}) | {"sub": "mallory"}).encode())
    with pytest.raises(Unauthorized):  # the cached signature under another payload
        await identity.user(f"{head}.{other.decode()}.{signature}")
    while time.time() <= jwt.decode(token, options={"verify_signature": False})["exp"]:
        time.sleep(0.05)
    with pytest.raises(Unauthorized, match="expired"):
        await identity.user(token)


async def test_the_user_token_cache_is_bounded_and_holds_only_verified_tokens(
        jwks_url: str) -> None:
    settings = production(jwks_url, new_ring())
    identity = Identity(Settings.from_env({}, **{
        **{f: getattr(settings, f) for f in ("production", "token_secret", "admin_token",
                                             "signing_keys", "auth_issuer", "auth_jwks_url",
                                             "auth_audience")},
        "user_token_cache_max": 2}))
    for n in range(3):
        await identity.user(idp_token(sub=f"user-{n}"))
    with pytest.raises(Unauthorized):
        await identity.user(idp_token(iss="https://evil.example/"))
    assert len(identity._users) == 2
