"""Schemathesis against the live app, from its own GET /openapi.json (issue 13).

Every operation of the document goes through the examples, coverage and fuzzing phases, then a
stateful run follows the document's links (create event -> join -> hold -> checkout -> booking).
The checks: no 5xx, every status documented, every body of the documented type and schema, and
every request that breaks the schema refused with a 4xx.

The run needs real resources to get past 404s: the test makes an event, a ticket, a hold and a
booking first and writes their ids into the document's parameters as examples. Tokens come from
an auth provider that mints what each operation's security scheme asks for (admin token, user
token, ticket or admission token for the event in the path), as the `admission` fixture does.
The run is bounded (examples per operation, stream events, a time budget) to about a minute
and a half of a 2-core machine; the events it creates are closed afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import re
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from domain.settings import Settings
from domain.tokens import ADMISSION, TICKET, Claims
from store import keys
from tests.integration.conftest import identity_of

pytestmark = pytest.mark.integration

FUZZER = "fuzzer"
EVENT_IN = re.compile(r"ev[0-9a-f]{12}")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,negative_data_rejection")
MAX_EXAMPLES = 12  # per operation and phase: ~25 operations x 4 phases within the budget
# Streams never end by themselves: read their first events, then let go.
CONFIG = """
[[operations]]
include-path-regex = "/stream$"
max-stream-events = 2
request-timeout = 3
"""


class Tokens:
    """The bearer token each operation's security scheme asks for, minted like the stack's."""

    settings: Settings
    fallback_event: str

    def get(self, case: Any, context: Any) -> str | None:
        schemes = [name for requirement in case.operation.definition.raw.get("security", [])
                   for name in requirement]
        if not schemes:
            return None
        scheme = schemes[0]
        if scheme == "admin":
            return self.settings.admin_token
        identity = identity_of(self.settings)
        if scheme == "user":
            return identity.dev_token(FUZZER)
        params = case.path_parameters or {}
        found = EVENT_IN.search(" ".join(str(v) for v in params.values()))
        event_id = found.group(0) if found else self.fallback_event
        kind = TICKET if scheme == "ticket" else ADMISSION
        subject = str(params.get("ticket_id", "")) if kind == TICKET else ""
        return identity.sign(Claims(kind, FUZZER, event_id, time.time() + 600, subject))

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def live_resources(base: str, settings: Settings) -> dict[str, str]:
    """An on-sale event with a ticket, a hold and a booking of the fuzzer's: the examples."""
    identity = identity_of(settings)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    with httpx.Client(base_url=base, timeout=60) as http:
        created = http.post("/v1/events", headers=admin, json={"name": "Fuzzed on-sale", "sections": [
            {"name": "A", "rows": 4, "seats_per_row": 10, "price_cents": 5000}]})
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        user = {"Authorization": f"Bearer {identity.dev_token(FUZZER)}"}
        joined = http.post(f"/v1/events/{event_id}/queue", headers=user, json={})
        assert joined.status_code == 202, joined.text
        admission = {"Authorization": "Bearer " + identity.sign(
            Claims(ADMISSION, FUZZER, event_id, time.time() + 600, ""))}
        held = http.post(f"/v1/events/{event_id}/holds", headers=admission,
                         json={"seat_ids": ["A-4-1"]})
        paid = http.post(f"/v1/events/{event_id}/holds", headers=admission,
                         json={"seat_ids": ["A-4-2"]})
        assert held.status_code == paid.status_code == 201, (held.text, paid.text)
        booked = http.post(f"/v1/holds/{paid.json()['hold_id']}/checkout", headers=admission | {
            "Idempotency-Key": "fuzz-1"}, json={"payment_token": "tok_visa"})
        assert booked.status_code == 201, booked.text
    return {"event_id": event_id, "ticket_id": joined.json()["ticket_id"],
            "token": joined.json()["ticket_token"], "hold_id": held.json()["hold_id"],
            "booking_id": booked.json()["booking_id"], "name": "A"}


def close_all(settings: Settings, event_ids: list[str]) -> None:
    """Close the events the run made, all at once (their entities stop on every host)."""
    import ray

    from actors import directory

    refs = []
    for event_id in event_ids:
        with contextlib.suppress(Exception):
            refs.append(directory.event_owner(settings, event_id).close.remote())
    for ref in refs:  # an event the run already closed, or broke, leaves nothing to stop
        with contextlib.suppress(Exception):
            ray.get(ref, timeout=60)


def with_examples(document: dict[str, Any], examples: dict[str, str]) -> dict[str, Any]:
    """The document with live ids as the examples of the parameters that name them."""
    for item in document["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["name"] in examples:
                    param["example"] = examples[param["name"]]
    return document


def import_hypothesis_strategies() -> None:
    """Import every hypothesis strategy module here, before the run's two worker threads draw
    their first values: hypothesis imports some lazily, and two threads importing at once raced
    twice ("cannot import name RandomStrategy" for `st.randoms()`; for `st.from_regex()`, a
    SystemError "AST constructor recursion depth mismatch" from two threads compiling at once
    under pytest's assertion rewriting, which covers the whole hypothesis package)."""
    import hypothesis.strategies._internal as internal

    for module in pkgutil.iter_modules(internal.__path__):
        importlib.import_module(f"{internal.__name__}.{module.name}")


def test_schemathesis_finds_no_server_error_no_schema_mismatch_and_no_accepted_invalid_request(
        api: str, app_settings: Settings, tmp_path: Path) -> None:
    import_hypothesis_strategies()
    import schemathesis
    from click.testing import CliRunner
    from schemathesis.cli import schemathesis as cli

    examples = live_resources(api, app_settings)
    Tokens.settings, Tokens.fallback_event = app_settings, examples["event_id"]
    schemathesis.auth(refresh_interval=None, retry_on=[])(Tokens)
    document = with_examples(httpx.get(api + "/openapi.json").json(), examples)
    operations = sum(len(item) for item in document["paths"].values())
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    events = redis.Redis.from_url(app_settings.redis_url)

    def stored_events() -> set[str]:
        return {e.decode() for e in cast(list[bytes], events.zrange(keys.events_index(), 0, -1))}

    before = stored_events()
    started = time.monotonic()
    try:
        result = CliRunner().invoke(cli, [
            "--config-file", str(tmp_path / "schemathesis.toml"), "run",
            str(tmp_path / "openapi.json"), "--url", api,
            "--phases", "examples,coverage,fuzzing,stateful", "--checks", CHECKS,
            "--max-examples", str(MAX_EXAMPLES), "--workers", "2", "--seed", "1300",
            "--generation-database", "none", "--request-timeout", "20",
            "--max-failures", "20", "--no-color", "--suppress-health-check", "all"])
    finally:
        created = stored_events() - before
        close_all(app_settings, sorted(created | {examples["event_id"]}))
        events.close()
    elapsed = time.monotonic() - started
    print(result.output[-20_000:])
    print(f"schemathesis: {operations} operations, {elapsed:.1f} s, {len(created)} events made")
    assert result.exit_code == 0, result.output[-8_000:]


async def test_a_ticket_id_no_join_could_make_is_a_404_not_a_waiting_ticket(
        http: httpx.AsyncClient, new_event: Any, app_settings: Settings) -> None:
    """Found by the run above: a ticket token for the ticket "null" read back as waiting."""
    event = await new_event()
    token = identity_of(app_settings).sign(Claims(TICKET, FUZZER, event["event_id"],
                                                  time.time() + 60, "null"))
    for path in ("", "/stream"):
        response = await http.get(f"/v1/events/{event['event_id']}/queue/null{path}",
                                  headers={"Authorization": f"Bearer {token}"},
                                  params={"token": token})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
