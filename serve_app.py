"""HTTP ingress on Ray Serve + Starlette: translates requests into owner (actor) calls.

Handlers parse, call, and shape JSON; rules live in `domain/`, owners in `actors/`. Every
error is a `TicketingError` whose class maps to a status in `STATUS` below, with the body
`{"error": {"code", "message"}}`; anything unexpected is logged and answered as a 500 without
a traceback.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import json
import logging
import random
import time
from pathlib import Path
from typing import Any, cast

from ray import serve
from ray.serve.schema import LoggingConfig
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from actors import directory, logs
from actors.client import BookingClient
from actors.identity import Identity
from actors.queue_client import QueueClient
from domain import availability, commands, errors, tokens
from domain import pow as proof_of_work
from domain import seatmap_codec as codec
from domain.event import Event, iso, parse_event, parse_rate
from domain.holds import Hold
from domain.ids import new_event_id, parse_booking_id, parse_hold_id
from domain.settings import Settings
from store import catalog, redis_clients
from store.metrics import HTTP_DURATION, HTTP_REQUESTS
from store.replicas import ReadRouter
from store.seat_feed import SeatFeed, SeatFeeds, SeatStream

log = logging.getLogger("ticketing.http")

STATUS: dict[type[errors.TicketingError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.PaymentDeclined: 402,
    errors.Forbidden: 403,
    errors.NotOnSale: 403,
    errors.NotFound: 404,
    errors.SeatsUnavailable: 409,
    errors.UserLimitExceeded: 409,
    errors.CardLimitExceeded: 409,
    errors.HoldNotActive: 409,
    errors.HoldAlreadyConfirmed: 409,
    errors.CheckoutInProgress: 409,
    errors.EventClosed: 409,
    errors.HoldExpired: 410,
    errors.BodyTooLarge: 413,
    errors.SeatsNotInOneBlock: 422,
    errors.ChallengeRequired: 428,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
    errors.StaleOwner: 503,
}


def error_body(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def on_ticketing_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TicketingError)
    status = next(s for cls, s in STATUS.items() if isinstance(exc, cls)) \
        if any(isinstance(exc, c) for c in STATUS) else 400
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
        self.feeds = SeatFeeds(self.reads, settings)  # live availability, one reader per event

    async def json(self, request: Request, empty: Any = None) -> Any:
        """The JSON body (`empty` when there is none and that is allowed)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            raise errors.BodyTooLarge(f"body over {self.settings.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.settings.max_body_bytes:
                raise errors.BodyTooLarge(f"body over {self.settings.max_body_bytes} bytes")
        if not body and empty is not None:
            return empty
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.InvalidRequest("body is not valid JSON") from exc
        except RecursionError as exc:  # e.g. 50,000 nested '[': the decoder's stack, not ours
            raise errors.InvalidRequest("body is nested too deeply") from exc

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

    def check_pow(self, event: Event, user_id: str, body: Any) -> None:
        """A join of an event with a difficulty carries a solution of a challenge this stack
        issued to this user for this event, unexpired."""
        solution = commands.parse_pow(body)
        if solution is None:
            raise errors.ChallengeRequired(
                f"this event needs a proof of work (difficulty {event.pow_difficulty}): GET "
                f"/v1/events/{event.event_id}/queue/challenge, solve, join with pow")
        challenge, nonce = solution
        claims = self.identity.verify(challenge, tokens.CHALLENGE, event.event_id)
        if claims.user_id != user_id:
            raise errors.Forbidden("this challenge was issued to another user")
        if not proof_of_work.solves(challenge, nonce, event.pow_difficulty):
            raise errors.ChallengeRequired("the nonce does not solve the challenge")

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


def client_key(request: Request, addr_header: str) -> str:
    """Whom address limits count: the address the hardened ingress wrote into `addr_header`
    (it deletes any client-sent copy), else the peer. Never X-Forwarded-For: clients write it,
    and HAProxy as Ray configures it passes theirs through."""
    if addr_header:
        written = request.headers.get(addr_header, "")
        if written and len(written) <= 64:
            return written
    return request.client.host if request.client else "unknown"


def hold_view(hold: Hold) -> dict[str, Any]:
    return {"hold_id": hold.hold_id, "event_id": hold.event_id, "status": hold.visible_status(
        time.time()), "seat_ids": list(hold.seat_ids), "section": hold.section,
        "total_cents": hold.total_cents, "expires_at": iso(hold.expires_at),
        "expires_in_s": max(0.0, round(hold.expires_at - time.time(), 3))}


def event_view(event: Event, free: dict[int, int], now: float) -> dict[str, Any]:
    per_section = {s.name: 0 for s in event.sections}
    for block in event.venue.blocks:
        per_section[block.section] += free.get(block.index, block.seats_total)
    lowest, highest = event.price_range_cents
    return {"event_id": event.event_id, "name": event.name, "onsale_at": iso(event.onsale_at),
            "state": event.sale_state(sum(per_section.values()), now).value,
            "price_min_cents": lowest, "price_max_cents": highest,
            "ends_at": iso(event.ends_at) if event.ends_at is not None else None,
            "closed_at": iso(event.closed_at) if event.closed_at is not None else None,
            "hold_ttl_s": event.hold_ttl_s, "max_seats_per_user": event.max_seats_per_user,
            "admission_rate_per_s": event.admission_rate_per_s,
            "pow_difficulty": event.pow_difficulty, "seats_total": event.venue.seats_total,
            "seats_available": sum(per_section.values()),
            "sections": [{"name": s.name, "rows": s.rows, "seats_per_row": s.seats_per_row,
                          "price_cents": s.price_cents, "seats_available": per_section[s.name]}
                         for s in event.sections]}


def build_routes(http: Http) -> list[BaseRoute]:
    client, settings, queue = http.client, http.settings, http.queue
    # seat maps by (event, format, section): built once per (version, prices), gzipped once
    seat_map_cache: dict[tuple[str, str, str], tuple[str, Body]] = {}
    layouts: dict[str, Body] = {}

    async def create_event(request: Request) -> Response:
        """
        summary: Create an event (admin)
        responses: {201: {description: the event}, 400: {description: bad input}}
        """
        http.admin(request)
        event = parse_event(await http.json(request), new_event_id(), time.time(),
                            settings.hold_ttl_s, settings.max_seats_per_user,
                            settings.block_max_seats, settings.max_quantity,
                            settings.admission_rate_per_s, settings.event_length_s)
        event = await client.call(client.owner(event).create.remote(event))
        free = {b.index: b.seats_total for b in event.venue.blocks}
        return JSONResponse(event_view(event, free, time.time()), status_code=201)

    async def close_event(request: Request) -> Response:
        """
        summary: Close the event (admin); its entities stop, its bookings stay readable
        responses: {200: {description: the closed event}}
        """
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        closed = await client.call(client.owner(event).close.remote())
        client.forget(event.event_id)
        free = await catalog.availability(client.redis, event.event_id)
        return JSONResponse(event_view(closed, free, time.time()))

    async def get_event(request: Request) -> Response:
        """
        summary: Event details, prices and live availability (from the cache)
        responses: {200: {description: the event}, 404: {description: no such event}}
        """
        event_id = request.path_params["event_id"]
        (event, free), source = await http.reads.read(
            lambda redis: catalog.event_details(redis, event_id))
        if event is None:
            raise errors.NotFound(f"no such event: {event_id[:40]}")
        data = json_bytes(event_view(event, free, time.time()))
        return conditional(request, Body(data, codec.etag_of(data)), source.headers())

    async def list_events(request: Request) -> Response:
        """
        summary: The events open now, newest first (name, date, sections, prices, seats left,
          sale state); ?limit=1..100, default 50
        responses: {200: {description: the events}, 400: {description: bad limit}}
        """
        limit = commands.parse_limit(request.query_params.get("limit"))
        events, source = await http.reads.read(lambda redis: catalog.open_events(redis, limit))
        now = time.time()
        data = json_bytes({"events": [event_view(e, free, now) for e, free in events]})
        return conditional(request, Body(data, codec.etag_of(data)), source.headers())

    async def layout(request: Request) -> Response:
        """
        summary: The venue layout of the compact seat format (seatmap-v1), cacheable
        description: Sections and blocks in order; block k's states in a compact snapshot or
          map are read with it (see components.schemas.SeatmapV1). It never changes for an
          event; its ETag is a hash of its bytes, and If-None-Match answers 304.
        responses: {200: {description: the layout}, 304: {description: unchanged},
                    404: {description: no such event}}
        """
        event = await client.event(request.path_params["event_id"])
        body = layouts.get(event.event_id)
        if body is None:
            data = codec.layout_body(event.venue)
            body = layouts[event.event_id] = Body(data, codec.etag_of(data))
            if len(layouts) > 1024:
                layouts.clear()
        return conditional(request, body, cache_control="public, max-age=3600")

    async def set_price(request: Request) -> Response:
        """
        summary: Change a section's price (admin); existing holds keep theirs
        responses: {200: {description: the event}}
        """
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        event.venue.section(request.path_params["name"])
        price = commands.parse_price(await http.json(request))
        updated = await client.call(client.owner(event).set_price.remote(
            request.path_params["name"], price))
        free = await catalog.availability(client.redis, event.event_id)
        return JSONResponse(event_view(updated, free, time.time()))

    async def seats(request: Request) -> Response:
        """
        summary: The seat map - every seat with price and status, or one section; or compact
        description: format=json (default) lists seats by id with price and status;
          format=compact gives seatmap-v1 block states (components.schemas.SeatmapV1) with
          the seat version and the layout's ETag. section=B keeps one section. The ETag
          follows the seat version and prices (If-None-Match answers 304); large bodies are
          gzipped when the client accepts it.
        parameters:
          - {name: section, in: query, schema: {type: string}}
          - {name: format, in: query, schema: {type: string, enum: [json, compact]}}
        responses: {200: {description: the seat map}, 304: {description: unchanged},
                    400: {description: unknown section or format}}
        """
        event = await client.event(request.path_params["event_id"])
        fmt = availability.parse_format(request.query_params.get("format"))
        section = request.query_params.get("section") or ""
        if section:
            event.venue.section(section[:40])  # 400 for a section the venue does not have
        (current, version), source = await http.reads.read(
            lambda redis: catalog.event_and_seat_version(redis, event.event_id))
        feed = await http.feeds.get(event)
        await feed.wait_for(version, settings.replica_max_staleness_s)  # as fresh as the read
        shown = current or event
        prices = ",".join(f"{s.name}={s.price_cents}" for s in shown.sections)
        etag = codec.etag_of(f"{feed.board.version}|{prices}|{fmt}|{section}".encode())
        unchanged = not_modified(request, etag, {"Cache-Control": "no-cache"} | source.headers())
        if unchanged is not None:
            return unchanged
        key = (event.event_id, fmt, section)
        cached = seat_map_cache.get(key)
        if cached is None or cached[0] != etag:
            data = (compact_map_body(shown, feed, section) if fmt == "compact"
                    else seat_map_body(shown, feed.board.statuses, section))
            if len(seat_map_cache) > 1024:
                seat_map_cache.clear()
            cached = seat_map_cache[key] = (etag, Body(data, etag))
        return conditional(request, cached[1], source.headers())

    async def join_queue(request: Request) -> Response:
        """
        summary: Join the event's waiting room, stamped by NTP time; a rejoin keeps its place
        responses: {202: {description: the ticket and its token}, 429: {description: slow down}}
        """
        user_id = await http.user(request)
        event = await client.event(request.path_params["event_id"])
        # Before the body is read: parsing is the expensive part.
        await queue.limit_join(event.event_id, client_key(request, settings.client_addr_header),
                               user_id)
        body = await http.json(request, empty={})
        code = commands.parse_join(body, user_id)
        if event.pow_difficulty:
            http.check_pow(event, user_id, body)
        ticket = await queue.join(event, user_id, code)
        return JSONResponse(ticket, status_code=202)

    async def challenge(request: Request) -> Response:
        """
        summary: A proof-of-work challenge for the signed-in user (events with pow_difficulty)
        description: Find a nonce such that SHA-256 of "challenge:nonce" starts with
          `difficulty` zero bits, then join with the pow object (challenge and nonce).
        responses: {200: {description: "{challenge, difficulty, expires_in_s}"}}
        """
        user_id = await http.user(request)
        event = await client.event(request.path_params["event_id"])
        await queue.limit_signin(client_key(request, settings.client_addr_header))
        token = http.identity.sign(tokens.Claims(
            tokens.CHALLENGE, user_id, event.event_id, time.time() + settings.pow_challenge_ttl_s))
        return JSONResponse({"challenge": token, "difficulty": event.pow_difficulty,
                             "expires_in_s": settings.pow_challenge_ttl_s})

    async def queue_status(request: Request) -> Response:
        """
        summary: State, position, ETA range and, once admitted, the admission token
        responses: {200: {description: the ticket's state}}
        """
        event = await client.event(request.path_params["event_id"])
        claims = http.claims(request, tokens.TICKET, event.event_id)
        who = client_key(request, settings.client_addr_header)
        return JSONResponse(await queue.status(event, request.path_params["ticket_id"], claims, who))

    async def queue_stream(request: Request) -> Response:
        """
        summary: Server-Sent Events of position, admitted, sold_out (token in ?token=)
        responses: {200: {description: an event stream}}
        """
        event = await client.event(request.path_params["event_id"])
        claims = http.identity.verify(request.query_params.get("token", ""), tokens.TICKET,
                                      event.event_id)
        events = await queue.stream(event, request.path_params["ticket_id"], claims,
                                    request.headers.get("last-event-id"))
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def queue_stats(request: Request) -> Response:
        """
        summary: Waiting, admitted, admission rate and oldest wait (admin)
        responses: {200: {description: the room's numbers}}
        """
        http.admin(request)
        return JSONResponse(await queue.stats(await client.event(request.path_params["event_id"])))

    async def patch_event(request: Request) -> Response:
        """
        summary: Change the admission rate live (admin)
        responses: {200: {description: the event}}
        """
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        rate = parse_rate(commands.field(await http.json(request), "admission_rate_per_s"))
        updated = await client.call(client.owner(event).set_admission_rate.remote(rate))
        client.forget(event.event_id)
        free = await catalog.availability(client.redis, event.event_id)
        return JSONResponse(event_view(updated, free, time.time()))

    async def event_fairness(request: Request) -> Response:
        """
        summary: Lottery commitment and seed, pre-queue entrants, admission log head
        responses: {200: {description: what anyone needs to recompute the order}}
        """
        return JSONResponse(await queue.fairness(
            await client.event(request.path_params["event_id"])))

    async def ticket_proof(request: Request) -> Response:
        """
        summary: A ticket's admission log entry and the chain from it to the head
        responses: {200: {description: the proof}, 404: {description: not admitted}}
        """
        event = await client.event(request.path_params["event_id"])
        return JSONResponse(await queue.proof(event, request.path_params["ticket_id"]))

    async def create_hold(request: Request) -> Response:
        """
        summary: Hold seats (explicit seat_ids, or section and quantity) for hold_ttl_s
        responses: {201: {description: the hold}, 409: {description: seats_unavailable}}
        """
        event = await client.event(request.path_params["event_id"])
        claims = http.claims(request, tokens.ADMISSION, event.event_id)
        command = commands.parse_hold(await http.json(request), settings.max_quantity)
        hold = await client.hold(event, claims.user_id, command)
        return JSONResponse(hold_view(hold), status_code=201)

    async def get_hold(request: Request) -> Response:
        """
        summary: A hold's status, seats, locked price and expiry (its holder only)
        responses: {200: {description: the hold}}
        """
        ref = parse_hold_id(request.path_params["hold_id"])
        event = await client.event(ref.event_id)
        claims = http.holder(request, event)
        if ref.block >= len(event.venue.blocks):
            raise errors.NotFound("no such hold")
        hold = await catalog.load_hold(client.redis, ref, event.venue.blocks[ref.block])
        if hold is None or hold.user_id != claims.user_id:
            raise errors.NotFound("no such hold")
        return JSONResponse(hold_view(hold))

    async def release_hold(request: Request) -> Response:
        """
        summary: Release a hold (its holder only); its seats are available at once
        responses: {204: {description: released}}
        """
        ref = parse_hold_id(request.path_params["hold_id"])
        event = await client.event(ref.event_id)
        claims = http.holder(request, event)
        if ref.block >= len(event.venue.blocks):
            raise errors.NotFound("no such hold")
        await client.call(client.block(ref.event_id, ref.block).release.remote(
            ref.hold_id, claims.user_id))
        return Response(status_code=204)

    async def checkout(request: Request) -> Response:
        """
        summary: Pay for a hold; the booking is confirmed once it is in the ledger
        parameters: [{name: Idempotency-Key, in: header, schema: {type: string}}]
        responses: {201: {description: the booking}, 402: {description: declined},
                    410: {description: the hold expired}}
        """
        ref = parse_hold_id(request.path_params["hold_id"])
        event = await client.event(ref.event_id)
        claims = http.holder(request, event)
        key = commands.parse_idempotency_key(request.headers.get("idempotency-key"))
        payment_token = commands.parse_payment_token(await http.json(request))
        if ref.block >= len(event.venue.blocks):
            raise errors.NotFound("no such hold")
        booking = await client.checkout(ref.event_id, ref.block, ref.hold_id, claims.user_id,
                                        key, payment_token)
        return JSONResponse(booking, status_code=201)

    async def get_booking(request: Request) -> Response:
        """
        summary: A confirmed booking (its owner only)
        responses: {200: {description: the booking}}
        """
        ref = parse_booking_id(request.path_params["booking_id"])
        claims = http.claims(request, tokens.ADMISSION, ref.event_id)
        booking = await catalog.load_booking(client.redis, ref)
        if booking is None or booking["user_id"] != claims.user_id:
            raise errors.NotFound("no such booking")
        return JSONResponse(booking)

    async def jwks(request: Request) -> Response:
        """
        summary: Public keys of ticket and admission tokens (JWK Set), retired ones included
        description: What a gate scanner, a CDN or another service verifies an admission
          token with (ES256, `aud` = event id, `kind` = admission); no secret needed.
        responses: {200: {description: a JWK Set}}
        """
        return JSONResponse(http.identity.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def dev_token(request: Request) -> Response:
        """
        summary: A user token for any name (development only; 404 in production)
        responses: {200: {description: "{token}"}, 404: {description: not in production}}
        """
        if not settings.dev_issuer:
            raise errors.NotFound("no dev token issuer here")
        await queue.limit_signin(client_key(request, settings.client_addr_header))
        user_id = commands.parse_user_id(await http.json(request))
        return JSONResponse({"token": http.identity.dev_token(user_id), "user_id": user_id,
                             "expires_in_s": settings.dev_user_token_ttl_s})

    async def healthz(request: Request) -> Response:
        """
        summary: 200 when Redis, Kafka and the actors answer; 503 otherwise
        responses: {200: {description: healthy}, 503: {description: a dependency is down}}
        """
        checks = await health_checks(client)
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"status": "ok" if status == 200 else "degraded", "checks": checks},
                            status_code=status)

    async def metrics(request: Request) -> Response:
        """Gone: metrics are on Ray's Prometheus endpoint of each node (store/metrics.py)."""
        return error_body("moved", "metrics are served by Ray's metrics agent on every node, at "
                          "http://<node>:<metrics_export_port>/metrics (`make status` shows the "
                          "port); see README, Metrics", 410)

    async def openapi(request: Request) -> Response:
        return JSONResponse(SCHEMAS.get_schema(routes))

    routes = [
        Route("/v1/events", create_event, methods=["POST"]),
        Route("/v1/events", list_events, methods=["GET"]),
        Route("/v1/events/{event_id}", get_event, methods=["GET"]),
        Route("/v1/events/{event_id}/sections/{name}", set_price, methods=["PATCH"]),
        Route("/v1/events/{event_id}/seats", seats, methods=["GET"]),
        Route("/v1/events/{event_id}/layout", layout, methods=["GET"]),
        Route("/v1/events/{event_id}/queue", join_queue, methods=["POST"]),
        Route("/v1/events/{event_id}", patch_event, methods=["PATCH"]),
        Route("/v1/events/{event_id}/close", close_event, methods=["POST"]),
        Route("/v1/events/{event_id}/queue/stats", queue_stats, methods=["GET"]),
        Route("/v1/events/{event_id}/queue/challenge", challenge, methods=["GET"]),
        Route("/v1/events/{event_id}/queue/{ticket_id}", queue_status, methods=["GET"]),
        Route("/v1/events/{event_id}/queue/{ticket_id}/stream", queue_stream, methods=["GET"]),
        Route("/v1/events/{event_id}/fairness", event_fairness, methods=["GET"]),
        Route("/v1/events/{event_id}/fairness/{ticket_id}", ticket_proof, methods=["GET"]),
        Route("/v1/events/{event_id}/holds", create_hold, methods=["POST"]),
        Route("/v1/holds/{hold_id}", get_hold, methods=["GET"]),
        Route("/v1/holds/{hold_id}", release_hold, methods=["DELETE"]),
        Route("/v1/holds/{hold_id}/checkout", checkout, methods=["POST"]),
        Route("/v1/bookings/{booking_id}", get_booking, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/v1/dev/token", dev_token, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"], include_in_schema=True),
        Route("/metrics", metrics, methods=["GET"], include_in_schema=False),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *build_live_routes(http),
    ]
    return routes


WEB_DIR = Path(__file__).resolve().parent / "web"


def seat_map_body(event: Event, statuses: dict[str, str], section: str = "") -> bytes:
    prices = {s.name: s.price_cents for s in event.sections}
    return json.dumps({"event_id": event.event_id, "seats": [
        {"seat_id": seat, "section": block.section, "row": block.first_row + i //
         block.seats_per_row, "number": i % block.seats_per_row + 1,
         "price_cents": prices[block.section], "status": statuses[seat]}
        for block in event.venue.blocks if not section or block.section == section
        for i, seat in enumerate(block.seat_ids())]},
        separators=(",", ":")).encode()


def compact_map_body(event: Event, feed: SeatFeed, section: str = "") -> bytes:
    """The map in seatmap-v1: block states from `first_block` on (a section's blocks are
    consecutive), the seat version, and the layout's ETag."""
    blocks = event.venue.blocks_of(section) if section else list(event.venue.blocks)
    first, last = blocks[0].index, blocks[-1].index
    return json_bytes({"event_id": event.event_id, "version": feed.board.version,
                       "format": codec.FORMAT, "layout": feed.layout_etag,
                       "first_block": first, "blocks": feed.board.block_states(first, last)})


def build_live_routes(http: Http) -> list[BaseRoute]:
    """The availability stream and the web pages (issue 4)."""

    async def availability_stream(request: Request) -> Response:
        """
        summary: Live seat statuses (SSE) - a snapshot, then deltas at most every 200 ms
        description: Each event's id is the seat version; a reconnect with Last-Event-ID
          resumes from it, or gets a fresh snapshot when it is too old. format=json (default)
          sends seats by id ({"version","seats":{"A-1-1":"available"}}); format=compact sends
          seatmap-v1 (components.schemas.SeatmapV1) - snapshot {"version","format","layout",
          "blocks"}, delta {"version","runs"} - about 20 KB for 60,000 seats at worst.
        parameters:
          - {name: format, in: query, schema: {type: string, enum: [json, compact]}}
          - {name: Last-Event-ID, in: header, schema: {type: integer}}
        responses: {200: {description: text/event-stream of snapshot, delta, error}}
        """
        event = await http.client.event(request.path_params["event_id"])
        compact = availability.parse_format(request.query_params.get("format")) == "compact"
        feed = await http.feeds.get(event)
        last_seen = availability.parse_last_event_id(
            request.headers.get("last-event-id") or request.query_params.get("last_event_id"))
        return SeatStream(feed, last_seen, compact, availability.retry_hint(random.random()), {
            "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} | feed.source.headers())

    async def home(request: Request) -> Response:
        return RedirectResponse("/app/")

    return [
        Route("/v1/events/{event_id}/availability/stream", availability_stream, methods=["GET"]),
        Route("/", home, methods=["GET"], include_in_schema=False),
        Mount("/app", StaticFiles(directory=WEB_DIR, html=True, check_dir=False), name="web"),
    ]


SEATMAP_V1 = {
    "description": (
        "Compact seat states (one definition: domain/seatmap_codec.py; decoded by "
        "web/seatmap.js; vectors in tests/fixtures/seatmap_vectors.json). Status codes: 0 "
        "available, 1 held, 2 sold. The layout (GET /v1/events/{id}/layout) lists the blocks in "
        "order; block k's seat i (0-based, row-major) is row first_row + i // seats_per_row, "
        "number i % seats_per_row + 1. A block's states are one string: 'B' + base64 of a 2-bit "
        "bitmap (seat i in byte i // 4, the first seat in the two most significant bits, pad "
        "bits 0) or 'R' + base64 of runs covering the block in order, each an unsigned LEB128 "
        "varint (length << 2) | status; the server sends the shorter. A delta's runs are base64 "
        "of varints, three per run, sorted by (block, start): block - previous block; start - "
        "end of the previous run if in the same block, else start; (length << 2) | status. "
        "Decoding starts at block 0, end 0."),
    "type": "object",
    "properties": {
        "version": {"type": "integer", "description": "seat version (the SSE id)"},
        "format": {"type": "string", "enum": [codec.FORMAT]},
        "layout": {"type": "string", "description": "ETag of the layout the blocks are read with"},
        "first_block": {"type": "integer", "description": "index of blocks[0] (seat map only)"},
        "blocks": {"type": "array", "items": {"type": "string"}},
        "runs": {"type": "string", "description": "a delta's changed seats"}}}

SCHEMAS = SchemaGenerator({"openapi": "3.0.3", "info": {
    "title": "Ticketing", "version": "1.0",
    "description": "High-demand on-sales: waiting room, seat holds, checkout."},
    "components": {"schemas": {"SeatmapV1": SEATMAP_V1}}})


async def health_checks(client: BookingClient) -> dict[str, bool]:
    async def redis_ok() -> bool:
        return bool(await client.redis.ping())

    async def kafka_ok() -> bool:
        host, _, port = client.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        return True

    async def actors_ok() -> bool:
        """Every live host of the pool answers."""
        await asyncio.gather(*[client.call(host.ping.remote())
                               for host in directory.hosts(client.settings)])
        return True

    names = ("redis", "kafka", "actors")
    results = await asyncio.gather(
        *[asyncio.wait_for(check(), 5) for check in (redis_ok, kafka_ok, actors_ok)],
        return_exceptions=True)
    return {name: result is True for name, result in zip(names, results, strict=True)}


def metered(app: Any) -> Any:
    """ASGI middleware: request counts and latency per route template, recorded when the
    response head is handed over (a stream counts at its start, not its end), into children
    bound once per (route, status) (store/metrics.py: a record is a Python add, no Ray call)."""
    counters: dict[tuple[str, int], Any] = {}
    timers: dict[str, Any] = {}

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start, answered = time.perf_counter(), [False]

        def record(status: int) -> None:
            answered[0] = True
            name = getattr(scope.get("route"), "path", "unmatched")
            counter = counters.get((name, status))
            if counter is None:
                counter = counters[(name, status)] = HTTP_REQUESTS.bind(name, str(status))
            timer = timers.get(name)
            if timer is None:
                timer = timers[name] = HTTP_DURATION.bind(name)
            counter.inc()
            timer.observe(time.perf_counter() - start)

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                record(message["status"])
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            if not answered[0]:  # no head went out: the client left, or the app failed first
                record(500)

    return wrapper


def build_asgi_app(settings: Settings) -> Any:
    logs.configure()
    redis = redis_clients.primary(settings, max_connections=512)
    http = Http(settings, BookingClient(settings, redis))
    app = Starlette(routes=build_routes(http), exception_handlers={
        errors.TicketingError: on_ticketing_error, HTTPException: on_http_error,
        RedisError: on_redis_error, Exception: on_unexpected})
    return metered(app)


@serve.deployment(
    ray_actor_options={"num_cpus": 0}, max_ongoing_requests=10_000,
    logging_config=LoggingConfig(enable_access_log=False))
@serve.ingress()
class Api:
    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or Settings.from_env()

    def __serve_build_asgi_app__(self) -> Any:
        return build_asgi_app(self._settings)


def deploy(settings: Settings, name: str = "ticketing", route_prefix: str = "/") -> None:
    """Start Serve on loopback and run the app without blocking (Ray must be initialised).
    Another name and route prefix run a second app beside it (a test's own settings)."""
    serve.start(proxy_location=settings.proxy_location,
                http_options={"host": settings.http_host, "port": settings.http_port})
    placement = {"resources": {settings.ingress_resource: 0.001}} if settings.ingress_resource else {}
    api = cast(Any, Api).options(num_replicas=settings.serve_replicas,
                                 logging_config=LoggingConfig(enable_access_log=settings.access_log),
                      ray_actor_options={"num_cpus": 0, **placement})
    serve.run(api.bind(settings), name=name, route_prefix=route_prefix, blocking=False)


app = cast(Any, Api).bind()  # for `serve deploy serve_config.yaml`
