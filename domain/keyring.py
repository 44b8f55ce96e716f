"""The asymmetric keys that sign ticket and admission tokens, and their rotation.

Why asymmetric: a gate scanner, a CDN or another service checks an admission with the public
keys from `GET /.well-known/jwks.json` alone, and holds no secret that could mint one.

A key ring is a private JWK Set (RFC 7517) with two members of our own per key, `created_at`
and, once it has been replaced, `retired_at` (epoch seconds). The newest key that is not
retired signs; a retired key keeps verifying, and stays published, until the last token it can
have signed has expired: `retired_at + max_token_ttl_s`. After that it is dropped, so a leaked
old key is useful for no longer than one token lifetime.

Pure: keys are parsed, chosen and published here with the time passed in; generating a new key
(randomness) and reading the key file are the callers' business (`infra/signing_keys.py`,
`serve_app.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm

ALG = "ES256"
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    created_at: float
    retired_at: float | None = None

    @cached_property
    def ticket_mac(self) -> bytes:
        """The HMAC key of the ticket tokens this key signs (HS256): derived from the private
        key (HKDF-SHA256), so it is exactly as secret as the key, rotates and retires with it,
        and is never published. Ticket tokens are checked only by the replicas that mint
        them, so an asymmetric signature would buy nothing there (docs/security.md)."""
        scalar = self.private.private_numbers().private_value.to_bytes(32, "big")
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ticketing",
                    info=b"ticket token mac " + self.kid.encode()).derive(scalar)

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True))
        return jwk | {"kid": self.kid, "alg": ALG, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        jwk = dict(ECAlgorithm.to_jwk(self.private, as_dict=True))
        extra: dict[str, Any] = {"kid": self.kid, "alg": ALG, "created_at": self.created_at}
        if self.retired_at is not None:
            extra["retired_at"] = self.retired_at
        return jwk | extra


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[SigningKey, ...]
    max_token_ttl_s: float

    def active(self) -> SigningKey:
        """The key that signs now: the newest one not retired."""
        live = [k for k in self.keys if k.retired_at is None]
        if not live:
            raise ValueError("the key ring has no active (unretired) key")
        return max(live, key=lambda k: k.created_at)

    def verifying(self, now: float) -> dict[str, ec.EllipticCurvePublicKey]:
        """kid -> public key of every key whose tokens can still be unexpired at `now`."""
        return {k.kid: self._publics[k.kid] for k in self.keys if self._published(k, now)}

    def ticket_macs(self, now: float) -> dict[str, bytes]:
        """kid -> HMAC key of ticket tokens, for the same keys as `verifying`."""
        return {k.kid: k.ticket_mac for k in self.keys if self._published(k, now)}

    @cached_property
    def _publics(self) -> dict[str, ec.EllipticCurvePublicKey]:
        return {k.kid: k.private.public_key() for k in self.keys}  # derived once, not per call

    def jwks(self, now: float) -> dict[str, Any]:
        """The public JWK Set: what `/.well-known/jwks.json` serves."""
        return {"keys": [k.public_jwk() for k in self.keys if self._published(k, now)]}

    def rotate(self, new: SigningKey, now: float) -> KeyRing:
        """`new` signs from now on; every other live key is retired at `now`; keys whose
        tokens have all expired are dropped."""
        kept = [k if k.retired_at is not None else replace(k, retired_at=now)
                for k in self.keys if self._published(k, now)]
        return replace(self, keys=(*kept, new))

    def to_json(self) -> str:
        """The private key set, as `TICKETING_SIGNING_KEYS` holds it."""
        return json.dumps({"keys": [k.private_jwk() for k in self.keys]}, indent=1)

    def _published(self, key: SigningKey, now: float) -> bool:
        return key.retired_at is None or now < key.retired_at + self.max_token_ttl_s


def parse(text: str, max_token_ttl_s: float) -> KeyRing:
    """A key ring from its private JWK Set (ValueError saying what is wrong)."""
    try:
        data = json.loads(text)
        keys = tuple(_key(item) for item in data["keys"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"signing keys are not a private EC P-256 JWK Set: {exc}") from exc
    if len({k.kid for k in keys}) != len(keys):
        raise ValueError("signing key ids (kid) must be unique")
    ring = KeyRing(keys, max_token_ttl_s)
    ring.active()
    return ring


def _key(item: dict[str, Any]) -> SigningKey:
    private = ECAlgorithm.from_jwk(json.dumps(item))
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ValueError(f"key {item.get('kid')!r} is not a P-256 private key")
    kid = item["kid"]
    if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
        raise ValueError("each key needs a kid of 1 to 64 characters")
    retired = item.get("retired_at")
    return SigningKey(kid, private, float(item.get("created_at", 0)),
                      None if retired is None else float(retired))


def from_private_key(private: ec.EllipticCurvePrivateKey, created_at: float) -> SigningKey:
    """A signing key named by its RFC 7638 thumbprint (so the kid says nothing secret)."""
    public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    members = json.dumps({k: public[k] for k in ("crv", "kty", "x", "y")},
                         separators=(",", ":"), sort_keys=True)
    kid = _b64(hashlib.sha256(members.encode()).digest())[:22]
    return SigningKey(kid, private, created_at)


def derived(secret: str, max_token_ttl_s: float) -> KeyRing:
    """Development only: a one-key ring derived (HKDF-SHA256) from the token secret, so a
    stack that was given just a random `TICKETING_TOKEN_SECRET` has a random signing key too,
    the same in every replica. Production requires `TICKETING_SIGNING_KEYS`."""
    okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=b"ticketing",
               info=b"es256 token signing key").derive(secret.encode())
    scalar = int.from_bytes(okm, "big") % (_P256_ORDER - 1) + 1
    return KeyRing((from_private_key(ec.derive_private_key(scalar, ec.SECP256R1()), 0.0),),
                   max_token_ttl_s)


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
