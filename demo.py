"""A small on-sale, end to end, against the running stack (`make up`; `make demo` does both).

Creates an event, lets a crowd of users join the waiting room, get admitted, race for the
seats, pay (one card is declined, one hold is left to expire), then prints what happened and
audits the result: every seat sold at most once, every confirmed booking in the Kafka ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from typing import Any

import httpx

from domain import keyring, tokens
from domain.settings import DEV_ADMIN_TOKEN, DEV_TOKEN_SECRET
from infra.stack import client_settings
from store.ledger import read_bookings

USERS = int(os.environ.get("DEMO_USERS", "300"))
ROWS, PER_ROW = 10, 20
HOLD_TTL_S = 15
# How long a fan told "sold out" keeps waiting: until every hold and admission of that moment
# could have lapsed and given its seats back (the stack's ADMISSION_TTL_S, 30 s for the demo).
SOLD_OUT_PATIENCE_S = HOLD_TTL_S + float(os.environ.get("ADMISSION_TTL_S", "30")) + 5


def say(text: str) -> None:
    print(text, flush=True)


async def create_event(http: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    body = {"name": "Demo Night", "hold_ttl_s": HOLD_TTL_S, "max_seats_per_user": 4, "sections": [
        {"name": "Floor", "rows": ROWS, "seats_per_row": PER_ROW, "price_cents": 12000},
        {"name": "Balcony", "rows": 5, "seats_per_row": 20, "price_cents": 6500}]}
    response = await http.post("/v1/events", json=body,
                               headers={"Authorization": f"Bearer {admin_token}"})
    response.raise_for_status()
    event: dict[str, Any] = response.json()
    return event


async def admitted(http: httpx.AsyncClient, event_id: str, user: str) -> dict[str, str]:
    """Sign in (a dev user token: the stack is the issuer in development), join the waiting
    room and follow its SSE stream until admitted (or sold out)."""
    signed_in = await retry_429(lambda: http.post("/v1/dev/token", json={"user_id": user}))
    me = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    ticket = await retry_429(lambda: http.post(f"/v1/events/{event_id}/queue", json={},
                                               headers=me))
    body = ticket.json()
    url = f"/v1/events/{event_id}/queue/{body['ticket_id']}/stream"
    async with http.stream("GET", url, params={"token": body["ticket_token"]}) as stream:
        lines, name = stream.aiter_lines(), ""
        loop, deadline = asyncio.get_running_loop(), None
        while True:  # sold out is "for now": a fan waits while a hold or an admission could
            try:     # still give seats back, then leaves
                line = await asyncio.wait_for(anext(lines), None if deadline is None
                                              else max(0.0, deadline - loop.time()))
            except (StopAsyncIteration, TimeoutError):
                return {}
            if line.startswith("event: "):
                name = line[7:]
                deadline = ((deadline or loop.time() + SOLD_OUT_PATIENCE_S)
                            if name == "sold_out" else None)
            elif line.startswith("data: ") and name == "admitted":
                return {"Authorization": f"Bearer {json.loads(line[6:])['admission_token']}"}
            elif line.startswith("data: ") and name == "expired":
                return {}


async def source_secrets_refused(http: httpx.AsyncClient, event_id: str) -> bool:
    """Anyone can read the development secrets in the source: this stack must not take them."""
    from_source = keyring.derived(DEV_TOKEN_SECRET, 3600).active()  # the dev key, from the source
    forged = tokens.sign(from_source, tokens.Claims(
        tokens.ADMISSION, "forger", event_id, time.time() + 600, ""), time.time(), "forged")
    hold = await http.post(f"/v1/events/{event_id}/holds", json={"section": "Floor", "quantity": 1},
                           headers={"Authorization": f"Bearer {forged}"})
    rate = await http.patch(f"/v1/events/{event_id}", json={"admission_rate_per_s": 1},
                            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"})
    return hold.status_code == 401 and rate.status_code in (401, 403)


async def retry_429(send: Any) -> httpx.Response:
    """A polite client: wait as long as Retry-After says."""
    while True:
        response = await send()
        if response.status_code != 429:
            response.raise_for_status()
            return response  # type: ignore[no-any-return]
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


async def hold_like_a_fan(http: httpx.AsyncClient, event_id: str, auth: dict[str, str],
                          rng: random.Random, outcomes: Counter[str]) -> httpx.Response:
    """A fan refused the seats they wanted takes what is left, as people do: the other
    section, then one seat (so an admission ends in a hold while seats remain, and the fans
    still waiting are not kept behind admissions that gave up)."""
    first = "Floor" if rng.random() < 0.7 else "Balcony"
    other = "Balcony" if first == "Floor" else "Floor"
    quantity = rng.randint(1, 4)
    tries = [(first, quantity), (other, quantity), (first, 1), (other, 1)]
    refused = 0
    for section, count in tries:
        held = await http.post(f"/v1/events/{event_id}/holds", headers=auth,
                               json={"section": section, "quantity": count})
        if held.status_code != 409 or held.json()["error"]["code"] != "seats_unavailable":
            break
        refused += 1
    if held.status_code == 201 and refused:
        outcomes["held after taking what was left"] += 1
    return held


async def shopper(http: httpx.AsyncClient, event_id: str, n: int, rng: random.Random,
                  outcomes: Counter[str]) -> dict[str, Any] | None:
    auth = await admitted(http, event_id, f"fan{n}")
    if not auth:
        outcomes["sold out before admission"] += 1
        return None
    held = await hold_like_a_fan(http, event_id, auth, rng, outcomes)
    if held.status_code != 201:
        outcomes[f"hold refused ({held.json()['error']['code']})"] += 1
        return None
    hold = held.json()
    if n % 97 == 0:
        outcomes["hold left to expire"] += 1
        return None
    card = "tok_chargeDeclined" if n % 50 == 1 else f"tok_visa_{n}"  # each fan their own card
    paid = await http.post(f"/v1/holds/{hold['hold_id']}/checkout", headers=auth | {
        "Idempotency-Key": f"demo-{n}"}, json={"payment_token": card})
    if paid.status_code == 402:
        outcomes["card declined, hold kept"] += 1
        return None
    if paid.status_code != 201:
        outcomes[f"checkout refused ({paid.json()['error']['code']})"] += 1
        return None
    outcomes["booked"] += 1
    booking: dict[str, Any] = paid.json()
    return booking


async def main() -> int:
    settings = client_settings()  # the stack's own secrets, from its state dir
    base = os.environ.get("DEMO_URL", f"http://{settings.http_host}:{settings.http_port}")
    limits = httpx.Limits(max_connections=USERS + 50)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        event = await create_event(http, settings.admin_token)
        event_id = event["event_id"]
        say(f"Event {event_id}: {event['seats_total']} seats; {USERS} fans arrive at once.")
        rng, outcomes = random.Random(2026), Counter[str]()
        started = time.perf_counter()
        bookings = [b for b in await asyncio.gather(*[
            shopper(http, event_id, n, rng, outcomes) for n in range(USERS)]) if b]
        elapsed = time.perf_counter() - started
        say(f"On-sale ran {elapsed:.1f}s. Outcomes:")
        for outcome, count in outcomes.most_common():
            say(f"  {count:5d}  {outcome}")
        await asyncio.sleep(16)  # let the abandoned holds expire on their own
        details = (await http.get(f"/v1/events/{event_id}")).json()
        seats = (await http.get(f"/v1/events/{event_id}/seats")).json()["seats"]
        refuses_source_secrets = await source_secrets_refused(http, event_id)
    counts = Counter(s["status"] for s in seats)
    say(f"Seats now: {dict(counts)} (available per the cache: {details['seats_available']})")
    ledger = read_bookings(settings.kafka_bootstrap, settings.ledger_topic, event_id)
    sold = [seat for b in ledger for seat in b["seat_ids"]]
    revenue = sum(b["total_cents"] for b in ledger) / 100
    say(f"Ledger: {len(ledger)} bookings, {len(sold)} seats, revenue {revenue:,.2f}")
    checks = {
        "no seat sold twice": len(sold) == len(set(sold)),
        "every confirmed booking is in the ledger": {b["booking_id"] for b in bookings}
        <= {b["booking_id"] for b in ledger},
        "sold seats match the ledger": counts["sold"] == len(sold),
        "expired holds gave their seats back": counts["held"] == 0,
        "the stack refuses the secrets written in the source": refuses_source_secrets,
    }
    for check, ok in checks.items():
        say(f"  [{'ok' if ok else 'FAILED'}] {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
