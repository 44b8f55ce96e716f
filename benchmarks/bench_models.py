"""msgspec or pydantic for the typed API: the hot paths' body parsing and response encoding.

Issue 13 asks for request and response models chosen by a benchmark of the hot paths. Per
request, in one process, no services:
  * join   - decode and validate a POST /v1/events/{id}/queue body (`{}` and a presale code),
  * hold   - decode and validate a POST /v1/events/{id}/holds body (seat ids; section+quantity),
  * status - encode a GET /v1/events/{id}/queue/{ticket} answer (the hottest read), and
             a hold's answer,
each by: `baseline` (before issue 13: json.loads + the hand-written checks of
domain/commands.py, and json.dumps of a dict), `pydantic` (2.x strict models:
model_validate_json / model_dump_json) and `msgspec` (Structs with Meta constraints:
msgspec.json.decode(type=) / encode).
Best of --repeat timings of --number calls each, in microseconds per call.

    python -m benchmarks.bench_models [--number 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import timeit
from typing import Annotated, Any, Literal

import msgspec
import pydantic

from benchmarks._common import machine_info, write_result
from domain import commands
from domain.errors import Forbidden, InvalidRequest

NAME = "bench_models"
SEAT = r"^[A-Za-z0-9_]{1,16}-[1-9][0-9]{0,5}-[1-9][0-9]{0,5}$"
SECTION = r"^[A-Za-z0-9_]{1,16}$"

JOIN_BODIES = {"join_empty": b"{}", "join_code": b'{"priority_code": "PRESALE-2026"}'}
HOLD_BODIES = {"hold_seats": b'{"seat_ids": ["A-2-3", "A-2-4"]}',
               "hold_best": b'{"section": "A", "quantity": 2}'}
STATUS: dict[str, Any] = {"ticket_id": "tq0123456789abcdef", "state": "waiting", "position": 12345,
          "eta_s": 61.5, "eta_low_s": 40.0, "eta_high_s": 90.2, "admission_token": None}
HOLD: dict[str, Any] = {"hold_id": "hd.ev0123456789ab.3.0123456789abcdef", "event_id": "ev0123456789ab",
        "status": "held", "seat_ids": ["A-2-3", "A-2-4"], "section": "A", "total_cents": 10000,
        "expires_at": "2026-12-01T20:00:00Z", "expires_in_s": 599.998}



class PJoin(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)
    user_id: str | None = None
    priority_code: Annotated[str, pydantic.Field(min_length=1, max_length=64)] | None = None


class PHold(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)
    seat_ids: Annotated[list[Annotated[str, pydantic.Field(pattern=SEAT)]],
                        pydantic.Field(min_length=1, max_length=100)] | None = None
    section: Annotated[str, pydantic.Field(pattern=SECTION)] | None = None
    quantity: Annotated[int, pydantic.Field(ge=1, le=100)] | None = None


class PStatus(pydantic.BaseModel):
    ticket_id: str
    state: Literal["pre_queue", "waiting", "admitted", "sold_out", "expired"]
    position: int | None
    eta_s: float | None
    eta_low_s: float | None
    eta_high_s: float | None
    admission_token: str | None


class PHoldView(pydantic.BaseModel):
    hold_id: str
    event_id: str
    status: str
    seat_ids: list[str]
    section: str
    total_cents: int
    expires_at: str
    expires_in_s: float


class MJoin(msgspec.Struct, forbid_unknown_fields=False):
    user_id: str | None = None
    priority_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class MHold(msgspec.Struct):
    seat_ids: Annotated[list[Annotated[str, msgspec.Meta(pattern=SEAT)]],
                        msgspec.Meta(min_length=1, max_length=100)] | None = None
    section: Annotated[str, msgspec.Meta(pattern=SECTION)] | None = None
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None


class MStatus(msgspec.Struct):
    ticket_id: str
    state: Literal["pre_queue", "waiting", "admitted", "sold_out", "expired"]
    position: int | None
    eta_s: float | None
    eta_low_s: float | None
    eta_high_s: float | None
    admission_token: str | None


class MHoldView(msgspec.Struct):
    hold_id: str
    event_id: str
    status: str
    seat_ids: list[str]
    section: str
    total_cents: int
    expires_at: str
    expires_in_s: float


def old_parse_join(body: Any, user_id: str) -> str | None:
    """The join's hand-written check this work replaced (domain/commands.py before issue 13)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    claimed = body.get("user_id")
    if claimed is not None and claimed != user_id:
        raise Forbidden("user_id is not the signed-in user")
    code = body.get("priority_code")
    if code is not None and (not isinstance(code, str) or not 1 <= len(code) <= 64):
        raise InvalidRequest("priority_code must be a string of 1 to 64 characters")
    return code


def cases() -> dict[str, dict[str, Any]]:
    """Each case's three contenders, as zero-argument calls."""
    out: dict[str, dict[str, Any]] = {}
    mjoin, mhold = msgspec.json.Decoder(MJoin), msgspec.json.Decoder(MHold)
    encoder = msgspec.json.Encoder()
    for name, body in JOIN_BODIES.items():
        out[name] = {
            "baseline": lambda b=body: old_parse_join(json.loads(b), "alice"),
            "pydantic": lambda b=body: PJoin.model_validate_json(b),
            "msgspec": lambda b=body: mjoin.decode(b)}
    for name, body in HOLD_BODIES.items():
        out[name] = {
            "baseline": lambda b=body: commands.parse_hold(json.loads(b), 100),
            "pydantic": lambda b=body: PHold.model_validate_json(b),
            "msgspec": lambda b=body: mhold.decode(b)}
    # encoding: the handler has the values; each contender builds its object and encodes it
    out["status_encode"] = {
        "baseline": lambda: json.dumps(dict(STATUS), separators=(",", ":")).encode(),
        "pydantic": lambda: PStatus(**STATUS).model_dump_json().encode(),
        "msgspec": lambda: encoder.encode(MStatus(**STATUS))}
    out["hold_encode"] = {
        "baseline": lambda: json.dumps(dict(HOLD), separators=(",", ":")).encode(),
        "pydantic": lambda: PHoldView(**HOLD).model_dump_json().encode(),
        "msgspec": lambda: encoder.encode(MHoldView(**HOLD))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for case, contenders in cases().items():
        results[case] = {}
        for who, call in contenders.items():
            best = min(timeit.repeat(call, number=args.number, repeat=args.repeat))
            results[case][who] = round(best / args.number * 1e6, 3)
        print(case, json.dumps(results[case]), flush=True)
    totals = {who: round(sum(r[who] for r in results.values()), 3)
              for who in ("baseline", "pydantic", "msgspec")}
    print("sum of cases (us)", json.dumps(totals))
    write_result(NAME, {"benchmark": NAME, "machine": machine_info(), "parameters": {
        **vars(args), "pydantic": pydantic.VERSION, "msgspec": msgspec.__version__,
        "unit": "microseconds per call, best of repeats"}, "results": results,
        "sum_of_cases_us": totals})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
