"""The live availability stream (SSE) of an event's seats.

Its handler is tuned apart (the seat feed, docs/design.md), so its body is kept as it was in
serve_app.py; only the route's description lives in the Op.
"""

from __future__ import annotations

import random

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.http import Http
from api.openapi import LAST_EVENT_ID, Op
from domain import availability
from domain import seatmap_codec as codec
from store.seat_feed import SeatStream


def ops(http: Http) -> list[Op]:
    """The availability stream (issue 4); its handler is tuned apart, so it is kept as it was."""

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

    return [Op("GET", "/v1/events/{event_id}/availability/stream", availability_stream, (
        "Live seat statuses (SSE): a snapshot, then deltas at most every 200 ms"), description=(
        "Each event's id is the seat version; a reconnect with Last-Event-ID resumes from it, or "
        "gets a fresh snapshot when it is too old. format=json (default) sends seats by id "
        '({"version","seats":{"A-1-1":"available"}}); format=compact sends seatmap-v1 '
        '(SeatmapV1): snapshot {"version","format","layout","blocks"}, delta {"version","runs"}, '
        "about 20 KB for 60,000 seats at worst. Events: snapshot, delta, error."),
        answer=models.SeatEvent, media="text/event-stream", query=models.StreamQuery,
        headers=(LAST_EVENT_ID,),
        tags=("seats",))]


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
