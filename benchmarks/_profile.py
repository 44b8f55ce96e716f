"""Where a Serve replica's time goes during a load round: py-spy samples, shares by part.

`Sampled` records one replica with py-spy (`--nonblocking`, collapsed "raw" stacks) while a
round runs; `shares` turns the stacks into the share of samples whose stack passes through
each named part (inclusive, so a part and its "of which" both count the same sample), plus
what none of the parts touch: Serve's ingress, uvicorn, Starlette and Ray. Multiplied by the
replica's CPU per request it reads as microseconds of the replica per request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import cpu_seconds, descendants

REST = "the rest: Serve's ingress, uvicorn, Starlette, Ray"

# A part is every sample with a frame containing one of its patterns ("func (file:line)").
JOIN_PARTS: dict[str, tuple[str, ...]] = {
    "user token check (Identity.user)": ("Identity.user ",),
    "of which the ES256 signature (OpenSSL)": ("ECAlgorithm.verify ",),
    "join record and ticket (QueueClient.join)": ("QueueClient.join ",),
    "of which the ticket token (Identity.sign)": ("Identity.sign ",),
    "rate limits (RateLimits)": ("RateLimits.",),
    "Kafka producer (JoinLog send, aiokafka)": ("JoinLog._send_group ", "/aiokafka/"),
    "event lookup and room waker": ("BookingClient.event ", "RoomWaker."),
    "body and answer (Http.model, json_response)": ("Http.model ", "json_response "),
    "request metrics (metered)": ("metered.<locals>.wrapper.<locals>.record ",),
}


def read_raw(path: Path) -> dict[str, int]:
    """py-spy's raw (collapsed) output: "frame;frame;... count" per line."""
    stacks: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def shares(stacks: Mapping[str, int], parts: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Percent of samples through each part, and REST for those through none."""
    total = sum(stacks.values())
    if not total:
        return {}
    through = {name: 0 for name in parts}
    rest = 0
    for stack, count in stacks.items():
        hit = False
        for name, patterns in parts.items():
            if any(p in stack for p in patterns):
                through[name] += count
                hit = hit or not name.startswith("of which")
        rest += 0 if hit else count
    return {name: round(100 * n / total, 1) for name, n in {**through, REST: rest}.items()}


def per_request_us(share_pct: Mapping[str, float], replica_cores: float,
                   req_per_s: float) -> dict[str, float]:
    """Shares as microseconds of the replica's CPU per request (samples taken as CPU time)."""
    if req_per_s <= 0:
        return {}
    return {name: round(pct / 100 * replica_cores / req_per_s * 1e6, 1)
            for name, pct in share_pct.items()}


def replica_pid(app: str) -> int:
    """The pid of the (first) Serve replica of `app` among this process's descendants (the
    benchmark's own Ray; its process title is ray::ServeReplica:<app>:<deployment>)."""
    for pid, cmd in sorted(descendants(os.getpid()).items()):
        if f"ServeReplica:{app}:" in cmd:
            return pid
    raise RuntimeError(f"no Serve replica of {app!r} under this process")


class Sampled:
    """py-spy on `pid` for `seconds` from entering; `stacks()` after the round."""

    def __init__(self, pid: int, seconds: float, out: Path, rate_hz: int = 100) -> None:
        if shutil.which("py-spy") is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy; `make install`)")
        self.out, self.pid = out, pid
        self._cmd = ["py-spy", "record", "-p", str(pid), "-d", str(max(1, int(seconds))),
                     "-r", str(rate_hz), "--nonblocking", "-f", "raw", "-o", str(out)]
        self._process: subprocess.Popen[Any] | None = None
        self._started = (0.0, 0.0)  # (wall, the pid's CPU seconds) on entering
        self.cores = 0.0  # the sampled process's own CPU over the round, in cores

    def __enter__(self) -> Sampled:
        self.out.unlink(missing_ok=True)
        self._started = (time.monotonic(), cpu_seconds(self.pid))
        self._process = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self._process.wait(timeout=60)
        wall, cpu = self._started
        self.cores = (cpu_seconds(self.pid) - cpu) / max(time.monotonic() - wall, 1e-9)

    def stacks(self) -> dict[str, int]:
        return read_raw(self.out) if self.out.exists() else {}
