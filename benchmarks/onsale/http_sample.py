"""The HTTP sample of an on-sale: real clients over real sockets (aiohttp), one process.

Each client is a person: at its arrival second it joins (POST /v1/events/{id}/queue with a
real user token), reads its status once (GET .../queue/{ticket}), follows its SSE stream
(reconnecting with Last-Event-ID when the stream breaks) until `admitted`, and then holds
(POST /v1/events/{id}/holds, `{"section","quantity"}`), pays (POST /v1/holds/{id}/checkout,
its own card, or first the declining test card) and so on, as `crowd.Person` says. A
`sold_out` while seats are only held (not sold) can be followed by more positions and an
admission when holds expire, so a client keeps its page open until the driver says the
on-sale is over (STOP on stdin).

    python -m benchmarks.onsale.http_sample CONFIG.json OUT.json
stdout: "PROGRESS {json}" every second, "DONE" at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


class Client:
    def __init__(self, cfg: dict[str, Any], spec: dict[str, Any]) -> None:
        self.cfg, self.spec = cfg, spec
        self.user = spec["user_id"]
        self.lat: dict[str, list[float]] = {"join": [], "status": [], "hold": [], "checkout": []}
        # (received at, head (the SSE id), position, first on its connection)
        self.positions: list[tuple[float, int, int | None, bool]] = []
        self.state = "new"
        self.outcome = ""
        self.join_send = self.join_recv = 0.0
        self.ticket_id = ""
        self.admitted_at = 0.0
        self.sold_out_at = 0.0
        self.errors: dict[str, int] = {}
        self.reconnects = 0
        self.booking_id = ""
        self.seats = 0
        # successes as [kind, attempt started, answered] (wall), for the chaos marks' RTO
        self.ok: list[tuple[str, float, float]] = []

    def err(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def run(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        cfg = self.cfg
        base, event_id = cfg["base_url"], cfg["event_id"]
        await asyncio.sleep(max(0.0, self.spec["arrive_at"] - time.time()))
        me = {"Authorization": f"Bearer {self.spec['user_token']}"}
        body: dict[str, Any] = {}
        for attempt in range(200):
            t0 = time.time()
            try:
                async with http.post(f"{base}/v1/events/{event_id}/queue", json={},
                                     headers=me) as r:
                    status = r.status
                    body = await r.json(content_type=None)
                    retry = float(r.headers.get("retry-after", "0.5") or 0.5)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                status, retry = 0, 0.5
            t1 = time.time()
            if status == 202:
                if not self.join_send:
                    self.join_send = t0
                self.join_recv = t1
                self.lat["join"].append(t1 - t0)
                self.ok.append(("join", t0, t1))
                break
            if attempt == 0:
                self.join_send = t0  # the person's arrival: the first try
            self.err(f"join_{status}")
            await asyncio.sleep(min(retry, 2.0) * (1 + random.random()))
        else:
            self.state = "join_failed"
            return
        self.ticket_id = body["ticket_id"]
        self.state = "joined"
        ticket = {"Authorization": f"Bearer {body['ticket_token']}"}
        await self.status(http, base, event_id, ticket)
        admission = await self.follow(http, base, event_id, body["ticket_token"], stop)
        if admission:
            await self.shop(http, base, event_id, admission, stop)

    async def status(self, http: aiohttp.ClientSession, base: str, event_id: str,
                     ticket: dict[str, str]) -> None:
        t0 = time.time()
        try:
            async with http.get(f"{base}/v1/events/{event_id}/queue/{self.ticket_id}",
                                headers=ticket) as r:
                await r.read()
                if r.status == 200:
                    self.lat["status"].append(time.time() - t0)
                else:
                    self.err(f"status_{r.status}")
        except (aiohttp.ClientError, TimeoutError):
            self.err("status_conn")

    async def follow(self, http: aiohttp.ClientSession, base: str, event_id: str, token: str,
                     stop: asyncio.Event) -> str:
        """The SSE stream until admitted (returns the admission token) or the on-sale ends."""
        last_id: str | None = None
        url = f"{base}/v1/events/{event_id}/queue/{self.ticket_id}/stream"
        while not stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with http.get(url, params={"token": token}, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as r:
                    if r.status != 200:
                        self.err(f"stream_{r.status}")
                        await asyncio.sleep(1.0)
                        continue
                    name, sid, first = "", None, True
                    async for raw in r.content:
                        line = raw.decode().rstrip("\r\n")
                        if line.startswith("id: "):
                            sid = line[4:]
                            last_id = sid
                        elif line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            now = time.time()
                            data = json.loads(line[6:])
                            if name == "position":
                                self.positions.append((now, int(sid or 0), data.get("position"),
                                                       first))
                                first = False
                            elif name == "admitted":
                                self.admitted_at = now
                                self.state = "admitted"
                                return str(data["admission_token"])
                            elif name == "sold_out":
                                if not self.sold_out_at:
                                    self.sold_out_at = now
                                self.state = "sold_out"
                            elif name == "expired":
                                self.state = "expired"
                                return ""
                        if stop.is_set():
                            return ""
            except (aiohttp.ClientError, TimeoutError, ValueError):
                self.err("stream_broken")
            if stop.is_set():
                break
            self.reconnects += 1
            await asyncio.sleep(0.5 + random.random())
        return ""

    async def shop(self, http: aiohttp.ClientSession, base: str, event_id: str,
                   admission: str, stop: asyncio.Event) -> None:
        p = self.spec["person"]
        auth = {"Authorization": f"Bearer {admission}"}
        quantity = p["quantity"]
        sections = self.cfg["sections"]
        attempts_left = 2  # an expired hold is tried again once
        await asyncio.sleep(p["think_hold_s"])
        while attempts_left > 0 and not stop.is_set():
            attempts_left -= 1
            hold = await self.hold(http, base, event_id, auth, sections, quantity, stop)
            if hold is None:
                self.outcome = self.outcome or "no_seats"
                return
            self.seats = len(hold["seat_ids"])
            if p["abandons"]:
                self.outcome = "abandoned"
                return
            await asyncio.sleep(p["think_pay_s"])
            card = "tok_chargeDeclined" if p["declined_first"] else p["card"]
            key = f"h-{self.user}-{hold['hold_id'][-12:]}"
            while not stop.is_set():
                t0 = time.time()
                try:
                    async with http.post(f"{base}/v1/holds/{hold['hold_id']}/checkout",
                                         json={"payment_token": card},
                                         headers=auth | {"Idempotency-Key": key}) as r:
                        data = await r.json(content_type=None)
                        status = r.status
                except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                    status, data = 0, {}
                if status in (201, 402, 410):
                    self.lat["checkout"].append(time.time() - t0)
                if status == 201:
                    self.ok.append(("checkout", t0, time.time()))
                    self.outcome = "booked"
                    self.booking_id = data["booking_id"]
                    return
                if status == 402:
                    if not p["retries_after_decline"] or card == p["card"]:
                        self.outcome = "declined_gave_up"
                        return
                    card = p["card"]
                    await asyncio.sleep(p["think_pay_s"] / 2)
                    continue
                code = (data.get("error") or {}).get("code", "") if isinstance(data, dict) else ""
                if status in (401, 403):  # the admission lapsed: this person is done
                    self.err(f"checkout_{status}")
                    self.outcome = "admission_lapsed"
                    return
                if status in (404, 410) or code == "hold_not_active":
                    self.err(f"checkout_{status}_{code}")
                    break  # the hold is gone: hold again
                self.err(f"checkout_{status}")
                await asyncio.sleep(0.5)
        self.outcome = self.outcome or "gave_up"

    async def hold(self, http: aiohttp.ClientSession, base: str, event_id: str,
                   auth: dict[str, str], sections: list[str], quantity: int,
                   stop: asyncio.Event) -> dict[str, Any] | None:
        """Best available in a section with seats; fewer seats if fewer are left; while all
        seats are held (not sold) the person waits and tries again (holds expire)."""
        while not stop.is_set():
            free = await self.free(http, base, event_id)
            candidates = [s for s in sections if free.get(s, 0) >= quantity]
            if not candidates and any(free.values()):
                quantity = max(1, max(free.values()))
                candidates = [s for s in sections if free.get(s, 0) >= quantity]
            if not candidates:
                if self.cfg_sold_out():
                    return None
                await asyncio.sleep(1.0)
                continue
            section = random.choice(candidates)
            t0 = time.time()
            try:
                async with http.post(f"{base}/v1/events/{event_id}/holds", headers=auth,
                                     json={"section": section, "quantity": quantity}) as r:
                    data = await r.json(content_type=None)
                    status = r.status
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                status, data = 0, {}
            if status in (201, 409):
                self.lat["hold"].append(time.time() - t0)
            if status == 201:
                self.ok.append(("hold", t0, time.time()))
                return dict(data)
            code = (data.get("error") or {}).get("code", "") if isinstance(data, dict) else ""
            if code == "seats_unavailable":  # answered, for the RTO: no seat is free
                self.ok.append(("hold", t0, time.time()))
            self.err(f"hold_{status}_{code}")
            if status in (401, 403) or code == "user_limit_exceeded":
                return None
            await asyncio.sleep(0.3 + random.random() * 0.5)
        return None

    async def free(self, http: aiohttp.ClientSession, base: str, event_id: str) -> dict[str, int]:
        try:
            async with http.get(f"{base}/v1/events/{event_id}") as r:
                data = await r.json(content_type=None)
            return {s["name"]: int(s.get("seats_available", 0)) for s in data.get("sections", [])}
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, KeyError, TypeError):
            return {}

    def cfg_sold_out(self) -> bool:
        return bool(SOLD_OUT[0])

    def result(self) -> dict[str, Any]:
        return {"user_id": self.user, "ticket_id": self.ticket_id, "state": self.state,
                "outcome": self.outcome, "join_send": self.join_send, "join_recv": self.join_recv,
                "admitted_at": self.admitted_at, "sold_out_at": self.sold_out_at,
                "lat": self.lat, "positions": self.positions, "errors": self.errors,
                "reconnects": self.reconnects, "booking_id": self.booking_id, "seats": self.seats,
                "ok": self.ok}


SOLD_OUT = [False]  # set when the driver says every seat is sold (SOLDOUT on stdin)


async def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    out_path = sys.argv[2]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients = [Client(cfg, spec) for spec in cfg["clients"]]
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60, sock_read=60)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def control() -> None:
        while True:
            line = (await stdin.readline()).decode().strip()
            if line == "SOLDOUT":
                SOLD_OUT[0] = True
            elif line == "STOP" or not line:
                stop.set()
                return

    async def progress() -> None:
        while not stop.is_set():
            counts: dict[str, int] = {}
            for c in clients:
                state = "shopping" if c.state == "admitted" and not c.outcome else c.state
                counts[state] = counts.get(state, 0) + 1
            print("PROGRESS " + json.dumps(counts), flush=True)
            await asyncio.sleep(1.0)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        ctl = loop.create_task(control())
        prog = loop.create_task(progress())
        tasks = [loop.create_task(c.run(http, stop)) for c in clients]
        await stop.wait()
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        prog.cancel()
        ctl.cancel()
    with open(out_path, "w") as f:
        json.dump({"clients": [c.result() for c in clients],
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
