"""The booking API end to end over HTTP, on the real Redis, Kafka and Ray."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from httpx import AsyncClient

from domain import keyring, tokens
from domain.errors import Unauthorized
from domain.settings import DEV_ADMIN_TOKEN, DEV_TOKEN_SECRET, Settings
from domain.tokens import ADMISSION, TICKET, Claims, sign
from store import keys
from store.ledger import read_bookings
from tests.integration.conftest import identity_of

pytestmark = pytest.mark.integration


async def hold(http: AsyncClient, event_id: str, auth: dict[str, str], **body: Any) -> Any:
    return await http.post(f"/v1/events/{event_id}/holds", json=body, headers=auth)


async def checkout(http: AsyncClient, hold_id: str, auth: dict[str, str], key: str = "k1",
                   token: str = "tok_visa") -> Any:
    return await http.post(f"/v1/holds/{hold_id}/checkout", json={"payment_token": token},
                           headers=auth | {"Idempotency-Key": key})


async def test_hold_then_checkout_confirms_a_booking_in_the_ledger(
        http, new_event, admission, app_settings: Settings) -> None:
    event = await new_event()
    auth = admission("bob", event["event_id"])
    held = await hold(http, event["event_id"], auth, seat_ids=["A-2-3", "A-2-4"])
    assert held.status_code == 201, held.text
    assert held.json()["total_cents"] == 10000
    booked = await checkout(http, held.json()["hold_id"], auth)
    assert booked.status_code == 201 and booked.json()["status"] == "confirmed"
    ledger = read_bookings(app_settings.kafka_bootstrap, app_settings.ledger_topic,
                           event["event_id"])
    assert [b["booking_id"] for b in ledger] == [booked.json()["booking_id"]]
    fetched = await http.get(f"/v1/bookings/{booked.json()['booking_id']}", headers=auth)
    assert fetched.status_code == 200 and fetched.json()["seat_ids"] == ["A-2-3", "A-2-4"]
    seats = (await http.get(f"/v1/events/{event['event_id']}/seats")).json()["seats"]
    assert {s["seat_id"] for s in seats if s["status"] == "sold"} == {"A-2-3", "A-2-4"}


async def test_a_taken_seat_gets_409_seats_unavailable(http, new_event, admission) -> None:
    event = await new_event()
    assert (await hold(http, event["event_id"], admission("u1", event["event_id"]),
                       seat_ids=["A-1-1"])).status_code == 201
    second = await hold(http, event["event_id"], admission("u2", event["event_id"]),
                        seat_ids=["A-1-1", "A-1-2"])
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "seats_unavailable"
    seats = (await http.get(f"/v1/events/{event['event_id']}/seats")).json()["seats"]
    assert next(s for s in seats if s["seat_id"] == "A-1-2")["status"] == "available"


async def test_best_available_holds_adjacent_seats_in_the_front_row(
        http, new_event, admission) -> None:
    event = await new_event(rows=3, seats_per_row=10)
    held = await hold(http, event["event_id"], admission("u", event["event_id"]),
                      section="A", quantity=4)
    assert held.status_code == 201
    assert held.json()["seat_ids"] == ["A-1-4", "A-1-5", "A-1-6", "A-1-7"]


async def test_price_change_does_not_touch_an_existing_hold(
        http, new_event, admission, admin) -> None:
    event = await new_event()
    auth = admission("carol", event["event_id"])
    before = await hold(http, event["event_id"], auth, seat_ids=["A-1-1"])
    patched = await http.patch(f"/v1/events/{event['event_id']}/sections/A",
                               json={"price_cents": 9000}, headers=admin)
    assert patched.status_code == 200
    after = await hold(http, event["event_id"], auth, seat_ids=["A-1-2"])
    assert before.json()["total_cents"] == 5000 and after.json()["total_cents"] == 9000
    booked = await checkout(http, before.json()["hold_id"], auth)
    assert booked.json()["total_cents"] == 5000
    details = (await http.get(f"/v1/events/{event['event_id']}")).json()
    assert details["sections"][0]["price_cents"] == 9000


async def test_checkout_is_idempotent_by_key_and_409_for_another_key(
        http, new_event, admission) -> None:
    event = await new_event()
    auth = admission("dan", event["event_id"])
    held = (await hold(http, event["event_id"], auth, seat_ids=["A-3-3"])).json()
    first = await checkout(http, held["hold_id"], auth, key="same")
    repeat = await checkout(http, held["hold_id"], auth, key="same")
    other = await checkout(http, held["hold_id"], auth, key="other")
    assert first.status_code == repeat.status_code == 201
    assert first.json()["booking_id"] == repeat.json()["booking_id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "hold_already_confirmed"


async def test_declined_payment_is_402_and_the_hold_stays_active(
        http, new_event, admission) -> None:
    event = await new_event()
    auth = admission("eve", event["event_id"])
    held = (await hold(http, event["event_id"], auth, seat_ids=["A-1-9"])).json()
    declined = await checkout(http, held["hold_id"], auth, token="tok_chargeDeclined")
    assert declined.status_code == 402
    assert (await http.get(f"/v1/holds/{held['hold_id']}", headers=auth)).json()["status"] == "active"
    assert (await checkout(http, held["hold_id"], auth, key="k2")).status_code == 201


async def test_a_user_holds_plus_buys_at_most_max_seats_per_user(
        http, new_event, admission) -> None:
    event = await new_event(max_seats_per_user=3)
    auth = admission("fay", event["event_id"])
    first = (await hold(http, event["event_id"], auth, seat_ids=["A-1-1", "A-1-2"])).json()
    assert (await checkout(http, first["hold_id"], auth)).status_code == 201
    over = await hold(http, event["event_id"], auth, seat_ids=["A-2-1", "A-2-2"])
    assert over.status_code == 409 and over.json()["error"]["code"] == "user_limit_exceeded"
    assert (await hold(http, event["event_id"], auth, seat_ids=["A-2-1"])).status_code == 201


async def test_release_frees_the_seats_and_only_the_holder_may_see_or_release(
        http, new_event, admission) -> None:
    event = await new_event()
    owner, other = admission("gus", event["event_id"]), admission("hal", event["event_id"])
    held = (await hold(http, event["event_id"], owner, seat_ids=["A-4-4"])).json()
    assert (await http.get(f"/v1/holds/{held['hold_id']}", headers=other)).status_code == 404
    assert (await http.delete(f"/v1/holds/{held['hold_id']}", headers=other)).status_code == 403
    assert (await checkout(http, held["hold_id"], other)).status_code == 403
    assert (await http.delete(f"/v1/holds/{held['hold_id']}", headers=owner)).status_code == 204
    assert (await http.get(f"/v1/holds/{held['hold_id']}", headers=owner)).json()["status"] == "released"
    again = await hold(http, event["event_id"], other, seat_ids=["A-4-4"])
    assert again.status_code == 201


async def test_tokens_forged_expired_or_for_another_event_or_kind_are_refused(
        http, new_event, app_settings: Settings) -> None:
    event, elsewhere = await new_event(), await new_event()
    key, now = identity_of(app_settings).ring.active(), time.time()
    stranger = keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), now)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def signed(with_key: keyring.SigningKey, claims: Claims) -> dict[str, str]:
        return bearer(sign(with_key, claims, now, "jti"))

    cases = {
        "forged": (signed(stranger, Claims(ADMISSION, "u", event["event_id"], now + 60)), 401),
        "forged with our kid": (signed(keyring.SigningKey(key.kid, stranger.private, now),
                                       Claims(ADMISSION, "u", event["event_id"], now + 60)), 401),
        "expired": (signed(key, Claims(ADMISSION, "u", event["event_id"], now - 1)), 401),
        "other event": (signed(key, Claims(ADMISSION, "u", elsewhere["event_id"], now + 60)), 403),
        "ticket token": (signed(key, Claims(TICKET, "u", event["event_id"], now + 60)), 401),
        "user token": (bearer(identity_of(app_settings).dev_token("u")), 401),
        "garbage": (bearer("not-a-token"), 401),
        "missing": ({}, 401),
    }
    for name, (headers, status) in cases.items():
        response = await hold(http, event["event_id"], headers, seat_ids=["A-1-1"])
        assert response.status_code == status, name
        assert set(response.json()["error"]) == {"code", "message"}, name


async def test_an_admission_that_lapsed_still_pays_for_its_hold_but_makes_no_new_one(
        http, new_event, admission) -> None:
    event = await new_event(hold_ttl_s=60)  # the hold outlives the admission
    auth = admission("late", event["event_id"], ttl_s=1.5)
    held = await hold(http, event["event_id"], auth, seat_ids=["A-3-1"])
    assert held.status_code == 201, held.text
    await asyncio.sleep(2.0)  # the admission has lapsed; the hold has not
    assert (await hold(http, event["event_id"], auth, seat_ids=["A-3-2"])).status_code == 401
    seen = await http.get(f"/v1/holds/{held.json()['hold_id']}", headers=auth)
    assert seen.status_code == 200
    booked = await checkout(http, held.json()["hold_id"], auth)
    assert booked.status_code == 201, booked.text
    stranger = admission("someone-else", event["event_id"])
    assert (await checkout(http, held.json()["hold_id"], stranger, "k2")).status_code in (403, 404)


BAD_HOLDS = [
    ("malformed json", b"{not json", 400),
    ("not an object", b"[1, 2]", 400),
    ("wrong type seat_ids", b'{"seat_ids": "A-1-1"}', 400),
    ("empty seat_ids", b'{"seat_ids": []}', 400),
    ("malformed seat id", b'{"seat_ids": ["A_1_1"]}', 400),
    ("seat that does not exist", b'{"seat_ids": ["A-99-1"]}', 400),
    ("unknown section", b'{"section": "Z", "quantity": 1}', 400),
    ("zero quantity", b'{"section": "A", "quantity": 0}', 400),
    ("negative quantity", b'{"section": "A", "quantity": -2}', 400),
    ("huge quantity", b'{"section": "A", "quantity": 100000000000}', 400),
    ("string quantity", b'{"section": "A", "quantity": "2"}', 400),
    ("both shapes", b'{"seat_ids": ["A-1-1"], "section": "A", "quantity": 1}', 400),
    ("duplicate seats", b'{"seat_ids": ["A-1-1", "A-1-1"]}', 400),
    ("body over 64 KiB", b'{"seat_ids": ["' + b"A" * 70000 + b'"]}', 413),
]


@pytest.mark.parametrize(("name", "body", "status"), BAD_HOLDS, ids=[c[0] for c in BAD_HOLDS])
async def test_bad_hold_input_gets_a_clear_4xx_and_changes_nothing(
        http, new_event, admission, name: str, body: bytes, status: int) -> None:
    event = await new_event()
    auth = admission("ivy", event["event_id"]) | {"Content-Type": "application/json"}
    response = await http.post(f"/v1/events/{event['event_id']}/holds", content=body,
                               headers=auth)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message"}
    details = (await http.get(f"/v1/events/{event['event_id']}")).json()
    assert details["seats_available"] == details["seats_total"]


async def test_unknown_ids_and_other_events_seats_get_4xx(http, new_event, admission) -> None:
    event, other = await new_event(), await new_event(
        sections=[{"name": "B", "rows": 1, "seats_per_row": 5, "price_cents": 1}])
    auth = admission("jo", event["event_id"])
    assert (await hold(http, event["event_id"], auth, seat_ids=["B-1-1"])).status_code == 400
    assert (await http.get("/v1/events/evffffffffffff")).status_code == 404
    assert (await http.get("/v1/events/nope/seats")).status_code == 404
    assert (await http.get("/v1/holds/hd.x.y.z", headers=auth)).status_code == 404
    assert (await http.get("/v1/bookings/garbage", headers=auth)).status_code == 404
    assert (await http.get("/nowhere")).json()["error"]["code"] == "not_found"
    assert other["seats_total"] == 5


BAD_EVENTS = [
    ("no name", {"sections": [{"name": "A", "rows": 1, "seats_per_row": 1, "price_cents": 1}]}),
    ("no sections", {"name": "x", "sections": []}),
    ("negative price", {"name": "x", "sections": [
        {"name": "A", "rows": 1, "seats_per_row": 1, "price_cents": -1}]}),
    ("float rows", {"name": "x", "sections": [
        {"name": "A", "rows": 1.5, "seats_per_row": 1, "price_cents": 1}]}),
    ("section name with dash", {"name": "x", "sections": [
        {"name": "A-B", "rows": 1, "seats_per_row": 1, "price_cents": 1}]}),
    ("naive onsale_at", {"name": "x", "onsale_at": "2030-01-01T00:00:00", "sections": [
        {"name": "A", "rows": 1, "seats_per_row": 1, "price_cents": 1}]}),
]


@pytest.mark.parametrize(("name", "body"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
async def test_bad_event_input_gets_400(http, admin, name: str, body: dict[str, Any]) -> None:
    response = await http.post("/v1/events", json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_admin_endpoints_need_the_admin_token(http, new_event) -> None:
    event = await new_event()
    body = {"name": "x", "sections": [{"name": "A", "rows": 1, "seats_per_row": 1,
                                       "price_cents": 1}]}
    assert (await http.post("/v1/events", json=body)).status_code == 401
    assert (await http.patch(f"/v1/events/{event['event_id']}/sections/A",
                             json={"price_cents": 1},
                             headers={"Authorization": "Bearer wrong"})).status_code == 401


async def test_the_stack_never_signs_with_or_accepts_the_secrets_written_in_the_source(
        http, new_event, app_settings: Settings, user_auth) -> None:
    """Its secrets are generated as `make up` generates them: a token made with what the source
    holds (the development secret, the signing key derived from it, the admin token) fails."""
    event = await new_event()
    eid, now = event["event_id"], time.time()
    assert app_settings.token_secret != DEV_TOKEN_SECRET
    assert app_settings.admin_token != DEV_ADMIN_TOKEN
    joined = (await http.post(f"/v1/events/{eid}/queue", json={},
                              headers=user_auth("fan"))).json()
    from_source = keyring.derived(DEV_TOKEN_SECRET, 3600)
    with pytest.raises(Unauthorized):
        tokens.verify(from_source.verifying(now), joined["ticket_token"], tokens.TICKET, eid, now)

    def forged(kind: str) -> dict[str, str]:
        token = tokens.sign(from_source.active(), Claims(kind, "fan", eid, now + 600,
                                                         joined["ticket_id"]), now, "forged")
        return {"Authorization": f"Bearer {token}"}

    assert (await hold(http, eid, forged(ADMISSION), seat_ids=["A-1-1"])).status_code == 401
    status = await http.get(f"/v1/events/{eid}/queue/{joined['ticket_id']}",
                            headers=forged(TICKET))
    assert status.status_code == 401
    stats = await http.get(f"/v1/events/{eid}/queue/stats",
                           headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"})
    assert stats.status_code == 401


async def test_openapi_and_health_answer_and_metrics_point_to_rays_endpoint(http) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert "/v1/events/{event_id}/holds" in spec["paths"]
    assert (await http.get("/metrics")).status_code == 410  # tests/integration/test_metrics.py
    health = await http.get("/healthz")
    assert health.status_code == 200 and all(health.json()["checks"].values())


async def test_the_seat_cap_holds_per_card_across_accounts_and_a_second_card_pays(
        http, new_event, admission, app_redis) -> None:
    """One person, two accounts, one card: the card has paid for the cap; tok_visa_2 is another
    card; tok_chargeDeclined still declines and a declined card claims nothing."""
    event = await new_event(max_seats_per_user=2)
    eid = event["event_id"]
    first, second, third = (admission(u, eid) for u in ("card-1", "card-2", "card-3"))
    pair = (await hold(http, eid, first, seat_ids=["A-1-1", "A-1-2"])).json()
    assert (await checkout(http, pair["hold_id"], first)).status_code == 201
    one = (await hold(http, eid, second, seat_ids=["A-2-1"])).json()
    refused = await checkout(http, one["hold_id"], second)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "card_limit_exceeded"
    assert (await http.get(f"/v1/holds/{one['hold_id']}", headers=second)).json()["status"] == "active"
    declined = await checkout(http, one["hold_id"], second, key="k2", token="tok_chargeDeclined")
    assert declined.status_code == 402
    assert (await checkout(http, one["hold_id"], second, key="k3", token="tok_visa_2")).status_code == 201
    cards = {k.decode(): int(v) for k, v in app_redis.hgetall(keys.card_seats(eid)).items()}
    assert cards == {"fp_visa": 2, "fp_visa_2": 1, "fp_declined": 0}
    # The second card has one seat left under the cap of 2.
    two = (await hold(http, eid, third, seat_ids=["A-3-1", "A-3-2"])).json()
    over = await checkout(http, two["hold_id"], third, token="tok_visa_2")
    assert over.status_code == 409 and over.json()["error"]["code"] == "card_limit_exceeded"
