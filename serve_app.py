"""HTTP ingress on Ray Serve + Starlette: the Serve deployment of the API and its metering.

The API itself is the package `api/`: one module per resource (events, seats, queue, holds,
bookings, identity, live, health) whose handlers translate HTTP into service calls, with the
request and response models (api/models.py) that check every request and make the OpenAPI 3.1
document (api/openapi.py, GET /openapi.json). Rules live in `domain/`, owners in `actors/`.
Every error is a `TicketingError` whose class maps to a status in `domain.errors.STATUS`, with
the body `{"error": {"code", "message"}}`; anything unexpected is logged and answered as a 500
without a traceback.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, cast

from ray import serve
from ray.serve.schema import LoggingConfig
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from actors import logs
from api.app import api_document, build_ops, build_routes
from api.health import health_checks
from api.http import (
    Http,
    client_key,
    on_http_error,
    on_redis_error,
    on_ticketing_error,
    on_unexpected,
)
from domain import errors
from domain.console import StatusTally
from domain.ids import is_event_id
from domain.settings import Settings
from replica import gc_policy
from replica.client import BookingClient
from store import redis_clients
from store.metrics import HTTP_DURATION, HTTP_REQUESTS

STATUS = errors.STATUS  # the one table of statuses (domain/errors.py)
__all__ = ["STATUS", "Api", "api_document", "build_asgi_app", "build_ops", "build_routes",
           "client_key", "deploy", "health_checks", "metered"]


def metered(app: Any, tally: StatusTally | None = None) -> Any:
    """ASGI middleware: request counts and latency per route template, recorded when the
    response head is handed over (a stream counts at its start, not its end), into children
    bound once per (route, status) (store/metrics.py: a record is a Python add, no Ray call).
    Error answers of a route with an event in its path also go to `tally` by event: the
    operator console's error numbers (the metrics have no event label on HTTP requests)."""
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
            if status >= 400 and tally is not None:
                event_id = scope.get("path_params", {}).get("event_id")
                if isinstance(event_id, str) and is_event_id(event_id):
                    tally.add(event_id, status)

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

    def lifespan(_app: Starlette) -> contextlib.AbstractAsyncContextManager[None]:
        return gc_policy.applied(settings.gc_freeze_interval_s, settings.gc_unfreeze_interval_s)

    app = Starlette(routes=build_routes(http), lifespan=lifespan, exception_handlers={
        errors.TicketingError: on_ticketing_error, HTTPException: on_http_error,
        RedisError: on_redis_error, Exception: on_unexpected})
    return metered(app, http.answers)


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
