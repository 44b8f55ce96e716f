"""Operations as data, and the OpenAPI 3.1 document made from them.

Every route of the API is an `Op`: its method and path, the models of its body, query string
and answers (api/models.py), the bearer token it takes, and the errors it can raise. The routes
(`routes`) and the document (`document`) are both made from the same list, so an operation
cannot exist undocumented. Error statuses come from `domain.errors.STATUS`, the one table that
maps error types to statuses; every refusal has the `Error` shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.routing import Route

from api import models
from domain import errors

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "admin": {"type": "http", "scheme": "bearer", "description": (
        "The stack's admin token (settings `admin_token`, `make env` prints it)")},
    "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": (
        "A signed-in user: a token of the configured OIDC issuer (JWKS), or in development a "
        "dev token from POST /v1/dev/token. `sub` is the user id")},
    "ticket": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": (
        "The ticket_token a join answered: ES256, aud = event id, kind = ticket")},
    "admission": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": (
        "The admission_token of an admitted ticket: ES256, aud = event id, kind = admission; "
        "verifiable with /.well-known/jwks.json")},
}

PATH_PARAMS: dict[str, dict[str, Any]] = {
    "event_id": {"type": "string", "pattern": models.EVENT_ID_PATTERN},
    "ticket_id": {"type": "string", "pattern": models.TICKET_ID_PATTERN},
    "hold_id": {"type": "string", "pattern": models.HOLD_ID_PATTERN},
    "booking_id": {"type": "string", "pattern": models.BOOKING_ID_PATTERN},
    "name": {"type": "string", "pattern": models.SECTION_PATTERN},
}


@dataclass(frozen=True)
class Header:
    """A request header an operation reads."""

    name: str
    schema: dict[str, Any]
    description: str = ""


IDEMPOTENCY_KEY = Header("Idempotency-Key", {"type": "string", "pattern": models.IDEMPOTENCY_PATTERN},
                         "a retried checkout with the same key answers the same booking")
LAST_EVENT_ID = Header("Last-Event-ID", {"type": "string"}, (
    "the SSE id last seen (the seat version); junk or too old means a fresh snapshot"))
IF_NONE_MATCH = Header("If-None-Match", {"type": "string"}, "an ETag seen before: 304 when unchanged")


@dataclass(frozen=True)
class Op:
    """One operation: what the route runs and everything the document says of it."""

    method: str
    path: str
    handler: Callable[..., Any]
    summary: str
    description: str = ""
    status: int = 200
    answer: type | tuple[type, ...] | None = None  # body of `status`: one model, or oneOf
    media: str = "application/json"
    body: type | None = None  # JSON request body model
    body_required: bool = True
    query: type | None = None  # a Struct: each field a query parameter
    headers: tuple[Header, ...] = ()
    security: str | None = None  # a key of SECURITY_SCHEMES
    raises: tuple[type[errors.TicketingError], ...] = ()
    other: dict[int, str] = field(default_factory=dict)  # bodiless answers, e.g. {304: ...}
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def route(self) -> Route:
        return Route(self.path, self.handler, methods=[self.method])

    def errors(self) -> list[type[errors.TicketingError]]:
        """What it can refuse with: its own errors, and those of what it takes."""
        out = list(self.raises)
        if re.search(r"\{\w+\}", self.path):
            out.append(errors.NotFound)
        if self.body is not None:
            out += [errors.InvalidRequest, errors.BodyTooLarge]
        if self.query is not None or self.headers or re.search(r"\{\w+\}", self.path):
            out.append(errors.InvalidRequest)
        if self.security is not None:
            out.append(errors.Unauthorized)
        if self.security in ("ticket", "admission"):  # a token of another event or ticket
            out.append(errors.Forbidden)
        out.append(errors.Unavailable)  # a dependency down or moving: retry after Retry-After
        return list(dict.fromkeys(out))


def document(ops: Iterable[Op], info: dict[str, Any],
             extra_schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `ops` (schemas are JSON Schema 2020-12, from the models)."""
    ops = list(ops)
    types: list[type] = [models.Error]
    for op in ops:
        answers = op.answer if isinstance(op.answer, tuple) else (op.answer,)
        types += [t for t in (*answers, op.body, op.query) if t is not None]
    types = list(dict.fromkeys(types))
    _, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    for op in ops:  # query models are parameters, not components
        if op.query is not None:
            components.pop(op.query.__name__, None)
    return {"openapi": "3.1.0", "info": info, "paths": paths,
            "components": {"schemas": components | (extra_schemas or {}),
                           "securitySchemes": SECURITY_SCHEMES}}


def _ref(model: type) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(op: Op, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        out["description"] = op.description
    if op.tags:
        out["tags"] = list(op.tags)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}
        for name in re.findall(r"\{(\w+)\}", op.path)]
    if op.query is not None:
        schema = components[op.query.__name__]
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop = _without_null({k: v for k, v in prop.items() if k != "default"})
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop.pop("description")
            params.append(param)
    for header in op.headers:
        param = {"name": header.name, "in": "header", "required": False, "schema": header.schema}
        if header.description:
            param["description"] = header.description
        params.append(param)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": _ref(op.body)}}}
    if op.security is not None:
        out["security"] = [{op.security: []}]
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": op.summary}
    if op.answer is not None:
        answers = op.answer if isinstance(op.answer, tuple) else (op.answer,)
        schema = _ref(answers[0]) if len(answers) == 1 else {"oneOf": [_ref(a) for a in answers]}
        ok["content"] = {op.media: {"schema": schema}}
    elif op.media != "application/json":
        ok["content"] = {op.media: {"schema": {"type": "string"}}}
    if op.links:
        ok["links"] = op.links
    responses[str(op.status)] = ok
    for status, description in op.other.items():
        responses[str(status)] = {"description": description}
    by_status: dict[int, list[str]] = {}
    for error in op.errors():
        by_status.setdefault(errors.status_of(error), []).append(error.code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "refused: " + ", ".join(dict.fromkeys(codes)),
            "content": {"application/json": {"schema": _ref(models.Error)}}}
    out["responses"] = dict(sorted(responses.items()))
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the `null` of an optional field: a query string
    has no null, only an absent parameter."""
    options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
    if "anyOf" not in schema or len(options) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return rest | options[0] if len(options) == 1 else rest | {"anyOf": options}


def routes(ops: Iterable[Op]) -> list[Route]:
    return [op.route() for op in ops]
