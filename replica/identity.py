"""Who is asking, as a Serve replica sees it: the key ring, user tokens, ticket and admission
tokens. The rules are in `domain/tokens.py` and `domain/keyring.py`; this shell adds the clock,
the random token ids, the key file and the issuer's JWKS over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt

from domain import keyring, tokens
from domain.errors import Unauthorized, Unavailable
from domain.settings import Settings


def load_ring(settings: Settings) -> keyring.KeyRing:
    """The configured key ring (inline JSON or a file), or in development one derived key."""
    value = settings.signing_keys.strip()
    if not value:
        return keyring.derived(settings.token_secret, settings.max_token_ttl_s)
    text = value if value.startswith("{") else Path(value).read_text()
    return keyring.parse(text, settings.max_token_ttl_s)


class Identity:
    def __init__(self, settings: Settings, ring: keyring.KeyRing | None = None) -> None:
        self.settings = settings
        self.ring = ring or load_ring(settings)
        self._issuer_keys = (jwt.PyJWKClient(settings.auth_jwks_url, lifespan=300, timeout=5)
                             if settings.auth_jwks_url else None)
        # sha256 of a verified user token -> (its user, trusted until): see `user`
        self._users: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    # -- our tokens ----------------------------------------------------------------------
    def sign(self, claims: tokens.Claims) -> str:
        return tokens.sign(self.ring.active(), claims, time.time(), secrets.token_urlsafe(12))

    def verify(self, token: str, kind: str, event_id: str | None,
               grace_s: float = 0.0) -> tokens.Claims:
        """Claims of a genuine token; `grace_s` accepts one expired at most that long ago
        (finishing a hold made while admitted: the hold's own expiry still applies)."""
        now = time.time()
        keys = self.ring.ticket_macs(now) if kind == tokens.TICKET else self.ring.verifying(now)
        return tokens.verify(keys, token, kind, event_id, now - grace_s)

    def jwks(self) -> dict[str, Any]:
        return self.ring.jwks(time.time())

    # -- users ---------------------------------------------------------------------------
    def dev_token(self, user_id: str) -> str:
        """A user token from the stack itself (development only; the route is absent else)."""
        assert self.settings.dev_issuer
        return tokens.sign_user(self.ring.active(), user_id, self.settings.auth_audience,
                                time.time(), self.settings.dev_user_token_ttl_s,
                                secrets.token_urlsafe(12))

    async def user(self, token: str) -> str:
        """The signed-in user of a bearer user token (Unauthorized when it is not one).

        A token verified once is trusted again, without its signature check (~0.2 ms of the
        replica's CPU for ES256), until it expires or for USER_TOKEN_CACHE_S, whichever is
        sooner: a rejoin, a retry, a challenge then its join. Only verified tokens enter the
        bounded LRU (USER_TOKEN_CACHE_MAX), keyed by the SHA-256 of the whole token, so a
        token differing in any byte (another payload under a copied signature, or an ECDSA
        signature's malleated twin) is verified afresh."""
        now = time.time()
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        known = self._users.get(digest)
        if known is not None:
            if known[1] > now:
                self._users.move_to_end(digest)
                return known[0]
            del self._users[digest]
        kid = tokens.key_id(token)
        if self.settings.dev_issuer:
            key = self.ring.verifying(now).get(kid)
            issuer = tokens.DEV_ISSUER
        else:
            key, issuer = await self._issuer_key(token, kid), self.settings.auth_issuer
        if key is None:
            raise Unauthorized("user token signed by an unknown key")
        user, expires_at = tokens.user_claims(key, token, issuer, self.settings.auth_audience,
                                              now)
        if self.settings.user_token_cache_max:
            self._users[digest] = (user, min(expires_at, now + self.settings.user_token_cache_s))
            if len(self._users) > self.settings.user_token_cache_max:
                self._users.popitem(last=False)
        return user

    async def _issuer_key(self, token: str, kid: str) -> Any:
        assert self._issuer_keys is not None
        try:
            # Cached for `lifespan`; a fetch (first use, expiry, an unknown kid) leaves the loop.
            found = await asyncio.to_thread(self._issuer_keys.get_signing_key, kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable("the identity provider's keys could not be fetched") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("user token signed by an unknown key") from exc
        header_alg = tokens.header(token).get("alg")
        if found.algorithm_name and header_alg != found.algorithm_name:
            raise Unauthorized("user token algorithm does not match its key")
        return found.key
