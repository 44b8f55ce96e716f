"""The waiting room over HTTP, on the real Kafka, Redis, NTP and Ray."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import httpx
import pytest

from domain.waiting import fairness, lottery
from store import keys
from tests.integration.conftest import user_header

pytestmark = pytest.mark.integration


async def join(http: httpx.AsyncClient, event_id: str, user: str, **extra: Any) -> dict[str, Any]:
    response = await http.post(f"/v1/events/{event_id}/queue", json=extra, headers=user_header(
        user) | {"X-Forwarded-For": f"10.9.{hash(user) % 250}.{len(user)}"})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def status(http: httpx.AsyncClient, event_id: str, ticket: dict[str, Any]) -> dict[str, Any]:
    response = await http.get(
        f"/v1/events/{event_id}/queue/{ticket['ticket_id']}",
        headers={"Authorization": f"Bearer {ticket['ticket_token']}",
                 "X-Forwarded-For": ticket["ticket_id"]})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")


def admission_log(app_redis: Any, event_id: str) -> list[fairness.LogEntry]:
    return [fairness.LogEntry(**json.loads(raw))
            for raw in app_redis.lrange(keys.queue_log(event_id), 0, -1)]


async def test_join_is_202_and_a_rejoin_keeps_the_same_ticket(http, new_event) -> None:
    event = await new_event()
    first = await join(http, event["event_id"], "ann")
    again = await join(http, event["event_id"], "ann")
    assert first["ticket_id"] == again["ticket_id"]
    assert first["state"] == "waiting" and first["clock_synced"] is True
    admitted = await wait_for(lambda: _admitted(http, event["event_id"], first))
    assert admitted["admission_token"] and admitted["position"] == 0
    held = await http.post(f"/v1/events/{event['event_id']}/holds", json={"seat_ids": ["A-1-1"]},
                           headers={"Authorization": f"Bearer {admitted['admission_token']}"})
    assert held.status_code == 201


async def test_a_rejoin_is_logged_but_queued_once(http, new_event, app_redis) -> None:
    event = await new_event(admission_rate_per_s=0)
    event_id = event["event_id"]
    first = await join(http, event_id, "ann")
    await join(http, event_id, "bob")
    await wait_for(lambda: _persisted(app_redis, event_id, 2))
    again = await asyncio.gather(*(join(http, event_id, "ann") for _ in range(5)))
    await join(http, event_id, "cat")
    await wait_for(lambda: _persisted(app_redis, event_id, 3))
    await asyncio.sleep(1)  # the rejoins went through Kafka and the room too
    assert {t["ticket_id"] for t in again} == {first["ticket_id"]}
    assert app_redis.hlen(keys.queue_places(event_id)) == 3
    line = [raw.decode().split("|")[0] for raw in app_redis.lrange(keys.queue_line(event_id), 0, -1)]
    assert line[0] == first["ticket_id"] and len(line) == 3
    assert (await status(http, event_id, first))["position"] == 1


async def _persisted(app_redis: Any, event_id: str, count: int) -> bool:
    return bool(app_redis.hlen(keys.queue_places(event_id)) >= count)


async def _admitted(http: httpx.AsyncClient, event_id: str,
                    ticket: dict[str, Any]) -> dict[str, Any] | None:
    body = await status(http, event_id, ticket)
    return body if body["state"] == "admitted" else None


async def test_users_are_admitted_first_come_first_served(http, new_event, app_redis) -> None:
    event = await new_event(admission_rate_per_s=20)
    tickets = [await join(http, event["event_id"], f"fcfs{n}") for n in range(15)]
    await wait_for(lambda: _all_admitted(http, event["event_id"], tickets))
    order = [entry.ticket_id for entry in admission_log(app_redis, event["event_id"])]
    assert order == [t["ticket_id"] for t in tickets]


async def _all_admitted(http: httpx.AsyncClient, event_id: str,
                        tickets: list[dict[str, Any]]) -> bool:
    states = [(await status(http, event_id, t))["state"] for t in tickets]
    return all(s == "admitted" for s in states)


async def test_prequeue_is_a_verifiable_lottery_ahead_of_later_joins(
        http, new_event, app_redis) -> None:
    event = await new_event(onsale_at=time.time() + 10, admission_rate_per_s=50)
    event_id = event["event_id"]
    fair = (await http.get(f"/v1/events/{event_id}/fairness")).json()
    assert fair["commitment"] and fair["seed"] is None
    early = [await join(http, event_id, f"early{n}") for n in range(12)]
    assert all(t["state"] == "pre_queue" for t in early)
    assert (await status(http, event_id, early[0]))["state"] == "pre_queue"
    await wait_for(lambda: _on_sale(http, event_id), 20)
    late = [await join(http, event_id, f"late{n}") for n in range(4)]
    await wait_for(lambda: _all_admitted(http, event_id, early + late), 30)

    fair = (await http.get(f"/v1/events/{event_id}/fairness")).json()
    seed = bytes.fromhex(fair["seed"])
    assert hashlib.sha256(seed).hexdigest() == fair["commitment"]
    assert lottery.verify(seed, fair["commitment"])
    assert sorted(fair["prequeue_ticket_ids"]) == sorted(t["ticket_id"] for t in early)
    expected = lottery.lottery_order(seed, fair["prequeue_ticket_ids"])
    log = admission_log(app_redis, event_id)
    order = [entry.ticket_id for entry in log]
    assert order[:12] == expected, "pre-queue admitted in the seed's order"
    assert order[12:] == [t["ticket_id"] for t in late], "then first come first served"
    assert fairness.verify_chain(log)
    assert fair["log_head"] == log[-1].hash
    proof = (await http.get(f"/v1/events/{event_id}/fairness/{early[3]['ticket_id']}")).json()
    assert proof["head"] == log[-1].hash
    assert fairness.verify_proof(fairness.Proof(
        fairness.LogEntry(**proof["entry"]),
        tuple(fairness.LogEntry(**e) for e in proof["successors"])), fair["log_head"])


async def _on_sale(http: httpx.AsyncClient, event_id: str) -> bool:
    fair = (await http.get(f"/v1/events/{event_id}/fairness")).json()
    return bool(fair["lottery_done"])


async def test_presale_code_holders_are_admitted_before_the_general_queue(
        http, new_event, admin, app_redis) -> None:
    event = await new_event(admission_rate_per_s=0, presale_codes=["FANCLUB1"])
    event_id = event["event_id"]
    general = [await join(http, event_id, f"gen{n}") for n in range(5)]
    insider = await join(http, event_id, "insider", priority_code="FANCLUB1")
    wrong = await join(http, event_id, "guesser", priority_code="NOTACODE")
    for ticket in [*general, insider, wrong]:  # all merged; nobody admitted at rate 0
        await wait_for(lambda ticket=ticket: _placed(http, event_id, ticket))
    assert (await status(http, event_id, general[0]))["position"] == 1
    patched = await http.patch(f"/v1/events/{event_id}", json={"admission_rate_per_s": 50},
                               headers=admin)
    assert patched.status_code == 200 and patched.json()["admission_rate_per_s"] == 50
    await wait_for(lambda: _all_admitted(http, event_id, [*general, insider, wrong]))
    order = [entry.ticket_id for entry in admission_log(app_redis, event_id)]
    assert order[0] == insider["ticket_id"]
    assert order[1:] == [t["ticket_id"] for t in general] + [wrong["ticket_id"]]


async def test_admission_never_exceeds_what_the_remaining_seats_can_serve(
        http, new_event, admin) -> None:
    event = await new_event(rows=1, seats_per_row=3)
    tickets = [await join(http, event["event_id"], f"few{n}") for n in range(8)]

    async def admitted() -> int:
        return [(await status(http, event["event_id"], t))["state"]
                for t in tickets].count("admitted")
    await wait_for(lambda: admitted())
    await asyncio.sleep(1.5)  # ticks enough to admit more, were it allowed
    assert await admitted() == 3
    stats = (await http.get(f"/v1/events/{event['event_id']}/queue/stats", headers=admin)).json()
    assert stats["admitted"] == 3 and stats["waiting"] == 5


async def test_waiting_users_hear_sold_out_within_2s_of_the_last_seat_selling(
        http, new_event, api) -> None:
    event = await new_event(rows=1, seats_per_row=2)
    event_id = event["event_id"]
    buyers = [await join(http, event_id, f"buyer{n}") for n in range(2)]
    waiter = await join(http, event_id, "waiter")
    tokens = [(await wait_for(lambda t=t: _admitted(http, event_id, t)))["admission_token"]
              for t in buyers]
    url = f"{api}/v1/events/{event_id}/queue/{waiter['ticket_id']}/stream?token={waiter['ticket_token']}"
    async with httpx.AsyncClient(timeout=30) as sse, sse.stream("GET", url) as stream:
        lines = stream.aiter_lines()
        await _next_event(lines, "position")
        for n, token in enumerate(tokens):
            auth = {"Authorization": f"Bearer {token}"}
            hold = await http.post(f"/v1/events/{event_id}/holds",
                                   json={"seat_ids": [f"A-1-{n + 1}"]}, headers=auth)
            paid = await http.post(f"/v1/holds/{hold.json()['hold_id']}/checkout",
                                   json={"payment_token": f"tok_visa_{n}"},  # one card each
                                   headers=auth | {"Idempotency-Key": "k"})
            assert paid.status_code == 201
        sold_at = time.monotonic()
        await _next_event(lines, "sold_out")
        assert time.monotonic() - sold_at < 2.0


async def _next_event(lines: Any, name: str) -> dict[str, Any]:
    event_name = None
    async for line in lines:
        if line.startswith("event: "):
            event_name = line[7:]
        elif line.startswith("data: ") and event_name == name:
            data: dict[str, Any] = json.loads(line[6:])
            return data
    raise AssertionError(f"stream ended before {name}")


async def test_stream_positions_only_go_down_until_admitted_and_resume_by_last_event_id(
        http, new_event, admin, api) -> None:
    event = await new_event(admission_rate_per_s=0)
    event_id = event["event_id"]
    tickets = [await join(http, event_id, f"line{n}") for n in range(8)]
    me = tickets[-1]
    url = f"{api}/v1/events/{event_id}/queue/{me['ticket_id']}/stream?token={me['ticket_token']}"
    await wait_for(lambda: _placed(http, event_id, me))
    positions: list[int] = []
    async with httpx.AsyncClient(timeout=30) as sse:
        async with sse.stream("GET", url) as stream:
            lines = stream.aiter_lines()
            first = await _next_event(lines, "position")
            positions.append(first["position"])
            await http.patch(f"/v1/events/{event_id}", json={"admission_rate_per_s": 4},
                             headers=admin)
            last_id = None
            async for line in lines:
                if line.startswith("id: "):
                    last_id = line[4:]
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    if data["state"] == "admitted":
                        assert data["admission_token"]
                        break
                    positions.append(data["position"])
                    if len(positions) == 2:
                        break
        assert positions == sorted(positions, reverse=True) and positions[0] == 8
        async with sse.stream("GET", url, headers={"Last-Event-ID": last_id or ""}) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    if data["state"] == "admitted":
                        break
                    assert data["position"] < positions[-1], "a resumed stream repeats nothing"
                    positions.append(data["position"])
    assert positions == sorted(positions, reverse=True)


async def _placed(http: httpx.AsyncClient, event_id: str, ticket: dict[str, Any]) -> bool:
    return (await status(http, event_id, ticket))["position"] is not None


async def test_status_needs_the_tickets_own_token_and_joins_are_rate_limited(
        http, new_event) -> None:
    event = await new_event()
    mine, theirs = await join(http, event["event_id"], "me"), await join(http, event["event_id"], "you")
    crossed = await http.get(f"/v1/events/{event['event_id']}/queue/{theirs['ticket_id']}",
                             headers={"Authorization": f"Bearer {mine['ticket_token']}"})
    assert crossed.status_code == 403
    garbage = await http.get(f"/v1/events/{event['event_id']}/queue/{mine['ticket_id']}",
                             headers={"Authorization": "Bearer nope"})
    assert garbage.status_code == 401
    bad = await http.post(f"/v1/events/{event['event_id']}/queue", json={"priority_code": ""},
                          headers=user_header("me"))
    assert bad.status_code == 400
    burst = await asyncio.gather(*[http.post(  # one user, from 120 made-up addresses
        f"/v1/events/{event['event_id']}/queue", json={},
        headers=user_header("bot") | {"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(120)])
    limited = [r for r in burst if r.status_code == 429]
    assert limited and all(r.headers.get("retry-after") for r in limited)
    assert all(r.status_code in (202, 429) for r in burst)
