"""The operator console's stream: an event's live numbers for people running its on-sale.

The console page (web/admin/) reads it with fetch(), not EventSource, so the admin token goes
in the Authorization header as on every admin call and never into a URL (URLs land in access
logs and browser history).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api import models
from api.http import SSE_HEADERS, Http
from api.openapi import Op


def ops(http: Http) -> list[Op]:
    async def admin_stream(request: Request) -> Response:
        http.admin(request)
        event = await http.client.event(request.path_params["event_id"])
        return StreamingResponse(http.console.stream(event), media_type="text/event-stream",
                                 headers=SSE_HEADERS)

    return [Op("GET", "/v1/events/{event_id}/admin/stream", admin_stream, (
        "The event's live numbers for the operator console (SSE, admin)"), description=(
        "First `history`: the last five minutes of snapshots this replica has (ConsoleHistory); "
        "then a `snapshot` (ConsoleSnapshot) every second: queue, admissions against the rate "
        "set, holds, sales, revenue, sell-out estimate, position-update lag, error answers. "
        "`error` when a second's numbers could not be read. The admin token goes in the "
        "Authorization header (read the stream with fetch, not EventSource)."),
        answer=models.ConsoleEvent, media="text/event-stream", security="admin",
        tags=("admin",))]
