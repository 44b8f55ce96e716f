"""The API's operations from every resource module, its routes and its OpenAPI document.

A resource module (events, seats, queue, holds, bookings, identity, live, health) turns HTTP
into calls of the services `Http` carries (the booking client, the queue client, the catalog
reads, the seat feeds) and back; none of them reaches into `store/` for data itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api import bookings, console, events, health, holds, identity, live, models, queue, seats
from api.http import Http, error_body, json_bytes
from api.openapi import Op, document

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
INFO = {"title": "Ticketing", "version": "1.0",
        "description": "High-demand on-sales: waiting room, seat holds, checkout."}
MODULES = (events, seats, queue, holds, bookings, identity, health, live, console)


def build_ops(http: Http) -> list[Op]:
    """Every documented operation, in routing order."""
    return [op for module in MODULES for op in module.ops(http)]


def api_document(ops: list[Op]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's operations (GET /openapi.json)."""
    return document(ops, INFO, {"SeatmapV1": live.SEATMAP_V1} | console_schemas())


def console_schemas() -> dict[str, Any]:
    """The shapes inside the console stream's `data` (no operation answers them directly)."""
    _, schemas = msgspec.json.schema_components(
        [models.ConsoleHistory, models.ErrorDetail],
        ref_template="#/components/schemas/{name}")
    return schemas


def build_routes(http: Http) -> list[BaseRoute]:
    """The operations' routes, the document, and the pages outside it."""
    ops = build_ops(http)
    made: list[bytes] = []  # the document, made at its first GET and then served as is

    async def metrics(request: Request) -> Response:
        """Gone: metrics are on Ray's Prometheus endpoint of each node (store/metrics.py)."""
        return error_body("moved", "metrics are served by Ray's metrics agent on every node, at "
                          "http://<node>:<metrics_export_port>/metrics (`make status` shows the "
                          "port); see README, Metrics", 410)

    async def openapi(request: Request) -> Response:
        if not made:
            made.append(json_bytes(api_document(ops)))
        return Response(made[0], media_type="application/json")

    async def home(request: Request) -> Response:
        return RedirectResponse("/app/")

    return [
        *[op.route() for op in ops],
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/", home, methods=["GET"]),
        Mount("/app", StaticFiles(directory=WEB_DIR, html=True, check_dir=False), name="web"),
    ]
