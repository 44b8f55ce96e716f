"""Hostile input gets a 4xx with the JSON error body, never a 5xx, and changes nothing stored.

Each row is one request an attacker (or a broken client) sent to a running stack and got a 500
for (issue 10), plus its neighbours. After the whole table the event reads back unchanged,
nobody joined its queue and no event was created.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx import AsyncClient

from store import keys

pytestmark = pytest.mark.integration

NESTED = b"[" * 50_000
EVENT_BODY = {"name": "x", "sections": [{"name": "A", "rows": 1, "seats_per_row": 1,
                                         "price_cents": 1}]}

# (why, method, path, body: bytes | JSON-able | None, headers: "admin" | "user" | dict, status, code)
TABLE: list[tuple[str, str, str, Any, Any, int, str]] = [
    ("join body of 50,000 nested [", "POST", "/v1/events/{event}/queue", NESTED, "user",
     400, "invalid_request"),
    ("join body of 12,000 nested { keys", "POST", "/v1/events/{event}/queue",
     b'{"a":' * 12_000, "user", 400, "invalid_request"),
    ("join body over the size limit", "POST", "/v1/events/{event}/queue", b"[" * 70_000,
     "user", 413, "body_too_large"),
    ("create body []", "POST", "/v1/events", [], "admin", 400, "invalid_request"),
    ("create body null", "POST", "/v1/events", None, "admin", 400, "invalid_request"),
    ("create body \"x\"", "POST", "/v1/events", "x", "admin", 400, "invalid_request"),
    ("create body 5", "POST", "/v1/events", 5, "admin", 400, "invalid_request"),
    ("create body nested too deep", "POST", "/v1/events", NESTED, "admin", 400,
     "invalid_request"),
    ("onsale_at in year 1 at +14:00", "POST", "/v1/events",
     EVENT_BODY | {"onsale_at": "0001-01-01T00:00:00+14:00"}, "admin", 400, "invalid_request"),
    ("onsale_at in year 9999 at -14:00", "POST", "/v1/events",
     EVENT_BODY | {"onsale_at": "9999-12-31T23:59:59-14:00"}, "admin", 400, "invalid_request"),
    ("onsale_at as a huge epoch", "POST", "/v1/events", EVENT_BODY | {"onsale_at": 1e300},
     "admin", 400, "invalid_request"),
    ("admin bearer with a non-ASCII character", "POST", "/v1/events", EVENT_BODY,
     {"Authorization": "Bearer dev-admin-tokén"}, 401, "unauthorized"),
    ("admin bearer with a non-ASCII character on PATCH", "PATCH", "/v1/events/{event}",
     {"admission_rate_per_s": 1}, {"Authorization": "Bearer \u00ff\u00fe"}, 401, "unauthorized"),
    ("PATCH event body []", "PATCH", "/v1/events/{event}", [], "admin", 400, "invalid_request"),
    ("PATCH event body null", "PATCH", "/v1/events/{event}", None, "admin", 400,
     "invalid_request"),
    ("PATCH rate NaN", "PATCH", "/v1/events/{event}", b'{"admission_rate_per_s": NaN}', "admin",
     400, "invalid_request"),
    ("PATCH price body \"x\"", "PATCH", "/v1/events/{event}/sections/A", "x", "admin", 400,
     "invalid_request"),
    ("PATCH price of no such section", "PATCH", "/v1/events/{event}/sections/Z%00",
     {"price_cents": 1}, "admin", 400, "invalid_request"),
    ("join body not UTF-8", "POST", "/v1/events/{event}/queue", b'{"user_id": "\xff"}', "user",
     400, "invalid_request"),
    ("join of no such event", "POST", "/v1/events/ev%F0%9F%98%80/queue", {}, "user", 404,
     "not_found"),
]


async def send(http: AsyncClient, method: str, path: str, body: Any,
               headers: dict[str, str]) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # bytes keys as httpx makes of str keys (ASCII); the values as UTF-8
    raw = {k.encode("ascii"): v.encode()
           for k, v in (headers | {"Content-Type": "application/json"}).items()}
    return await http.request(method, path, content=content, headers=raw)  # UTF-8 on the wire


async def test_every_bad_input_gets_a_4xx_json_error_and_nothing_stored_changes(
        http: AsyncClient, new_event, admin, user_auth, app_redis) -> None:
    event = await new_event()
    event_id = event["event_id"]
    before = (await http.get(f"/v1/events/{event_id}")).json()
    events_before = app_redis.zcard(keys.events_index())
    failures = []
    for why, method, path, body, headers, status, code in TABLE:
        auth = {"admin": admin, "user": user_auth("hostile")}.get(headers, headers) \
            if isinstance(headers, str) else headers
        response = await send(http, method, path.format(event=event_id), body, auth)
        try:
            error = response.json()["error"]
            ok = response.status_code == status and error["code"] == code and error["message"]
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            failures.append((why, response.status_code, response.text[:200]))
    assert failures == []
    assert (await http.get(f"/v1/events/{event_id}")).json() == before
    assert app_redis.zcard(keys.events_index()) == events_before
    stats = await http.get(f"/v1/events/{event_id}/queue/stats", headers=admin)
    assert stats.json()["waiting"] == 0 and stats.json()["admitted"] == 0
