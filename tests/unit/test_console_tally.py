"""The ingress counts each event's error answers for the operator console (serve_app.metered)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from domain.console import StatusTally
from serve_app import metered

EVENT = "ev0123456789ab"


async def answer(request: Request) -> Response:
    return JSONResponse({}, status_code=int(request.query_params.get("status", "200")))


def client(tally: StatusTally) -> TestClient:
    app = Starlette(routes=[Route("/v1/events/{event_id}/x", answer),
                            Route("/other", answer)])
    return TestClient(metered(app, tally))


def test_error_answers_of_an_event_route_are_counted_for_that_event_by_status() -> None:
    tally = StatusTally()
    with client(tally) as http:
        for status in (200, 201, 409, 409, 429, 503):
            http.get(f"/v1/events/{EVENT}/x", params={"status": status})
    assert tally.of(EVENT) == {409: 2, 429: 1, 503: 1}


def test_answers_without_a_well_formed_event_id_in_the_path_are_not_counted() -> None:
    tally = StatusTally()
    with client(tally) as http:
        http.get("/v1/events/not-an-id/x", params={"status": 404})
        http.get("/other", params={"status": 500})
    assert len(tally) == 0
