"""The compact seat format, the section map, ETags and gzip, end to end through Serve."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from domain import seatmap_codec as codec
from tests.integration.test_availability import hold, stream

pytestmark = pytest.mark.integration


def decode_map(layout: dict[str, Any], blocks: list[str], first: int = 0) -> dict[str, str]:
    """{seat id: status} from seatmap-v1 block states, as a client reads them."""
    seats = {}
    for k, text in enumerate(blocks, start=first):
        b = layout["blocks"][k]
        size = (b["last_row"] - b["first_row"] + 1) * b["seats_per_row"]
        for i, code in enumerate(codec.decode_block(text, size)):
            row, number = divmod(i, b["seats_per_row"])
            seats[f"{b['section']}-{b['first_row'] + row}-{number + 1}"] = codec.STATUS_NAMES[code]
    return seats


def apply_runs(layout: dict[str, Any], seats: dict[str, str], runs: str) -> None:
    for (k, i), code in codec.cells_of(codec.decode_runs(runs)).items():
        b = layout["blocks"][k]
        row, number = divmod(i, b["seats_per_row"])
        seats[f"{b['section']}-{b['first_row'] + row}-{number + 1}"] = codec.STATUS_NAMES[code]


async def json_map(http: httpx.AsyncClient, event_id: str, **params: str) -> dict[str, str]:
    response = await http.get(f"/v1/events/{event_id}/seats", params=params)
    assert response.status_code == 200, response.text
    return {s["seat_id"]: s["status"] for s in response.json()["seats"]}


TWO_SECTIONS = [{"name": "A", "rows": 3, "seats_per_row": 4, "price_cents": 5000},
                {"name": "B", "rows": 2, "seats_per_row": 5, "price_cents": 2500}]


async def test_the_compact_stream_decodes_to_the_seat_map_and_its_deltas_follow_changes(
        http, new_event, admission) -> None:
    event = await new_event(sections=TWO_SECTIONS)
    eid = event["event_id"]
    auth = admission("cm-ann", eid)
    await hold(http, eid, auth, "B-2-5")
    layout = (await http.get(f"/v1/events/{eid}/layout")).json()
    async with stream(http, eid, fmt="compact") as live:
        name, version, snap = await live.next()
        assert name == "snapshot" and snap["format"] == "seatmap-v1" and version == snap["version"]
        assert snap["layout"] == (await http.get(f"/v1/events/{eid}/layout")).headers["etag"]
        seats = decode_map(layout, snap["blocks"])
        assert seats == await json_map(http, eid)
        made = await hold(http, eid, auth, "A-1-1", "A-1-2")
        deadline = time.monotonic() + 10
        while seats.get("A-1-2") != "held" and time.monotonic() < deadline:
            name, _, delta = await live.next()
            assert name == "delta" and "seats" not in delta
            apply_runs(layout, seats, delta["runs"])
        paid = await http.post(f"/v1/holds/{made['hold_id']}/checkout",
                               json={"payment_token": "tok_visa"},
                               headers=auth | {"Idempotency-Key": "cm"})
        assert paid.status_code == 201
        while seats.get("A-1-1") != "sold" and time.monotonic() < deadline:
            _, _, delta = await live.next()
            apply_runs(layout, seats, delta["runs"])
        assert seats == await json_map(http, eid)


async def test_a_compact_reconnect_with_last_event_id_resumes_with_runs_not_a_snapshot(
        http, new_event, admission) -> None:
    event = await new_event(sections=TWO_SECTIONS)
    eid = event["event_id"]
    layout = (await http.get(f"/v1/events/{eid}/layout")).json()
    async with stream(http, eid, fmt="compact") as live:
        _, seen, snap = await live.next()
    seats = decode_map(layout, snap["blocks"])
    await hold(http, eid, admission("cm-bo", eid), "B-1-1")
    await hold(http, eid, admission("cm-cy", eid), "A-3-4")
    async with stream(http, eid, last_seen=seen, fmt="compact") as live:
        deadline = time.monotonic() + 5
        while (seats["B-1-1"], seats["A-3-4"]) != ("held", "held") and time.monotonic() < deadline:
            name, _, data = await live.next()
            assert name == "delta"  # resumed: no snapshot
            apply_runs(layout, seats, data["runs"])
    assert seats == await json_map(http, eid)


async def test_an_unknown_stream_or_map_format_is_a_400_with_an_error_body(http, new_event) -> None:
    eid = (await new_event(rows=1, seats_per_row=2))["event_id"]
    for path in (f"/v1/events/{eid}/availability/stream?format=xml",
                 f"/v1/events/{eid}/seats?format=xml", f"/v1/events/{eid}/seats?section=Z"):
        response = await http.get(path)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"


async def test_the_section_map_lists_only_that_section_in_both_forms(
        http, new_event, admission) -> None:
    event = await new_event(sections=TWO_SECTIONS)
    eid = event["event_id"]
    await hold(http, eid, admission("cm-di", eid), "B-1-3")
    section_b = await json_map(http, eid, section="B")
    assert len(section_b) == 10 and all(s.startswith("B-") for s in section_b)
    assert section_b["B-1-3"] == "held"
    compact = (await http.get(f"/v1/events/{eid}/seats",
                              params={"section": "B", "format": "compact"})).json()
    layout = (await http.get(f"/v1/events/{eid}/layout")).json()
    assert compact["first_block"] == 1 and compact["format"] == "seatmap-v1"
    assert decode_map(layout, compact["blocks"], compact["first_block"]) == section_b


async def test_event_layout_and_map_answer_304_to_a_matching_if_none_match(
        http, new_event, admission) -> None:
    eid = (await new_event(rows=2, seats_per_row=3))["event_id"]
    for path in (f"/v1/events/{eid}", f"/v1/events/{eid}/layout", f"/v1/events/{eid}/seats",
                 f"/v1/events/{eid}/seats?format=compact&section=A"):
        first = await http.get(path)
        etag = first.headers["etag"]
        again = await http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    map_tag = (await http.get(f"/v1/events/{eid}/seats")).headers["etag"]
    await hold(http, eid, admission("cm-ed", eid), "A-1-1")
    changed = await http.get(f"/v1/events/{eid}/seats", headers={"If-None-Match": map_tag})
    assert changed.status_code == 200 and changed.headers["etag"] != map_tag


async def test_a_large_json_map_is_gzipped_but_small_answers_and_streams_never_are(
        http, new_event) -> None:
    eid = (await new_event(rows=20, seats_per_row=50))["event_id"]
    headers = {"Accept-Encoding": "gzip"}
    big = await http.get(f"/v1/events/{eid}/seats", headers=headers)
    assert big.headers["content-encoding"] == "gzip" and len(big.json()["seats"]) == 1000
    assert int(big.headers["content-length"]) < len(big.content) / 5
    plain = await http.get(f"/v1/events/{eid}/seats", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == big.json()
    for path in (f"/v1/events/{eid}", f"/v1/events/{eid}/seats?format=compact",
                 f"/v1/events/{eid}/layout"):
        small = await http.get(path, headers=headers)
        assert "content-encoding" not in small.headers, path
    async with http.stream("GET", f"/v1/events/{eid}/availability/stream?format=compact",
                           headers=headers) as live:
        assert "content-encoding" not in live.headers


async def test_the_openapi_document_describes_the_compact_format(http) -> None:
    doc = (await http.get("/openapi.json")).json()
    assert "seatmap-v1" in str(doc["components"]["schemas"]["SeatmapV1"])
    assert "/v1/events/{event_id}/layout" in doc["paths"]
    params = doc["paths"]["/v1/events/{event_id}/seats"]["get"]["parameters"]
    assert {p["name"] for p in params} >= {"section", "format"}
