"""An ingress process for the fairness test: the real join path, under a skewed clock.

Run under libfaketime (`LD_PRELOAD=libfaketime.so.1 FAKETIME=+0.25`) so its wall clock is off
by a known amount. It reads user ids from stdin, one per line, and joins each at once through
`QueueClient.join` (NTP stamp, produce to Kafka, await the ack), answering `ok <ticket_id>`.
`--no-correct` stamps with the raw (skewed) clock: the control run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from redis.asyncio import Redis

from domain.settings import Settings
from replica.queue_client import QueueClient
from store import catalog
from store.clock import NtpClock


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", required=True, help="JSON of Settings overrides")
    parser.add_argument("--event", required=True)
    parser.add_argument("--no-correct", action="store_true")
    args = parser.parse_args()
    overrides = json.loads(args.settings)
    overrides["ntp_servers"] = tuple(overrides["ntp_servers"])
    settings = Settings.from_env(environ={}, **overrides)
    redis = Redis.from_url(settings.redis_url)
    event = await catalog.load_event(redis, args.event)
    assert event is not None
    async def awake(event_id: str) -> None:  # the test wakes the room; no Ray here
        return None

    queue = QueueClient(settings, redis, wake=awake)
    queue.clock = NtpClock(settings.ntp_servers, settings.ntp_refresh_s,
                           settings.unsynced_uncertainty_ms, correct=not args.no_correct)
    await queue.start()
    print(f"ready offset_ms={queue.clock.offset_s * 1000:.1f} "
          f"uncertainty_ms={queue.clock.uncertainty_ms}", flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        ticket = await queue.join(event, line, None)
        print(f"ok {ticket['ticket_id']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
