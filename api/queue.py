"""The waiting room: join, proof-of-work challenge, status, stream, stats and fairness proofs.

POST .../queue and GET .../queue/{ticket} are the hot paths of an on-sale: they read the body
through its model, call the queue client and encode the answer with msgspec, nothing else.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api import models
from api.http import SSE_HEADERS, Http, client_key, json_response
from api.openapi import LAST_EVENT_ID, Op
from domain import errors, tokens
from domain.ids import is_ticket_id


def ticket_id_of(request: Request) -> str:
    """The path's ticket id; one that no join could have made is a 404 (a token whose subject
    it is would otherwise read a "waiting" ticket that cannot exist)."""
    ticket_id: str = request.path_params["ticket_id"]
    if not is_ticket_id(ticket_id):
        raise errors.NotFound("no such ticket")
    return ticket_id


def ops(http: Http) -> list[Op]:
    client, settings, queue = http.client, http.settings, http.queue

    async def join_queue(request: Request) -> Response:
        user_id = await http.user(request)
        event = await client.event(request.path_params["event_id"])
        # Before the body is read: parsing is the expensive part.
        await queue.limit_join(event.event_id, client_key(request, settings.client_addr_header),
                               user_id)
        join = await http.model(request, models.JoinRequest, empty=b"{}")
        if join.user_id is not None and join.user_id != user_id:
            raise errors.Forbidden("user_id is not the signed-in user")
        if event.pow_difficulty:
            http.check_pow(event, user_id, join.pow)
        ticket = await queue.join(event, user_id, join.priority_code)
        return json_response(ticket, 202)

    async def challenge(request: Request) -> Response:
        user_id = await http.user(request)
        event = await client.event(request.path_params["event_id"])
        await queue.limit_signin(client_key(request, settings.client_addr_header))
        token = http.identity.sign(tokens.Claims(
            tokens.CHALLENGE, user_id, event.event_id, time.time() + settings.pow_challenge_ttl_s))
        return json_response({"challenge": token, "difficulty": event.pow_difficulty,
                              "expires_in_s": settings.pow_challenge_ttl_s})

    async def queue_status(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        claims = http.claims(request, tokens.TICKET, event.event_id)
        who = client_key(request, settings.client_addr_header)
        return json_response(await queue.status(event, ticket_id_of(request), claims, who))

    async def queue_stream(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        claims = http.identity.verify(request.query_params.get("token", ""), tokens.TICKET,
                                      event.event_id)
        events = await queue.stream(event, ticket_id_of(request), claims,
                                    request.headers.get("last-event-id"))
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def queue_stats(request: Request) -> Response:
        http.admin(request)
        return json_response(await queue.stats(
            await client.event(request.path_params["event_id"])))

    async def event_fairness(request: Request) -> Response:
        return json_response(await queue.fairness(
            await client.event(request.path_params["event_id"])))

    async def ticket_proof(request: Request) -> Response:
        event = await client.event(request.path_params["event_id"])
        return json_response(await queue.proof(event, ticket_id_of(request)))

    ev = "/v1/events/{event_id}"
    # order matters: /queue/stats and /queue/challenge before /queue/{ticket_id}
    return [
        Op("POST", ev + "/queue", join_queue, (
            "Join the event's waiting room, stamped by NTP time; a rejoin keeps its place"),
           status=202, answer=models.Ticket, body=models.JoinRequest, body_required=False,
           security="user", raises=(errors.Forbidden, errors.RateLimited,
                                    errors.ChallengeRequired, errors.EventClosed),
           links={"status": {"operationId": "queue_status", "parameters": {
               "event_id": "$request.path.event_id", "ticket_id": "$response.body#/ticket_id"}},
               "hold": {"operationId": "create_hold", "parameters": {
                   "event_id": "$request.path.event_id"}}},
           tags=("queue",)),
        Op("GET", ev + "/queue/stats", queue_stats, (
            "Waiting, admitted, admission rate and oldest wait (admin)"),
           answer=models.QueueStats, security="admin", tags=("queue",)),
        Op("GET", ev + "/queue/challenge", challenge, (
            "A proof-of-work challenge for the signed-in user (events with pow_difficulty)"),
           description=(
            "Find a nonce such that SHA-256 of \"challenge:nonce\" starts with `difficulty` "
            "zero bits, then join with the pow object (challenge and nonce)."),
           answer=models.Challenge, security="user", raises=(errors.RateLimited,),
           tags=("queue",)),
        Op("GET", ev + "/queue/{ticket_id}", queue_status, (
            "State, position, ETA range and, once admitted, the admission token"),
           answer=models.QueueStatus, security="ticket",
           raises=(errors.Forbidden, errors.RateLimited), tags=("queue",)),
        Op("GET", ev + "/queue/{ticket_id}/stream", queue_stream, (
            "Server-Sent Events of position, admitted, sold_out (ticket token in ?token=)"),
           answer=models.QueueEvent, media="text/event-stream", query=models.QueueStreamQuery,
           headers=(LAST_EVENT_ID,),
           raises=(errors.Unauthorized, errors.Forbidden, errors.RateLimited), tags=("queue",)),
        Op("GET", ev + "/fairness", event_fairness, (
            "Lottery commitment and seed, pre-queue entrants, admission log head"),
           answer=models.Fairness, tags=("fairness",)),
        Op("GET", ev + "/fairness/{ticket_id}", ticket_proof, (
            "A ticket's admission log entry and the chain from it to the head"),
           answer=models.Proof, tags=("fairness",)),
    ]
