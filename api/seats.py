"""The seat map (by id, or compact seatmap-v1) and the venue layout it is read with."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.events import UNCHANGED
from api.http import Body, Http, conditional, json_bytes, not_modified
from api.openapi import IF_NONE_MATCH, Op
from domain import availability
from domain import seatmap_codec as codec
from domain.event import Event
from store.seat_feed import SeatFeed


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


def ops(http: Http) -> list[Op]:
    client, settings = http.client, http.settings
    # seat maps by (event, format, section): built once per (version, prices), gzipped once
    seat_map_cache: dict[tuple[str, str, str], tuple[str, Body]] = {}
    layouts: dict[str, Body] = {}

    async def seats(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        fmt = availability.parse_format(request.query_params.get("format"))
        section = request.query_params.get("section") or ""
        if section:
            event.venue.section(section[:40])  # 400 for a section the venue does not have
        (current, version), source = await http.catalog.event_and_seat_version(event.event_id)
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

    async def layout(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        body = layouts.get(event.event_id)
        if body is None:
            data = codec.layout_body(event.venue)
            body = layouts[event.event_id] = Body(data, codec.etag_of(data))
            if len(layouts) > 1024:
                layouts.clear()
        return conditional(request, body, cache_control="public, max-age=3600")

    ev = "/v1/events/{event_id}"
    return [
        Op("GET", ev + "/seats", seats, (
            "The seat map: every seat with price and status, or one section; or compact"),
           description=(
            "format=json (default) lists seats by id with price and status; format=compact "
            "gives seatmap-v1 block states (SeatmapV1) with the seat version and the layout's "
            "ETag. section=B keeps one section (empty: all). The ETag follows the seat version "
            "and prices (If-None-Match answers 304); large bodies are gzipped when accepted."),
           answer=(models.SeatMap, models.CompactSeatMap), query=models.SeatsQuery,
           headers=(IF_NONE_MATCH,), other=UNCHANGED, tags=("seats",)),
        Op("GET", ev + "/layout", layout, (
            "The venue layout of the compact seat format (seatmap-v1), cacheable"), description=(
            "Sections and blocks in order; block k's states in a compact snapshot or map are "
            "read with it (see SeatmapV1). It never changes for an event; its ETag is a hash of "
            "its bytes, and If-None-Match answers 304."),
           answer=models.Layout, headers=(IF_NONE_MATCH,), other=UNCHANGED, tags=("seats",)),
    ]
