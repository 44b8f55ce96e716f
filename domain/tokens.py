"""Bearer tokens as standard JWTs (RFC 7519, RFC 7515 compact form); the time is passed in.

**Admission (and challenge) tokens** are ours: ES256, a `kid` in the header naming the key in
`/.well-known/jwks.json`, and the claims `iss` (ISSUER), `sub` (the user), `aud` (the event
id), `exp`, `iat`, `jti`, `kind` (`ticket`, `admission` or `challenge`, inside the signature,
so one kind never passes for another) and `tid` (the waiting-room ticket id). Anyone with the
public keys can check an admission; only the ring's private key can make one.

**Ticket tokens** carry the same claims as HS256 JWTs under a MAC key derived from the ring
key named by `kid` (`SigningKey.ticket_mac`): only the replicas that mint them check them
(status, stream), so a public-key signature would buy nothing, and HMAC costs ~5 µs where an
ES256 signature costs ~110-190 µs on the join path and its verification as much again on every
status read. The algorithm is chosen by the kind the caller expects, never by the header: a
ticket is checked with HS256 and a MAC key only, everything else with ES256 and a public key
only, so no public key can ever serve as an HMAC secret.

**User tokens** come from the platform's OIDC issuer (or, in development, from the stack's own
`/v1/dev/token`): asymmetric algorithms only, `iss` and `aud` as configured, the user is `sub`.

Refused everywhere: `alg: none`, HS256 and every other symmetric algorithm (a public key used
as an HMAC secret is the classic JWT forgery), unknown `kid`s, missing claims, and a `kid`
or `alg` the key does not match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
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
TICKET_ALG = "HS256"  # ticket tokens only (see above)
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
    if claims.kind == TICKET:
        return _sign_hs256(payload, key.kid, key.ticket_mac)
    return jwt.encode(payload, key.private, algorithm=ALG, headers={"kid": key.kid})


def verify(keys: Mapping[str, Any], token: str, kind: str, event_id: str | None,
           now: float) -> Claims:
    """Claims of a genuine, unexpired token of `kind` for `event_id` (None: any event).

    `keys` maps kid -> what checks that kind: for tickets the ring's MAC keys
    (`KeyRing.ticket_macs`), for every other kind its public keys (`KeyRing.verifying`)."""
    header, segments = _split(token)
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if kind == TICKET:
        if not isinstance(key, bytes) or header.get("alg") != TICKET_ALG:
            raise Unauthorized("invalid token")
        data = _verified_hs256(key, segments)
    else:
        if key is None or isinstance(key, bytes) or header.get("alg") != ALG:
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
    return user_claims(key, token, issuer, audience, now)[0]


def user_claims(key: Any, token: str, issuer: str, audience: str,
                now: float) -> tuple[str, float]:
    """`verify_user`'s user and the token's `exp` (how long the verification may be reused).

    PyJWT's algorithms check the signature (its `decode` around them re-reads the token three
    times and scans every character in Python: ~0.2 ms, as much as the ES256 check itself);
    the header and segments are read here once, as strictly, and the claims checked as
    `jwt.decode` with `issuer`, `audience` and `require` would."""
    header, segments = _split(token)
    alg = header.get("alg")
    if alg not in USER_ALGORITHMS:
        raise Unauthorized("user token algorithm not accepted")
    try:
        if isinstance(key, jwt.PyJWK):
            if alg != key.algorithm_name:
                raise Unauthorized("user token algorithm does not match its key")
            algorithm, raw_key = key.Algorithm, key.key
        else:
            algorithm, raw_key = jwt.get_algorithm_by_name(alg), key
        genuine = algorithm.verify(f"{segments[0]}.{segments[1]}".encode(),
                                   algorithm.prepare_key(raw_key), _b64decode(segments[2]))
    except (jwt.PyJWTError, ValueError, TypeError, NotImplementedError) as exc:
        raise Unauthorized("invalid user token") from exc
    if not genuine:
        raise Unauthorized("invalid user token")
    try:
        data = json.loads(_b64decode(segments[1]))
    except (ValueError, RecursionError) as exc:
        raise Unauthorized("invalid user token") from exc
    if not isinstance(data, dict) or data.get("iss") != issuer:
        raise Unauthorized("invalid user token")
    audiences = data.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if (not isinstance(audiences, list) or audience not in audiences
            or any(not isinstance(a, str) for a in audiences)
            or data.get("exp") is None or data.get("sub") is None):
        raise Unauthorized("invalid user token")
    exp = data["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now:
        raise Unauthorized("user token expired")
    user = data["sub"]
    if not isinstance(user, str) or not USER_ID.match(user):
        raise Unauthorized("user token subject must be 1-128 letters, digits or _.@:-")
    return user, float(exp)


def header(token: str) -> dict[str, Any]:
    """A token's header, decoded strictly (not yet verified: choose a key with it, no more)."""
    return _split(token)[0]


_header = header


_SEGMENT = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _split(token: str) -> tuple[dict[str, Any], list[str]]:
    """The decoded header and the three segments of a compact JWS, read as strictly as PyJWT
    reads them (so nothing it would refuse gets further here), in one pass."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise Unauthorized("invalid token")
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthorized("invalid token")
    try:
        header = json.loads(_b64decode(segments[0]))
    except (ValueError, RecursionError) as exc:
        raise Unauthorized("invalid token") from exc
    if not isinstance(header, dict) or "crit" in header or header.get("b64", True) is not True:
        raise Unauthorized("invalid token")
    return header, segments


def _b64decode(segment: str) -> bytes:
    """Strict base64url: its alphabet only, at most two '=' of padding (which must then make
    whole quads), and the canonical encoding (no stray bits in the last character)."""
    if not _SEGMENT.fullmatch(segment):
        raise Unauthorized("invalid token")
    stripped = segment.rstrip("=")
    if len(stripped) % 4 == 1 or (stripped != segment and len(segment) % 4):
        raise Unauthorized("invalid token")
    raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    if _b64(raw) != stripped:
        raise Unauthorized("invalid token")
    return raw


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_compact = json.JSONEncoder(separators=(",", ":")).encode


def _sign_hs256(payload: dict[str, Any], kid: str, mac_key: bytes) -> str:
    signing_input = (_b64(_compact({"alg": TICKET_ALG, "kid": kid, "typ": "JWT"}).encode())
                     + "." + _b64(_compact(payload).encode()))
    mac = hmac.new(mac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def _verified_hs256(mac_key: bytes, segments: list[str]) -> dict[str, Any]:
    """The payload of an HS256 token whose MAC `mac_key` made, with the claims every token
    of ours carries (as PyJWT's `require` and `issuer` check them for ES256)."""
    expected = hmac.new(mac_key, f"{segments[0]}.{segments[1]}".encode(),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(segments[2])):
        raise Unauthorized("invalid token")
    try:
        data = json.loads(_b64decode(segments[1]))
    except (ValueError, RecursionError) as exc:
        raise Unauthorized("invalid token") from exc
    if (not isinstance(data, dict) or any(data.get(c) is None for c in _REQUIRED)
            or data["iss"] != ISSUER or isinstance(data["exp"], bool)
            or not isinstance(data["exp"], int | float)):
        raise Unauthorized("invalid token")
    return data
