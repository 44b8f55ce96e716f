"""The availability stream on plain Starlette + uvicorn (no Ray, no HAProxy), for comparison.

The same fan-out code as the Serve app (`store.seat_feed`: one Redis reader per event, one
encoding per window, written by the feed to each connection), on the same Redis, reading the
same change stream, with the same garbage-collector policy as a Serve replica
(`replica/gc_policy.py`: frozen at start-up, then every `GC_FREEZE_INTERVAL_S`), so the two
arms differ only in what stands between the fan-out and the socket.

    REDIS_URL=redis://127.0.0.1:6430/0 uvicorn benchmarks._uvicorn_sse_app:app --port 8301
"""

from __future__ import annotations

import contextlib
import gc
import random
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain import availability
from domain.event import Event
from domain.settings import Settings
from replica import gc_policy
from store import catalog
from store.replicas import ReadRouter
from store.seat_feed import SeatFeeds, SeatStream

settings = Settings.from_env()
redis = Redis.from_url(settings.redis_url, max_connections=64)
feeds = SeatFeeds(ReadRouter(redis, settings), settings)


events: dict[str, Event] = {}  # layouts are immutable: read once, like BookingClient.event


async def stream(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    event = events.get(event_id) or await catalog.load_event(redis, event_id)
    if event is None:
        return Response(status_code=404)
    events[event_id] = event
    feed = await feeds.get(event)
    return SeatStream(feed, availability.parse_last_event_id(request.headers.get("last-event-id")),
                      availability.parse_format(request.query_params.get("format")) == "compact",
                      availability.retry_hint(random.random()), {"Cache-Control": "no-cache"})


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    gc.freeze()  # as Ray Serve does once a replica has started (RAY_SERVE_FREEZE_GC_ON_STARTUP)
    async with gc_policy.applied(settings.gc_freeze_interval_s, settings.gc_unfreeze_interval_s):
        yield


app = Starlette(routes=[Route("/v1/events/{event_id}/availability/stream", stream)],
                lifespan=lifespan)
