"""Fair first-come-first-served across ingresses whose clocks disagree by up to ±250 ms.

Three real ingress processes (the production join path, run under libfaketime with clock
offsets of -250, 0 and +250 ms) join users in a known true order, round robin, 60 ms apart,
over the event's 4 partitions. With NTP correction the admission order is the true order; with
the raw clocks it is not, which shows the test measures what it claims.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replica.queue_client import RoomWaker
from store import keys

pytestmark = pytest.mark.integration

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEWS_S = ("-0.25", "+0", "+0.25")
USERS = 24
SPACING_S = 0.06


def start_ingress(settings: Any, event_id: str, skew: str, correct: bool) -> subprocess.Popen[str]:
    overrides = {k: v for k, v in dataclasses.asdict(settings).items()
                 if k in ("redis_url", "kafka_bootstrap", "ntp_servers", "kafka_topic_prefix",
                          "token_secret", "admin_token", "join_partitions")}
    env = os.environ | {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": skew,
                        "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
                        "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "tests.integration.skewed_ingress",
               "--settings", json.dumps(overrides), "--event", event_id]
    if not correct:
        command.append("--no-correct")
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=env, cwd=Path(__file__).resolve().parents[2])
    ready = process.stdout.readline() if process.stdout else ""
    assert ready.startswith("ready"), f"ingress did not start: {ready!r}"
    return process


async def run_skewed_joins(settings: Any, event_id: str, correct: bool) -> list[str]:
    """Join USERS users in true order over the three skewed ingresses; their ticket ids."""
    ingresses = [start_ingress(settings, event_id, skew, correct) for skew in SKEWS_S]
    tickets = []
    wake = RoomWaker(settings)  # the ingress processes have no Ray to wake the room with
    try:
        for n in range(USERS):
            await wake(event_id)
            ingress = ingresses[n % len(ingresses)]
            assert ingress.stdin and ingress.stdout
            ingress.stdin.write(f"fair{n:02d}\n")
            ingress.stdin.flush()
            answer = await asyncio.to_thread(ingress.stdout.readline)
            assert answer.startswith("ok "), answer
            tickets.append(answer.split()[1])
            await asyncio.sleep(SPACING_S)
    finally:
        for ingress in ingresses:
            ingress.kill()
            ingress.wait()
    return tickets


async def admitted_order(app_redis: Any, event_id: str) -> list[str]:
    for _ in range(120):
        if app_redis.llen(keys.queue_log(event_id)) >= USERS:
            break
        await asyncio.sleep(0.25)
    return [json.loads(raw)["ticket_id"] for raw in app_redis.lrange(keys.queue_log(event_id), 0, -1)]


@pytest.mark.skipif(not LIBFAKETIME.exists() or shutil.which("chronyd") is None,
                    reason="needs Debian's libfaketime and chrony (infra/install.sh installs both)")
async def test_ntp_correction_restores_the_true_order_across_skewed_ingresses(
        new_event, app_settings, app_redis) -> None:
    corrected = await new_event(rows=2, seats_per_row=20, admission_rate_per_s=200)
    truth = await run_skewed_joins(app_settings, corrected["event_id"], correct=True)
    assert await admitted_order(app_redis, corrected["event_id"]) == truth

    raw = await new_event(rows=2, seats_per_row=20, admission_rate_per_s=200)
    truth = await run_skewed_joins(app_settings, raw["event_id"], correct=False)
    order = await admitted_order(app_redis, raw["event_id"])
    assert sorted(order) == sorted(truth)
    assert order != truth, "raw skewed clocks should misorder joins 60 ms apart"
