"""Signed, expiring bearer tokens bound to one user and one event.

Format: `base64url(json payload) "." base64url(hmac_sha256(secret, kind "." payload))`. The kind
(`ticket` or `admission`) is inside the MAC, so a ticket token can never pass as an admission
token. Verification is constant-time and checks kind, event and expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from domain.errors import Forbidden, Unauthorized

TICKET = "ticket"
ADMISSION = "admission"


@dataclass(frozen=True)
class Claims:
    kind: str
    user_id: str
    event_id: str
    expires_at: float
    subject: str = ""


def sign(secret: str, claims: Claims) -> str:
    payload = _b64(json.dumps(
        {"k": claims.kind, "u": claims.user_id, "e": claims.event_id,
         "x": round(claims.expires_at, 3), "s": claims.subject},
        separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(secret, claims.kind, payload)}"


def verify(secret: str, token: str, kind: str, event_id: str | None, now: float) -> Claims:
    """Claims of a genuine, unexpired token of `kind` for `event_id` (None: any event)."""
    claims = _decode(secret, token, kind)
    if claims.expires_at <= now:
        raise Unauthorized("token expired")
    if event_id is not None and claims.event_id != event_id:
        raise Forbidden("token is for another event")
    return claims


def _decode(secret: str, token: str, kind: str) -> Claims:
    payload, _, mac = token.partition(".")
    # Bytes, not str: compare_digest raises TypeError on a str with non-ASCII characters.
    if not payload or not hmac.compare_digest(mac.encode(), _mac(secret, kind, payload).encode()):
        raise Unauthorized("invalid token")
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Claims(data["k"], data["u"], data["e"], float(data["x"]), data.get("s", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("invalid token") from exc


def _mac(secret: str, kind: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"{kind}.{payload}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
