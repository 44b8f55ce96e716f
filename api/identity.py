"""Identity: the public keys of the stack's tokens, and development sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.http import Http, client_key, json_response
from api.openapi import Op
from domain import commands, errors


def ops(http: Http) -> list[Op]:
    settings, queue = http.settings, http.queue

    async def jwks(request: Request) -> Response:
        return json_response(http.identity.jwks(),
                             headers={"Cache-Control": "public, max-age=300"})

    async def dev_token(request: Request) -> Response:
        if not settings.dev_issuer:
            raise errors.NotFound("no dev token issuer here")
        await queue.limit_signin(client_key(request, settings.client_addr_header))
        user_id = commands.check_user_id(
            (await http.model(request, models.DevTokenRequest)).user_id)
        return json_response({"token": http.identity.dev_token(user_id), "user_id": user_id,
                              "expires_in_s": settings.dev_user_token_ttl_s})

    return [
        Op("GET", "/.well-known/jwks.json", jwks, (
            "Public keys of ticket and admission tokens (JWK Set), retired ones included"),
           description=(
            "What a gate scanner, a CDN or another service verifies an admission token with "
            "(ES256, `aud` = event id, `kind` = admission); no secret needed."),
           answer=models.JwkSet, tags=("identity",)),
        Op("POST", "/v1/dev/token", dev_token, (
            "A user token for any name (development only; 404 in production)"),
           answer=models.DevToken, body=models.DevTokenRequest,
           raises=(errors.NotFound, errors.RateLimited), tags=("identity",)),
    ]
