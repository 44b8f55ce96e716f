"""HTTP ingress (temporary stub: only /healthz until the booking API lands)."""

from __future__ import annotations

from ray import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.settings import Settings


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_asgi_app() -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz)])


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=10000)
@serve.ingress(build_asgi_app)
class Api:
    pass


def deploy(settings: Settings) -> None:
    """Start Serve on loopback and run the app without blocking (Ray must be initialised)."""
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    serve.run(Api.bind(), name="ticketing", route_prefix="/", blocking=False)
