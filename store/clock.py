"""The ingress clock: local time corrected by NTP, with the uncertainty of the correction.

Every join is stamped with `now_ms()` here. The offset is re-measured in the background; when
no server answers, the clock says so loudly, keeps its last offset and widens its uncertainty,
and every stamp carries `synced=False` so the room (and an audit) can see it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

import ntplib

log = logging.getLogger("ticketing.clock")


@dataclass(frozen=True)
class Stamp:
    at_ms: int
    uncertainty_ms: int
    synced: bool


class NtpClock:
    def __init__(self, servers: tuple[str, ...], refresh_s: float, unsynced_uncertainty_ms: int,
                 correct: bool = True) -> None:
        self._servers = servers
        self._refresh_s = refresh_s
        self._unsynced_ms = unsynced_uncertainty_ms
        self._correct = correct
        self.offset_s = 0.0
        self.uncertainty_ms = unsynced_uncertainty_ms
        self.synced = False

    def stamp(self) -> Stamp:
        offset = self.offset_s if self._correct else 0.0
        return Stamp(int((time.time() + offset) * 1000), self.uncertainty_ms, self.synced)

    def measure(self) -> bool:
        """Query the servers in turn; the first answer sets offset and uncertainty."""
        client = ntplib.NTPClient()
        for server in self._servers:
            host, _, port = server.partition(":")
            try:
                answer = client.request(host, port=int(port or 123), version=3, timeout=1)
            except (ntplib.NTPException, OSError, ValueError):
                continue
            self.offset_s = answer.offset
            error_s = answer.delay / 2 + answer.root_delay / 2 + answer.root_dispersion
            self.uncertainty_ms = max(1, math.ceil(error_s * 1000))
            self.synced = True
            return True
        self.synced = False
        self.uncertainty_ms = self._unsynced_ms
        log.warning("NO NTP SERVER ANSWERED (%s): join stamps are unsynced, uncertainty %d ms",
                    ",".join(self._servers), self._unsynced_ms)
        return False

    async def run(self) -> None:
        """Re-measure forever (the caller owns the task)."""
        while True:
            await asyncio.to_thread(self.measure)
            await asyncio.sleep(self._refresh_s)
