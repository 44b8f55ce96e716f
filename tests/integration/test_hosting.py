"""Many events on a few host processes: entities activate on use, passivate when idle, still
do on time what needs no request, and close with their event (issue 9)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import ray

from actors import directory
from domain import placement
from domain.event import Event
from domain.venue import Section
from store import catalog, keys
from tests.integration.conftest import EVENT_CLOSE_AFTER_S, PASSIVATE_AFTER_S, active_entities

pytestmark = pytest.mark.integration


async def eventually(check: Any, timeout_s: float, step_s: float = 0.1) -> float:
    """Seconds until check() is true (fails after timeout_s)."""
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        assert time.monotonic() - start < timeout_s, "it never happened"
        await asyncio.sleep(step_s)
    return time.monotonic() - start


async def test_many_events_cost_no_process_of_their_own(http, new_event, app_settings) -> None:
    before = set(ray.util.list_named_actors())
    events = [await new_event(rows=1, seats_per_row=5) for _ in range(10)]
    assert set(ray.util.list_named_actors()) <= before | {
        directory.host_name(i) for i in range(app_settings.host_pool_max)}
    for event in events:  # each answers, hosted by the pool's few processes
        assert (await http.get(f"/v1/events/{event['event_id']}")).status_code == 200


async def test_an_idle_event_is_passivated_and_its_holds_still_expire_on_time(
        http, new_event, admission, app_settings, app_redis) -> None:
    event = await new_event(hold_ttl_s=12)
    eid = event["event_id"]
    held = await http.post(f"/v1/events/{eid}/holds", json={"seat_ids": ["A-1-1"]},
                           headers=admission("sleeper", eid))
    assert held.status_code == 201
    block = placement.block_entity(eid, 0)
    assert block in active_entities(app_settings)
    await eventually(lambda: block not in active_entities(app_settings),
                     PASSIVATE_AFTER_S + 6, step_s=0.5)
    assert app_redis.getbit(keys.block_held(eid, 0), 0) == 1  # passivated, still held
    assert app_redis.zscore(keys.due_index(), block) is not None  # its reminder
    expires_at = time.time() + held.json()["expires_in_s"]
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    late = await eventually(lambda: app_redis.getbit(keys.block_held(eid, 0), 0) == 0, 5)
    assert late < 1.5, f"the hold expired {late:.2f}s late"
    again = await http.post(f"/v1/events/{eid}/holds", json={"seat_ids": ["A-1-1"]},
                            headers=admission("next", eid))
    assert again.status_code == 201


async def test_a_join_wakes_a_passivated_room_and_is_admitted(
        http, new_event, app_settings, user_auth) -> None:
    event = await new_event(admission_rate_per_s=100)
    eid = event["event_id"]
    first = await http.post(f"/v1/events/{eid}/queue", json={}, headers=user_auth("early"))
    assert first.status_code == 202
    room = placement.room_entity(eid)

    await eventually(lambda: room not in active_entities(app_settings),
                     PASSIVATE_AFTER_S + 10, step_s=0.5)
    joined = (await http.post(f"/v1/events/{eid}/queue", json={},
                              headers=user_auth("late"))).json()

    async def admitted() -> bool:
        status = await http.get(f"/v1/events/{eid}/queue/{joined['ticket_id']}",
                                headers={"Authorization": f"Bearer {joined['ticket_token']}"})
        return bool(status.json()["state"] == "admitted")

    for _ in range(100):
        if await admitted():
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the woken room never admitted the join")


async def test_closing_an_event_stops_its_entities_and_keeps_its_bookings_readable(
        http, new_event, admission, admin, app_settings, user_auth) -> None:
    event = await new_event()
    eid = event["event_id"]
    auth = admission("closer", eid)
    held = (await http.post(f"/v1/events/{eid}/holds", json={"seat_ids": ["A-1-1"]},
                            headers=auth)).json()
    booking = (await http.post(f"/v1/holds/{held['hold_id']}/checkout",
                               json={"payment_token": "tok_visa"},
                               headers=auth | {"Idempotency-Key": "close"})).json()
    assert (await http.post(f"/v1/events/{eid}/close")).status_code == 401
    closed = await http.post(f"/v1/events/{eid}/close", headers=admin)
    assert closed.status_code == 200 and closed.json()["closed_at"]
    assert not {e for e in active_entities(app_settings) if eid in e}
    refused = await http.post(f"/v1/events/{eid}/holds", json={"seat_ids": ["A-1-2"]},
                              headers=auth)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "event_closed"
    await asyncio.sleep(2.5)  # replicas re-read the event within EVENT_CACHE_S
    join = await http.post(f"/v1/events/{eid}/queue", json={}, headers=user_auth("too-late"))
    assert join.status_code == 409 and join.json()["error"]["code"] == "event_closed"
    kept = await http.get(f"/v1/bookings/{booking['booking_id']}", headers=auth)
    assert kept.status_code == 200 and kept.json()["seat_ids"] == ["A-1-1"]


async def test_an_event_closes_by_itself_a_setting_after_it_ends(
        http, new_event, app_redis) -> None:
    ends = time.time() + 1
    event = await new_event(onsale_at=ends - 60, ends_at=ends)
    eid = event["event_id"]

    def closed() -> bool:
        stored = catalog_event(app_redis, eid)
        return stored.closed_at is not None

    waited = await eventually(closed, 10, step_s=0.25)
    assert time.time() >= ends + EVENT_CLOSE_AFTER_S and waited < 6
    assert (await http.get(f"/v1/events/{eid}")).json()["closed_at"]
    assert not app_redis.zscore(keys.open_events(), eid)


def catalog_event(app_redis: Any, event_id: str) -> Event:
    return Event.from_json(app_redis.get(keys.event(event_id)))


async def test_an_entity_whose_activation_failed_is_activated_again_on_the_next_call(
        app_settings, app_redis) -> None:
    event = Event(f"ev{int(time.time() * 1000) + 7:012x}", "Late", time.time(), 600, 6,
                  (Section("A", 1, 5, 100),), 2000)
    block = directory.seat_block(app_settings, event.event_id, 0)
    with pytest.raises(ray.exceptions.RayTaskError, match="no such event"):
        await block.ping.remote()  # its event is not stored yet: activation fails
    from redis.asyncio import Redis

    redis = Redis.from_url(app_settings.redis_url)
    await catalog.save_event(redis, event, time.time())
    assert await block.ping.remote() == 5  # not the first failure again
    await redis.aclose()


ZOMBIE = 41  # far beyond the session pool (it never grows past a few hosts)


async def test_a_router_never_starts_a_host_outside_the_pool(app_settings) -> None:
    from domain.errors import Unavailable

    with pytest.raises(Unavailable):
        directory.of(app_settings).host(ZOMBIE)  # a stale view of the members asking for it
    with pytest.raises(ValueError):
        ray.get_actor(directory.host_name(ZOMBIE), namespace=app_settings.ray_namespace)


async def test_host_0_stops_a_host_actor_it_finds_outside_the_pool(app_settings) -> None:
    from actors.host import EntityHostActor

    zombie = EntityHostActor.options(  # started the way a router with a stale view once did
        name=directory.host_name(ZOMBIE + 1), namespace=app_settings.ray_namespace,
        lifetime="detached", num_cpus=0).remote(app_settings, ZOMBIE + 1)

    def gone() -> bool:
        try:
            ray.get_actor(directory.host_name(ZOMBIE + 1), namespace=app_settings.ray_namespace)
            return False
        except ValueError:
            return True

    await eventually(gone, 10 * app_settings.pool_check_interval_s + 10, step_s=0.5)
    with pytest.raises(ray.exceptions.ActorDiedError, match=r"ray\.kill"):
        await zombie.ping.remote()  # stopped for good, not restarted
