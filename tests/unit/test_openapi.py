"""The OpenAPI document is complete and made from the same operations the app routes, and the
models refuse malformed bodies as the client's mistake (issue 13)."""

from __future__ import annotations

import types
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

import serve_app
from api import models
from domain import errors
from domain.seatmap_codec import CodecError

UNDOCUMENTED = {"/metrics", "/openapi.json", "/"}  # a 410 pointer, the document, a redirect


def app_parts() -> tuple[list[Any], dict[str, Any]]:
    http: Any = types.SimpleNamespace(client=None, settings=None, queue=None)
    routes = serve_app.build_routes(http)
    return routes, serve_app.api_document(serve_app.build_ops(http))


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items()]


def test_the_document_is_valid_openapi_3_1() -> None:
    _, document = app_parts()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_the_app_serves_is_documented_and_nothing_else() -> None:
    routes, document = app_parts()
    served = {(r.path, m.lower()) for r in routes if isinstance(r, Route)
              and r.path not in UNDOCUMENTED for m in (r.methods or ()) if m != "HEAD"}
    assert served == {(path, method) for path, method, _ in operations(document)}


def test_every_path_parameter_is_declared_with_a_pattern() -> None:
    _, document = app_parts()
    for path, _, op in operations(document):
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
        assert set(declared) == {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert all(p["required"] and "pattern" in p["schema"] for p in declared.values())


def test_every_refusal_has_the_error_shape_and_a_status_of_the_error_table() -> None:
    _, document = app_parts()
    table = set(errors.STATUS.values())
    for path, method, op in operations(document):
        refusals = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        assert refusals, (path, method)
        assert set(refusals) <= table, (path, method)
        for response in refusals.values():
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}


def test_bodies_and_answers_reference_their_models() -> None:
    _, document = app_parts()
    ops = {op["operationId"]: op for _, _, op in operations(document)}
    body = ops["create_hold"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/HoldRequest"}
    assert ops["join_queue"]["requestBody"]["required"] is False  # an empty join is {}
    answer = ops["queue_status"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/QueueStatus"}
    assert "links" in ops["create_event"]["responses"]["201"]
    assert ops["join_queue"]["responses"]["202"]["links"]["hold"]["operationId"] == "create_hold"


def test_headers_and_security_schemes_are_documented() -> None:
    _, document = app_parts()
    ops = {op["operationId"]: op for _, _, op in operations(document)}
    headers = {op_id: {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
               for op_id, op in ops.items()}
    assert "Idempotency-Key" in headers["checkout"]
    assert "Last-Event-ID" in headers["availability_stream"] | headers["queue_stream"]
    assert set(document["components"]["securitySchemes"]) == {"admin", "user", "ticket",
                                                              "admission"}
    assert ops["create_event"]["security"] == [{"admin": []}]
    assert ops["join_queue"]["security"] == [{"user": []}]
    assert ops["create_hold"]["security"] == [{"admission": []}]
    assert "security" not in ops["get_event"]


@pytest.mark.parametrize("body", [
    b"[" * 50_000, b'{"a":' * 12_000, b'{"quantity": NaN}', b'{"section": "\xff"}',
    b'{"quantity": true}', b'{"quantity": "2"}', b'{"quantity": 1.5}', b"", b"null",
    b'{"seat_ids": "A-1-1"}', b'{"seat_ids": []}', b'{"section": "A B"}'])
def test_a_malformed_hold_body_is_an_invalid_request(body: bytes) -> None:
    with pytest.raises(errors.InvalidRequest):
        models.decode(body, models.HoldRequest)


def test_a_hold_body_decodes_into_its_fields() -> None:
    wanted = models.decode(b'{"section": "A", "quantity": 2, "extra": 1}', models.HoldRequest)
    assert (wanted.seat_ids, wanted.section, wanted.quantity) == (None, "A", 2)


def test_the_status_of_an_error_is_its_class_or_nearest_ancestor_in_the_table() -> None:
    assert errors.status_of(errors.SeatsUnavailable("x")) == 409
    assert errors.status_of(CodecError) == 400  # a subclass of InvalidRequest
    assert errors.status_of(errors.TicketingError) == 400
