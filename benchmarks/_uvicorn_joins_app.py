"""Baseline for bench_http_joins: POST /v1/events/{id}/queue on plain uvicorn + Starlette.

The same join as the Serve replica makes (`replica.queue_client.QueueClient.join`: rejoin
lookup, NTP stamp, produce to the event's joins topic and wait for the broker's ack, signed
ticket token), with no Ray in the way; `/trivial` answers a fixed JSON body (the floor).
Configured by BENCH_* environment variables (see bench_http_joins.py).
"""

from __future__ import annotations

import json
import os

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.settings import Settings
from replica.queue_client import QueueClient
from store import catalog

settings = Settings.from_env(
    environ={}, redis_url=os.environ["BENCH_REDIS_URL"],
    kafka_bootstrap=os.environ["BENCH_KAFKA_BOOTSTRAP"],
    kafka_topic_prefix=os.environ["BENCH_TOPIC_PREFIX"],
    token_secret=os.environ["BENCH_TOKEN_SECRET"], admin_token=os.environ["BENCH_ADMIN_TOKEN"],
    ntp_servers=tuple(os.environ["BENCH_NTP_SERVERS"].split(",")),
    join_rate_per_s=float(os.environ["BENCH_JOIN_RATE"]),
    user_rate_per_s=float(os.environ["BENCH_JOIN_RATE"]))
redis = Redis.from_url(settings.redis_url, max_connections=512)
queue = QueueClient(settings, redis)
events: dict[str, object] = {}


async def join(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    event = events.get(event_id)
    if event is None:
        event = events[event_id] = await catalog.load_event(redis, event_id)
    user_id = await queue.identity.user(request.headers["authorization"].partition(" ")[2])
    body = json.loads(await request.body())
    await queue.limit_join(event_id, request.client.host if request.client else "", user_id)
    ticket = await queue.join(event, user_id, body.get("priority_code"))  # type: ignore[arg-type]
    return JSONResponse(ticket, status_code=202)


async def trivial(request: Request) -> Response:
    body = json.loads(await request.body())
    return JSONResponse({"ok": True, "user_id": body.get("user_id")}, status_code=202)


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/v1/events/{event_id}/queue", join, methods=["POST"]),
                        Route("/trivial/{rest:path}", trivial, methods=["POST"]),
                        Route("/healthz", healthz)])
