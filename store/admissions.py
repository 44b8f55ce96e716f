"""Admissions, durable: every admission step of a room is in the admissions topic (key = event
id) before Redis has it.

Who was admitted cannot be derived from anything else: it depends on when the room ran and at
what rate, and an admitted user holds a signed admission token Redis knows nothing about. A
Redis that lost its last writes, or everything, would queue those users again and admit them
twice. So the room appends each step here first (acks=all), then applies it in Redis; a new
incarnation reads the event's steps back and restores the admissions Redis lacks
(`restore_admissions.lua`), before it takes any join. A step logged whose Redis write then
failed is restored too: that user is admitted, once, a little late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.settings import Settings
from domain.waiting.status import Admission
from store.durable_log import DurableLog, read_log


@dataclass(frozen=True)
class Admitted:
    ticket_id: str
    member: str  # the lane element (`ticket|user|joined_at_ms`)
    lane: str  # "presale" or "general"
    admission: Admission


def step_record(admitted: list[Admitted]) -> dict[str, Any]:
    return {"a": [[a.ticket_id, a.member, a.lane, a.admission.admitted_at_ms,
                   a.admission.expires_at_ms, a.admission.user_id] for a in admitted]}


async def append(log: DurableLog, settings: Settings, event_id: str,
                 admitted: list[Admitted]) -> None:
    await log.append(settings.admissions_topic, event_id, step_record(admitted))


def read(settings: Settings, event_id: str) -> list[Admitted]:
    """Every admission of the event in the log, in order, each ticket once. Blocking."""
    seen: set[str] = set()
    found = []
    for value in read_log(settings.kafka_bootstrap, settings.admissions_topic, event_id,
                          settings.kafka_timeout_s * 3):
        for ticket, member, lane, at_ms, expires_ms, user in value["a"]:
            if ticket not in seen:
                seen.add(ticket)
                found.append(Admitted(ticket, member, lane, Admission(at_ms, expires_ms, user)))
    return found


def encode_step(admissions: list[tuple[Admitted, str]], log: list[str],
                room: dict[str, str]) -> str:
    """ARGV[2] of restore_admissions.lua: (admission, its admission JSON) pairs, log entries,
    room fields."""
    return json.dumps({"admissions": [[a.ticket_id, raw, a.member, a.lane]
                                      for a, raw in admissions],
                       "log": log, "room": room})
