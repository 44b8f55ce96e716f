"""Baseline for bench_http_holds: the same hold, on plain uvicorn + Starlette (one process).

`POST /v1/events/{event_id}/holds` verifies the admission token, parses the body with the app's
own parser, plans the seat on the app's `BlockInventory` and applies it with the app's block
library's `hold_batch` (one hold per call), exactly as a seat-block actor does for a batch, but with
no Serve proxy, no replica->actor hop and no batching. It is the only writer of the events it
serves (they have no actors; the benchmark writes them to Redis with epoch 1).

Run: BENCH_REDIS_URL=redis://127.0.0.1:6420/0 uvicorn benchmarks._uvicorn_holds_app:app
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain import commands, errors, tokens
from domain.event import Event, iso
from domain.holds import Hold
from domain.ids import new_hold_ref
from domain.inventory import BlockInventory, HoldRequest
from domain.settings import Settings
from replica.identity import Identity
from store import keys
from store.records import encode_hold
from store.scripts import BlockScripts, HoldOutcome, PlannedHold

REDIS = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6420/0"),
                       max_connections=512)
SECRET = os.environ["BENCH_TOKEN_SECRET"]
IDENTITY = Identity(Settings(token_secret=SECRET))  # the key derived from it, as the stack's
MAX_QUANTITY = 50
STATUS = {errors.SeatsUnavailable: 409, errors.UserLimitExceeded: 409, errors.Unauthorized: 401,
          errors.Forbidden: 403, errors.NotFound: 404, errors.InvalidRequest: 400}


class BlockState:
    def __init__(self, event: Event, index: int, epoch: int) -> None:
        block = event.venue.blocks[index]
        self.event = event
        self.inventory = BlockInventory(block, event.price_of(block.section))
        self.scripts = BlockScripts(REDIS, event.event_id, index, epoch)


_events: dict[str, Event] = {}
_blocks: dict[tuple[str, int], BlockState] = {}


async def _block(event: Event, index: int) -> BlockState:
    state = _blocks.get((event.event_id, index))
    if state is None:
        epoch = int(await REDIS.get(keys.block_epoch(event.event_id, index)) or 1)
        state = _blocks.setdefault((event.event_id, index), BlockState(event, index, epoch))
    return state


def _view(hold: Hold) -> dict[str, Any]:
    return {"hold_id": hold.hold_id, "event_id": hold.event_id,
            "status": hold.visible_status(time.time()), "seat_ids": list(hold.seat_ids),
            "section": hold.section, "total_cents": hold.total_cents,
            "expires_at": iso(hold.expires_at),
            "expires_in_s": max(0.0, round(hold.expires_at - time.time(), 3))}


async def create_hold(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    try:
        event = _events.get(event_id)
        if event is None:
            raw = await REDIS.get(keys.event(event_id))
            if raw is None:
                raise errors.NotFound("no such event")
            event = _events.setdefault(event_id, Event.from_json(raw))
        _scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = IDENTITY.verify(token.strip(), tokens.ADMISSION, event_id)
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise errors.InvalidRequest("body is not valid JSON") from exc
        command = commands.parse_hold(body, MAX_QUANTITY)
        if command.seat_ids:
            index = event.venue.block_for_seats(list(command.seat_ids)).index
        else:
            index = event.venue.blocks_of(event.venue.section(command.section).name)[0].index
        state = await _block(event, index)
        hold_id = new_hold_ref(event_id, index).hold_id
        hold = state.inventory.plan(HoldRequest(claims.user_id, command.seat_ids,
                                                command.quantity),
                                    hold_id, event_id, time.time(), event.hold_ttl_s)
        block = state.inventory.block
        planned = PlannedHold(hold_id.rsplit(".", 1)[1], hold.user_id,
                              [block.seat_index(s) for s in hold.seat_ids],
                              encode_hold(hold, block))
        outcome = (await state.scripts.hold_batch([planned], event.max_seats_per_user))[0]
        if outcome is not HoldOutcome.OK:
            state.inventory.forget(hold_id)
            raise (errors.UserLimitExceeded("limit") if outcome is HoldOutcome.LIMIT
                   else errors.SeatsUnavailable("a seat was taken"))
        return JSONResponse(_view(hold), status_code=201)
    except errors.TicketingError as exc:
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                            status_code=status)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/v1/events/{event_id}/holds", create_hold, methods=["POST"]),
                        Route("/healthz", healthz, methods=["GET"])])
