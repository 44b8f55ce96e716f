"""Bearer tokens as standard JWTs (RFC 7519), checked with PyJWT; the time is passed in.

**Ticket and admission tokens** are ours: ES256, a `kid` in the header naming the key in
`/.well-known/jwks.json`, and the claims `iss` (ISSUER), `sub` (the user), `aud` (the event
id), `exp`, `iat`, `jti`, `kind` (`ticket` or `admission`, inside the signature, so a ticket
token never passes as an admission token) and `tid` (the waiting-room ticket id). Anyone with
the public keys can check one; only the ring's private key can make one.

**User tokens** come from the platform's OIDC issuer (or, in development, from the stack's own
`/v1/dev/token`): asymmetric algorithms only, `iss` and `aud` as configured, the user is `sub`.

Refused everywhere: `alg: none`, HS256 and every other symmetric algorithm (a public key used
as an HMAC secret is the classic JWT forgery), unknown `kid`s, missing claims, and a `kid`
or `alg` the key does not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from domain.commands import USER_ID
from domain.errors import Forbidden, Unauthorized
from domain.keyring import ALG, SigningKey

TICKET = "ticket"
ADMISSION = "admission"
CHALLENGE = "challenge"  # a proof-of-work challenge issued to one user for one event
ISSUER = "urn:ticketing"  # `iss` of ticket and admission tokens
DEV_ISSUER = "urn:ticketing:dev"  # `iss` of the user tokens the stack issues in development
USER_ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")  # asymmetric only
MAX_TOKEN_CHARS = 8192
_REQUIRED = ["iss", "sub", "aud", "exp", "jti"]
_NO_CLOCK: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}  # `now` is ours


@dataclass(frozen=True)
class Claims:
    kind: str
    user_id: str
    event_id: str
    expires_at: float
    subject: str = ""  # the ticket id


def sign(key: SigningKey, claims: Claims, now: float, jti: str) -> str:
    payload = {"iss": ISSUER, "sub": claims.user_id, "aud": claims.event_id,
               "exp": int(claims.expires_at), "iat": int(now), "jti": jti,
               "kind": claims.kind, "tid": claims.subject}
    return jwt.encode(payload, key.private, algorithm=ALG, headers={"kid": key.kid})


def verify(keys: Mapping[str, Any], token: str, kind: str, event_id: str | None,
           now: float) -> Claims:
    """Claims of a genuine, unexpired token of `kind` for `event_id` (None: any event), signed
    by one of `keys` (kid -> public key: the ring's verifying keys)."""
    header = _header(token)
    key = keys.get(header.get("kid", ""))
    if key is None or header.get("alg") != ALG:
        raise Unauthorized("invalid token")
    try:
        data = jwt.decode(token, key, algorithms=[ALG], issuer=ISSUER, options={
            **_NO_CLOCK, "verify_aud": False, "require": _REQUIRED})
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if data.get("kind") != kind or not isinstance(data.get("tid", ""), str):
        raise Unauthorized("invalid token")
    claims = Claims(kind, str(data["sub"]), str(data["aud"]), float(data["exp"]),
                    data.get("tid", ""))
    if claims.expires_at <= now:
        raise Unauthorized("token expired")
    if event_id is not None and claims.event_id != event_id:
        raise Forbidden("token is for another event")
    return claims


def key_id(token: str) -> str:
    """The `kid` of a user token's header, to find its key (not yet verified)."""
    kid = _header(token).get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("user token has no key id (kid)")
    return kid


def sign_user(key: SigningKey, user_id: str, audience: str, now: float, ttl_s: float,
              jti: str) -> str:
    """A development user token: what an OIDC issuer's ID/access token carries."""
    payload = {"iss": DEV_ISSUER, "sub": user_id, "aud": audience, "exp": int(now + ttl_s),
               "iat": int(now), "jti": jti}
    return jwt.encode(payload, key.private, algorithm=ALG, headers={"kid": key.kid})


def verify_user(key: Any, token: str, issuer: str, audience: str, now: float) -> str:
    """The user (`sub`) of a genuine, unexpired user token from `issuer` for `audience`,
    signed with `key` (a public key or a PyJWK from the issuer's JWKS)."""
    header = _header(token)
    if header.get("alg") not in USER_ALGORITHMS:
        raise Unauthorized("user token algorithm not accepted")
    try:
        data = jwt.decode(token, key, algorithms=[header["alg"]], issuer=issuer,
                          audience=audience, options={**_NO_CLOCK, "require": ["exp", "sub"]})
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid user token") from exc
    exp = data["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now:
        raise Unauthorized("user token expired")
    user = data["sub"]
    if not isinstance(user, str) or not USER_ID.match(user):
        raise Unauthorized("user token subject must be 1-128 letters, digits or _.@:-")
    return user


def _header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise Unauthorized("invalid token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if not isinstance(header, dict):
        raise Unauthorized("invalid token")
    return header
