"""The join log: each event's joins topic, written by the ingress, read by the ingest actors.

Records are keyed by ticket id, so one event's joins spread over all its partitions while a
user's rejoins stay in order on one partition.
"""

from __future__ import annotations

from typing import Any

from domain.waiting.tickets import Join
from store.kafka_io import durable_producer, send_acked


def encode(ticket_id: str, event_id: str, user_id: str, at_ms: int, uncertainty_ms: int,
           synced: bool, priority_code: str | None) -> dict[str, Any]:
    return {"t": ticket_id, "e": event_id, "u": user_id, "at": at_ms, "unc": uncertainty_ms,
            "sync": synced, "code": priority_code}


def decode(value: dict[str, Any], partition: int, offset: int) -> Join:
    return Join(ticket_id=value["t"], event_id=value["e"], user_id=value["u"],
                joined_at_ms=int(value["at"]), uncertainty_ms=int(value["unc"]),
                clock_synced=bool(value["sync"]), priority_code=value.get("code"),
                partition=partition, offset=offset)


class JoinLog:
    """The ingress's producer: a join is accepted (202) only once the broker acknowledged it."""

    def __init__(self, bootstrap: str, timeout_s: float, linger_ms: int = 2) -> None:
        self._producer = durable_producer(bootstrap, linger_ms=linger_ms)
        self._timeout_s = timeout_s

    async def append(self, topic: str, record: dict[str, Any]) -> None:
        await send_acked(self._producer, topic, record["t"], record, self._timeout_s)
