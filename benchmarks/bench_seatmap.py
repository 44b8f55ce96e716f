"""What a snapshot and a delta cost, seatmap-v1 against the seat-id JSON, and how fast Chromium
draws the stadium overview and a section.

codec (no services, seconds): for venues of 2,000 / 60,000 / 200,000 seats (blocks of
`--block-max-seats`, the production default 2,000) and three seat patterns - `onsale` (all
available), `midsale` (contiguous best-available holds and sales: 40 % sold, 10 % held) and
`random` (every seat an independent random status: the bitmap's worst case) - it reports the
SSE snapshot message in bytes for both forms, the time to encode it from scratch and after one
block changed (the feed's cached path), and for a delta of `--delta-seats` changed seats (100
changes/s merged for 0.2 s) its bytes, bytes per changed seat and encode time. The JSON form
is the baseline, measured in the same run.

browser (`--browser`, ~2 min): starts Redis, Kafka, Ray and Serve as bench_availability_stream
does (its ports shifted by `--port-offset`), creates a 12 x 50 x 100 venue (blocks of 10,000),
opens seats.html in headless Chromium at 390 x 844 (a phone) `--runs` times and reads the
Performance API: first-contentful-paint, the `overview-live` mark (overview drawn with live
counts from the first snapshot) and the `section-zoom` measure (tap on a section tile until
its 5,000 seats are drawn on the canvas). Goals: overview < 1 s, zoom < 200 ms.

    python -m benchmarks.bench_seatmap [--browser] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from domain import seatmap_codec as codec
from domain.availability import (
    Change,
    Delta,
    SeatBoard,
    compact_delta_message,
    compact_snapshot_message,
    delta_message,
    snapshot_message,
)
from domain.venue import Section, Venue

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "bench_seatmap"
SIZES = {2_000: (1, 20), 60_000: (12, 50), 200_000: (40, 50)}  # sections, rows of 100 seats


def venue_of(seats: int, block_max_seats: int) -> Venue:
    sections, rows = SIZES[seats]
    return Venue.build(tuple(Section(f"S{k}", rows, 100, 5000) for k in range(sections)),
                       block_max_seats)


def pattern(venue: Venue, kind: str, rng: random.Random) -> list[bytearray]:
    """Seat codes per block: all available, contiguous holds/sales, or independent random."""
    out = []
    for block in venue.blocks:
        n = block.seats_total
        if kind == "onsale":
            codes = bytearray(n)
        elif kind == "random":
            codes = bytearray(rng.choices((0, 1, 2), (50, 10, 40), k=n))
        else:  # best-available fills from the front rows in groups of 1-6, some still held
            codes, i = bytearray(n), 0
            while i < n * 0.5:
                size = rng.randint(1, 6)
                status = 1 if rng.random() < 0.2 else 2
                codes[i:i + size] = bytes((status,)) * len(codes[i:i + size])
                i += size + (1 if rng.random() < 0.1 else 0)
        out.append(codes)
    return out


def timed(fn: Any, repeat: int) -> float:
    """Best-of-3 mean seconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def board_of(venue: Venue, codes: list[bytearray], version: int) -> SeatBoard:
    statuses = {block.seat_at(i): codec.STATUS_NAMES[c]
                for block, block_codes in zip(venue.blocks, codes, strict=True)
                for i, c in enumerate(block_codes)}
    return SeatBoard(statuses, version, [bytearray(c) for c in codes])


def delta_of(venue: Venue, seats: int, rng: random.Random) -> Delta:
    cells: dict[tuple[int, int], int] = {}
    named: dict[str, str] = {}
    while len(cells) < seats:  # holds of 1-4 adjacent seats in random blocks
        block = rng.choice(venue.blocks)
        start, size, status = rng.randrange(block.seats_total), rng.randint(1, 4), rng.randint(0, 2)
        for i in range(start, min(block.seats_total, start + size)):
            if len(cells) < seats:
                cells[(block.index, i)] = status
                named[block.seat_at(i)] = codec.STATUS_NAMES[status]
    return Delta(100, 120, named, cells)


def measure(venue: Venue, kind: str, codes: list[bytearray], rng: random.Random,
            delta_seats: int) -> dict[str, Any]:
    seats = venue.seats_total
    board = board_of(venue, codes, 12345)
    etag = codec.etag_of(codec.layout_body(venue))
    compact = compact_snapshot_message(board, etag, {"source": "replica"})
    plain = snapshot_message(board, {"source": "replica"})
    repeat = max(1, 200_000 // seats)

    def from_scratch() -> bytes:
        return compact_snapshot_message(SeatBoard({}, 12345, board.codes), etag)

    def one_block_changed() -> bytes:  # what the feed does after a change: block 0 re-encoded
        code = board.codes[0][0]
        board.apply(Change(board.version + 1, {}, {(0, 0): code}))
        return compact_snapshot_message(board, etag)

    delta = delta_of(venue, delta_seats, rng)
    single = delta_of(venue, 1, rng)
    compact_delta, plain_delta = compact_delta_message(delta), delta_message(delta)
    return {
        "seats": seats, "blocks": len(venue.blocks), "pattern": kind,
        "layout_bytes_once": len(codec.layout_body(venue)),
        "snapshot_bytes": {"compact": len(compact), "json": len(plain),
                           "json_over_compact": round(len(plain) / len(compact), 1)},
        "snapshot_encode_ms": {
            "compact_from_scratch": round(timed(from_scratch, repeat) * 1000, 3),
            "compact_one_block_changed": round(timed(one_block_changed, repeat) * 1000, 3),
            "json": round(timed(lambda: snapshot_message(board), max(1, repeat // 4)) * 1000, 3)},
        "delta": {
            "changed_seats": delta_seats,
            "bytes": {"compact": len(compact_delta), "json": len(plain_delta)},
            "bytes_per_changed_seat": {
                "compact_message": round(len(compact_delta) / delta_seats, 2),
                "compact_runs_only": round(len(codec.encode_runs(delta.cells)) / delta_seats, 2),
                "json_message": round(len(plain_delta) / delta_seats, 2)},
            "one_seat_message_bytes": {"compact": len(compact_delta_message(single)),
                                       "json": len(delta_message(single))},
            "encode_us": {
                "compact": round(timed(lambda: compact_delta_message(delta), 2000) * 1e6, 2),
                "json": round(timed(lambda: delta_message(delta), 2000) * 1e6, 2)}},
    }


def codec_results(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = random.Random(14)
    rows = []
    for seats in SIZES:
        venue = venue_of(seats, args.block_max_seats)
        for kind in ("onsale", "midsale", "random"):
            rows.append(measure(venue, kind, pattern(venue, kind, rng), rng, args.delta_seats))
            print(json.dumps(rows[-1]), flush=True)
    return rows


# -------------------------------------------------------------------------------------------
# the browser

async def browser_results(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    from playwright.async_api import async_playwright

    from benchmarks import bench_availability_stream as sse

    with sse.Services(1, uvicorn=False, block_max_seats=10_000) as services:
        base = f"http://127.0.0.1:{sse.SERVE_PORT}"
        admin = {"Authorization": f"Bearer {services.settings.admin_token}"}
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            started = time.monotonic()
            created = await http.post("/v1/events", headers=admin, json={
                "name": "Stadium bench", "sections": [
                    {"name": chr(65 + k), "rows": 50, "seats_per_row": 100, "price_cents": 5000}
                    for k in range(12)]})
            assert created.status_code == 201, created.text
            create_s = time.monotonic() - started
            event_id = created.json()["event_id"]
            sizes = {}
            for path in (f"/v1/events/{event_id}/seats",
                         f"/v1/events/{event_id}/seats?format=compact",
                         f"/v1/events/{event_id}/seats?section=B",
                         f"/v1/events/{event_id}/layout", f"/v1/events/{event_id}"):
                response = await http.get(path, headers={"Accept-Encoding": "gzip"})
                sizes[path.split(event_id)[1] or "/"] = {
                    "wire_bytes": len(response.content) if "content-encoding" not in
                    response.headers else int(response.headers["content-length"]),
                    "body_bytes": len(response.content),
                    "gzip": response.headers.get("content-encoding") == "gzip"}
        runs = []
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            for _ in range(args.runs):
                context = await chromium.new_context(viewport={"width": 390, "height": 844},
                                                     device_scale_factor=2, base_url=base)
                page = await context.new_page()
                await page.goto(f"/app/seats.html?event={event_id}")
                await page.wait_for_function(
                    "performance.getEntriesByName('overview-live').length > 0", timeout=30_000)
                await page.get_by_role("button", name="Section F, $50.00, 5,000 of 5,000 "
                                                      "seats left").click()
                await page.wait_for_function(
                    "performance.getEntriesByName('section-zoom').length > 0", timeout=30_000)
                runs.append(await page.evaluate("""() => ({
                  first_contentful_paint_ms:
                    performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
                  overview_live_ms: performance.getEntriesByName('overview-live')[0].startTime,
                  section_zoom_ms: performance.getEntriesByName('section-zoom')[0].duration,
                  dom_nodes: document.getElementsByTagName('*').length})"""))
                await context.close()
            await chromium.close()
    summary = {key: {"median": round(statistics.median(r[key] for r in runs), 1),
                     "max": round(max(r[key] for r in runs), 1)}
               for key in ("first_contentful_paint_ms", "overview_live_ms", "section_zoom_ms")}
    return {"event_create_s": round(create_s, 2), "responses": sizes, "runs": runs,
            "summary": summary, "goals": {"overview_ms": 1000, "section_zoom_ms": 200},
            "viewport": "390x844 @2x, headless Chromium (Debian), same machine as the server"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--block-max-seats", type=int, default=2000)
    parser.add_argument("--delta-seats", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also the Chromium measurements")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": NAME, "parameters": vars(args),
                              "loadavg_at_start": list(os.getloadavg()),
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "goals": {"snapshot_60000_wire_bytes": 20_480,
                                        "delta_bytes_per_changed_seat": 10}}
    result["codec"] = codec_results(args)
    result["loadavg_after_codec"] = list(os.getloadavg())
    if args.browser:
        result["browser"] = asyncio.run(browser_results(args))
        print(json.dumps(result["browser"], indent=1))
    result["loadavg_at_end"] = list(os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{NAME}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
