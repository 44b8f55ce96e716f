"""Checkout (pay for a hold) and the confirmed booking."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api import models
from api.http import Http, json_response
from api.openapi import IDEMPOTENCY_KEY, Op
from domain import commands, errors, tokens
from domain.ids import parse_booking_id


def ops(http: Http) -> list[Op]:
    client = http.client

    async def checkout(request: Request) -> Response:
        ref, _, claims = await http.hold_of(request)
        key = commands.parse_idempotency_key(request.headers.get("idempotency-key"))
        payment_token = (await http.model(request, models.CheckoutRequest)).payment_token
        booking = await client.checkout(ref.event_id, ref.block, ref.hold_id, claims.user_id,
                                        key, payment_token)
        return json_response(booking, 201)

    async def get_booking(request: Request) -> Response:
        ref = parse_booking_id(request.path_params["booking_id"])
        claims = http.claims(request, tokens.ADMISSION, ref.event_id)
        booking = await http.catalog.booking(ref)
        if booking is None or booking["user_id"] != claims.user_id:
            raise errors.NotFound("no such booking")
        return json_response(booking)

    return [
        Op("POST", "/v1/holds/{hold_id}/checkout", checkout, (
            "Pay for a hold; the booking is confirmed once it is in the ledger"), status=201,
           answer=models.Booking, body=models.CheckoutRequest, headers=(IDEMPOTENCY_KEY,),
           security="admission", raises=(
               errors.PaymentDeclined, errors.HoldExpired, errors.HoldNotActive,
               errors.HoldAlreadyConfirmed, errors.CheckoutInProgress, errors.CardLimitExceeded,
               errors.EventClosed),
           links={"booking": {"operationId": "get_booking",
                              "parameters": {"booking_id": "$response.body#/booking_id"}}},
           tags=("bookings",)),
        Op("GET", "/v1/bookings/{booking_id}", get_booking, "A confirmed booking (its owner only)",
           answer=models.Booking, security="admission", tags=("bookings",)),
    ]
