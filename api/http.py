"""Request plumbing shared by the resource modules of the API: the error answers, bodies
through their models, bearer tokens, conditional (ETag) answers and client keys.

Every error is a `TicketingError` whose class maps to a status in `domain.errors.STATUS`, with
the body `{"error": {"code", "message"}}`; anything unexpected is logged and answered as a 500
without a traceback.
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
from typing import Any, TypeVar

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import models
from domain import errors, tokens
from domain import pow as proof_of_work
from domain import seatmap_codec as codec
from domain.console import StatusTally
from domain.event import Event
from domain.ids import HoldRef, parse_hold_id
from domain.settings import Settings
from replica.client import BookingClient
from replica.identity import Identity
from replica.queue_client import QueueClient
from store import redis_clients
from store.console_feed import ConsoleFeeds
from store.reads import CatalogReads
from store.replicas import ReadRouter
from store.seat_feed import SeatFeeds

log = logging.getLogger("ticketing.http")
T = TypeVar("T")


def error_body(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def on_ticketing_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TicketingError)
    status = errors.status_of(exc)
    response = error_body(exc.code, exc.message, status)
    if isinstance(exc, errors.RateLimited):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    elif status == 503:  # a dependency is down or moving (an owner, Redis failing over)
        response.headers["Retry-After"] = str(redis_clients.RETRY_AFTER_S)
    return response


async def on_redis_error(request: Request, exc: Exception) -> Response:
    """A Redis call of the ingress failed: while the primary is moving (Sentinel failover) or
    unreachable that is the retryable 503 of `Unavailable`; anything else is unexpected."""
    assert isinstance(exc, RedisError)
    if redis_clients.is_failover_error(exc):
        log.warning("redis unavailable on %s %s: %r", request.method, request.url.path, exc)
        return await on_ticketing_error(request, redis_clients.unavailable(exc))
    return await on_unexpected(request, exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_body(code, str(exc.detail), exc.status_code)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_body("internal", "internal error", 500)


class Http:
    """Request plumbing shared by the handlers: body limits, JSON, bearer tokens."""

    def __init__(self, settings: Settings, client: BookingClient) -> None:
        self.settings = settings
        self.client = client
        self.identity = Identity(settings)
        self.queue = QueueClient(settings, client.redis, self.identity)
        self.reads = ReadRouter(client.redis, settings)  # cached reads: a replica when fresh
        self.catalog = CatalogReads(client.redis, self.reads)  # what handlers read, as a service
        self.feeds = SeatFeeds(self.reads, settings)  # live availability, one reader per event
        self.answers = StatusTally()  # error answers per event (the ingress middleware counts)
        self.console = ConsoleFeeds(client.redis, self.queue.stats, self.queue.position_lag,
                                    self.answers)  # the operator console's numbers

    async def body(self, request: Request) -> bytes:
        """The raw body, refused past `max_body_bytes` (declared or streamed)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            raise errors.BodyTooLarge(f"body over {self.settings.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.settings.max_body_bytes:
                raise errors.BodyTooLarge(f"body over {self.settings.max_body_bytes} bytes")
        return bytes(body)

    async def model(self, request: Request, model: type[T], empty: bytes = b"") -> T:
        """The JSON body as `model` (api/models.py), `empty` standing for a missing body;
        anything else is an InvalidRequest with the path of the first wrong field."""
        return models.decode(await self.body(request) or empty, model)

    def bearer(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.Unauthorized("missing Authorization: Bearer token")
        return token.strip()

    def admin(self, request: Request) -> None:
        # Bytes, not str: compare_digest raises TypeError on a str with non-ASCII characters.
        given = self.bearer(request).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.settings.admin_token.encode()):
            raise errors.Unauthorized("admin token required")

    def claims(self, request: Request, kind: str, event_id: str,
               grace_s: float = 0.0) -> tokens.Claims:
        return self.identity.verify(self.bearer(request), kind, event_id, grace_s)

    def holder(self, request: Request, event: Event) -> tokens.Claims:
        """Who may see, release or pay for a hold: an admission to its event, also one that
        lapsed less than a hold's lifetime ago. A hold can only be made while admitted and
        lives `hold_ttl_s`, so this lets a fan finish the holds they have without letting
        anyone make a new one after their admission (docs/security.md)."""
        return self.claims(request, tokens.ADMISSION, event.event_id, event.hold_ttl_s)

    def check_pow(self, event: Event, user_id: str, solution: models.Pow | None) -> None:
        """A join of an event with a difficulty carries a solution of a challenge this stack
        issued to this user for this event, unexpired."""
        if solution is None:
            raise errors.ChallengeRequired(
                f"this event needs a proof of work (difficulty {event.pow_difficulty}): GET "
                f"/v1/events/{event.event_id}/queue/challenge, solve, join with pow")
        challenge, nonce = solution.challenge, solution.nonce
        claims = self.identity.verify(challenge, tokens.CHALLENGE, event.event_id)
        if claims.user_id != user_id:
            raise errors.Forbidden("this challenge was issued to another user")
        if not proof_of_work.solves(challenge, nonce, event.pow_difficulty):
            raise errors.ChallengeRequired("the nonce does not solve the challenge")

    async def hold_of(self, request: Request) -> tuple[HoldRef, Event, tokens.Claims]:
        """The hold of the path (`hold_id`), its event, and its holder's claims; a 404 for a
        hold id naming a block the venue does not have."""
        ref = parse_hold_id(request.path_params["hold_id"])
        event = await self.client.event(ref.event_id)
        claims = self.holder(request, event)
        if ref.block >= len(event.venue.blocks):
            raise errors.NotFound("no such hold")
        return ref, event, claims

    async def user(self, request: Request) -> str:
        """The signed-in user: the `sub` of a valid bearer user token (401 without one)."""
        return await self.identity.user(self.bearer(request))


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
GZIP_MIN_BYTES = 16_384  # below this gzip saves a few packets and costs CPU on the hot path
GZIP_LEVEL = 5


class Body:
    """An encoded response body, with its gzip made at most once (bodies are cached)."""

    def __init__(self, data: bytes, etag: str) -> None:
        self.data, self.etag = data, etag
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.data, GZIP_LEVEL, mtime=0)
        return self._gzipped


def not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    """304 when the client's If-None-Match names `etag`, else None."""
    if codec.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag} | headers)
    return None


def conditional(request: Request, body: Body, headers: dict[str, str] | None = None,
                cache_control: str = "no-cache") -> Response:
    """The body with its ETag (304 on a match) and gzip when it is large and accepted; small
    bodies are never compressed."""
    out = {"ETag": body.etag, "Cache-Control": cache_control} | (headers or {})
    unchanged = not_modified(request, body.etag, out)
    if unchanged is not None:
        return unchanged
    if len(body.data) >= GZIP_MIN_BYTES:
        out["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            return Response(body.gzipped(), media_type="application/json",
                            headers=out | {"Content-Encoding": "gzip"})
    return Response(body.data, media_type="application/json", headers=out)


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer encoded by msgspec (several times json.dumps' speed on the hot paths)."""
    return Response(models.encode(data), status_code=status, headers=headers,
                    media_type="application/json")


def client_key(request: Request, addr_header: str) -> str:
    """Whom address limits count: the address the hardened ingress wrote into `addr_header`
    (it deletes any client-sent copy), else the peer. Never X-Forwarded-For: clients write it,
    and HAProxy as Ray configures it passes theirs through."""
    if addr_header:
        written = request.headers.get(addr_header, "")
        if written and len(written) <= 64:
            return written
    return request.client.host if request.client else "unknown"
