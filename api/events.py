"""Events: create, list, read, change (admission rate, prices) and close."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.http import Body, Http, conditional, json_bytes, json_response
from api.openapi import IF_NONE_MATCH, Op
from domain import commands, errors
from domain import seatmap_codec as codec
from domain.event import Event, iso, parse_event, parse_rate
from domain.ids import new_event_id

UNCHANGED = {304: "unchanged since the If-None-Match ETag"}


def event_view(event: Event, free: dict[int, int], now: float) -> dict[str, Any]:
    """models.EventView of an event and its seats available per block."""
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


def ops(http: Http) -> list[Op]:
    client, settings = http.client, http.settings

    async def changed(event: Event, forget: bool = True) -> Response:
        """The answer of an admin change: the event as its owner now has it, with the seats
        available; the cached copy of this replica dropped first when the change is one a
        hold or join must see at once (admission rate, closing)."""
        if forget:
            client.forget(event.event_id)
        free = await http.catalog.availability(event.event_id)
        return json_response(event_view(event, free, time.time()))

    async def create_event(request: Request) -> Response:
        http.admin(request)
        raw = await http.body(request)
        models.decode(raw, models.EventCreate)  # types and bounds; the venue's rules follow
        event = parse_event(models.loads(raw), new_event_id(), time.time(),
                            settings.hold_ttl_s, settings.max_seats_per_user,
                            settings.block_max_seats, settings.max_quantity,
                            settings.admission_rate_per_s, settings.event_length_s)
        event = await client.call(client.owner(event).create.remote(event))
        free = {b.index: b.seats_total for b in event.venue.blocks}
        return json_response(event_view(event, free, time.time()), 201)

    async def list_events(request: Request) -> Response:
        limit = commands.parse_limit(request.query_params.get("limit"))
        events, source = await http.catalog.open_events(limit)
        now = time.time()
        data = json_bytes({"events": [event_view(e, free, now) for e, free in events]})
        return conditional(request, Body(data, codec.etag_of(data)), source.headers())

    async def get_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        (event, free), source = await http.catalog.event_details(event_id)
        if event is None:
            raise await http.catalog.missing_event(event_id)
        data = json_bytes(event_view(event, free, time.time()))
        return conditional(request, Body(data, codec.etag_of(data)), source.headers())

    async def patch_event(request: Request) -> Response:
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        rate = parse_rate((await http.model(request, models.EventPatch)).admission_rate_per_s)
        return await changed(await client.call(client.owner(event).set_admission_rate.remote(
            rate)))

    async def close_event(request: Request) -> Response:
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        return await changed(await client.call(client.owner(event).close.remote()))

    async def set_price(request: Request) -> Response:
        http.admin(request)
        event = await client.event(request.path_params["event_id"])
        event.venue.section(request.path_params["name"])
        price = (await http.model(request, models.PriceChange)).price_cents
        return await changed(await client.call(client.owner(event).set_price.remote(
            request.path_params["name"], price)), forget=False)

    ev = "/v1/events/{event_id}"
    by_id = {"event_id": "$response.body#/event_id"}
    links = {"join": {"operationId": "join_queue", "parameters": by_id},
             "details": {"operationId": "get_event", "parameters": by_id},
             "seats": {"operationId": "seats", "parameters": by_id}}
    closed = (errors.EventClosed,)
    return [
        Op("POST", "/v1/events", create_event, "Create an event (admin)", status=201,
           answer=models.EventView, body=models.EventCreate, security="admin",
           raises=(errors.Forbidden,), links=links, tags=("events",)),
        Op("GET", "/v1/events", list_events, "The events open now, newest first", description=(
            "Name, date, sections, prices, seats left and sale state of each; ?limit=1..100."),
           answer=models.EventList, query=models.ListQuery, headers=(IF_NONE_MATCH,),
           other=UNCHANGED, tags=("events",)),
        Op("GET", ev, get_event, "Event details, prices and live availability (from the cache)",
           answer=models.EventView, headers=(IF_NONE_MATCH,), other=UNCHANGED,
           tags=("events",)),
        Op("PATCH", ev, patch_event, "Change the admission rate live (admin)",
           answer=models.EventView, body=models.EventPatch, security="admin", raises=closed,
           tags=("events",)),
        Op("POST", ev + "/close", close_event, (
            "Close the event (admin); its entities stop, its bookings stay readable"),
           answer=models.EventView, security="admin", raises=closed, tags=("events",)),
        Op("PATCH", ev + "/sections/{name}", set_price, (
            "Change a section's price (admin); existing holds keep theirs"),
           answer=models.EventView, body=models.PriceChange, security="admin", raises=closed,
           tags=("events",)),
    ]
