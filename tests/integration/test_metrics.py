"""The app's and the actors' metrics reach Ray's Prometheus endpoint, every one the dashboard
and the alert rules read among them, with the values one small on-sale leaves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from store import metrics
from tests import metric_refs
from tests.integration import ray_metrics
from tests.integration.conftest import user_header

pytestmark = pytest.mark.integration


async def _next_state(lines: Any, *states: str) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data: "):
            data: dict[str, Any] = json.loads(line[6:])
            if data.get("state") in states:
                return data
    raise AssertionError(f"stream ended before {states}")


async def _small_onsale(http: httpx.AsyncClient, api: str, admin: dict[str, str],
                        event_id: str, admission: Any) -> None:
    """Two joins admitted while one of them watches its stream, two holds, a sale, a decline."""
    tickets = []
    for user in ("m-ann", "m-bob"):
        joined = await http.post(f"/v1/events/{event_id}/queue", json={},
                                 headers=user_header(user))
        assert joined.status_code == 202, joined.text
        tickets.append(joined.json())
    me = tickets[0]
    url = f"{api}/v1/events/{event_id}/queue/{me['ticket_id']}/stream?token={me['ticket_token']}"
    async with httpx.AsyncClient(timeout=60) as sse, sse.stream("GET", url) as stream:
        lines = stream.aiter_lines()
        await _next_state(lines, "waiting")  # placed: the room has persisted the joins
        await asyncio.sleep(0.6)  # the replica's room feed has read the heads at least once
        patched = await http.patch(f"/v1/events/{event_id}", json={"admission_rate_per_s": 100},
                                   headers=admin)
        assert patched.status_code == 200, patched.text
        await _next_state(lines, "admitted")
    for n, (seat, card) in enumerate((("A-1-1", "tok_visa"), ("A-1-2", "tok_chargeDeclined"))):
        auth = admission(f"m-buyer{n}", event_id)
        held = await http.post(f"/v1/events/{event_id}/holds", json={"seat_ids": [seat]},
                               headers=auth)
        assert held.status_code == 201, held.text
        paid = await http.post(f"/v1/holds/{held.json()['hold_id']}/checkout",
                               json={"payment_token": card}, headers=auth | {"Idempotency-Key": "k"})
        assert paid.status_code == (201 if card == "tok_visa" else 402), paid.text
    assert (await http.get(f"/v1/events/{event_id}")).status_code == 200  # a cached read


async def test_every_metric_of_the_dashboard_and_the_alerts_is_on_rays_endpoint(
        http, api, admin, new_event, admission) -> None:
    event = await new_event(rows=1, seats_per_row=4, admission_rate_per_s=0)
    event_id = event["event_id"]
    await _small_onsale(http, api, admin, event_id, admission)
    wanted = metric_refs.referenced_series()

    # Each process exports on its own schedule (the room's host, the block's, the replicas):
    # wait until every counter counted here has arrived, then check it counted exactly.
    counted = {metrics.JOINS: 2, metrics.ADMISSIONS: 2, metrics.JOINS_QUEUED: 2,
               metrics.HOLDS: 2, metrics.SALES: 1, metrics.SEATS_SOLD: 1, metrics.REVENUE: 5000}

    def total_in(samples: list[ray_metrics.Sample], metric: metrics.Metric, suffix: str = "",
                 **labels: str) -> float:
        return ray_metrics.total(samples, metric.exported()[0].removesuffix("_bucket") + suffix,
                                 **labels)

    def complete(samples: list[ray_metrics.Sample]) -> bool:
        names = {s.name for s in samples}
        return wanted <= names and all(
            total_in(samples, metric, event=event_id) >= n for metric, n in counted.items()
        ) and ray_metrics.total(
            samples, "ray_ticketing_position_update_lag_seconds_count", event=event_id) >= 1

    samples = await asyncio.to_thread(ray_metrics.wait_until, complete)
    names = {s.name for s in samples}
    assert not wanted - names, f"missing on Ray's endpoint: {sorted(wanted - names)}"

    def total(metric: metrics.Metric, suffix: str = "", **labels: str) -> float:
        return total_in(samples, metric, suffix, **labels)

    for metric, n in counted.items():
        assert total(metric, event=event_id) == n, metric.name
    assert total(metrics.CHECKOUT_ERRORS, code="payment_declined") >= 1
    assert total(metrics.LEDGER_APPEND, "_count", outcome="ok") >= 1
    assert total(metrics.HTTP_REQUESTS, route="/v1/holds/{hold_id}/checkout", status="402") >= 1
    rates = [s.value for s in samples if s.name == "ray_ticketing_admission_rate_per_s"
             and s.labels.get("event") == event_id]  # a gauge: one per incarnation lately
    assert rates and max(rates) == 100
    assert total(metrics.POOL_HOSTS, state="live") >= 1
    buckets = [s for s in samples if s.name == "ray_ticketing_http_request_duration_seconds_bucket"
               and s.labels.get("route") == "/v1/events/{event_id}/holds"]
    assert {s.labels["le"] for s in buckets} >= {"0.001", "+Inf"}


async def test_the_apps_own_metrics_page_is_gone_and_says_where_they_are(http) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "moved"
    assert "metrics_export_port" in response.json()["error"]["message"]
