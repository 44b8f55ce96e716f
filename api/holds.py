"""Seat holds: make one (seat ids, or best available), read it, release it."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.http import Http, json_response
from api.openapi import Op
from domain import commands, errors, tokens
from domain.event import iso
from domain.holds import Hold


def hold_view(hold: Hold) -> dict[str, Any]:
    """models.HoldView of a hold, its status as a client sees it now."""
    return {"hold_id": hold.hold_id, "event_id": hold.event_id, "status": hold.visible_status(
        time.time()), "seat_ids": list(hold.seat_ids), "section": hold.section,
        "total_cents": hold.total_cents, "expires_at": iso(hold.expires_at),
        "expires_in_s": max(0.0, round(hold.expires_at - time.time(), 3))}


def ops(http: Http) -> list[Op]:
    client, settings = http.client, http.settings

    async def create_hold(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        claims = http.claims(request, tokens.ADMISSION, event.event_id)
        wanted = await http.model(request, models.HoldRequest)
        command = commands.hold_command(wanted.seat_ids, wanted.section, wanted.quantity,
                                        settings.max_quantity)
        hold = await client.hold(event, claims.user_id, command)
        return json_response(hold_view(hold), 201)

    async def get_hold(request: Request) -> Response:
        ref, event, claims = await http.hold_of(request)
        hold = await http.catalog.hold(ref, event.venue.blocks[ref.block])
        if hold is None or hold.user_id != claims.user_id:
            raise errors.NotFound("no such hold")
        return json_response(hold_view(hold))

    async def release_hold(request: Request) -> Response:
        ref, _, claims = await http.hold_of(request)
        await client.call(client.block(ref.event_id, ref.block).release.remote(
            ref.hold_id, claims.user_id))
        return Response(status_code=204)

    hold_path, by_id = "/v1/holds/{hold_id}", {"hold_id": "$response.body#/hold_id"}
    return [
        Op("POST", "/v1/events/{event_id}/holds", create_hold, (
            "Hold seats (explicit seat_ids, or section and quantity) for hold_ttl_s"),
           status=201, answer=models.HoldView, body=models.HoldRequest, security="admission",
           raises=(errors.SeatsUnavailable, errors.SeatsNotInOneBlock, errors.UserLimitExceeded,
                   errors.NotOnSale, errors.EventClosed, errors.Forbidden),
           links={"get": {"operationId": "get_hold", "parameters": by_id},
                  "checkout": {"operationId": "checkout", "parameters": by_id},
                  "release": {"operationId": "release_hold", "parameters": by_id}},
           tags=("holds",)),
        Op("GET", hold_path, get_hold, (
            "A hold's status, seats, locked price and expiry (its holder only)"),
           answer=models.HoldView, security="admission", tags=("holds",)),
        Op("DELETE", hold_path, release_hold, (
            "Release a hold (its holder only); its seats are available at once"), status=204,
           security="admission", raises=(errors.HoldNotActive, errors.HoldAlreadyConfirmed,
                                         errors.CheckoutInProgress, errors.HoldExpired,
                                         errors.EventClosed),
           tags=("holds",)),
    ]
