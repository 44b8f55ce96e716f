"""Load generator of bench_availability_stream: many SSE clients in one asyncio process.

Raw sockets (no HTTP client library) so one process can keep thousands of streams and still
time each event: per client it records when each event id (seat version) first arrived. Driven
over stdin/stdout by the benchmark, one command per line:

    (start)      connect --clients clients at --ramp per second  -> "CONNECTED {json}"
    RECONNECT    every client closes and reconnects at once with Last-Event-ID
                                                                  -> "RECONNECTED {json}"
    STOP <file> [<v>]  read the changes file ({version: changed_at}), compute each client's
                 lag from each change to the first event that covers it, split into the
                 changes up to version v ("steady") and after ("after")  -> "RESULT {json}"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from bisect import bisect_left
from typing import Any

ID_LINE = re.compile(rb"(?m)^id: (\d+)\r?$")


class _Stream(asyncio.Protocol):
    """One SSE connection as a bare protocol: bytes go straight to the client's parser in the
    loop's read callback (no StreamReader, no task wake-up per read), so the generator's own
    cost per event stays small next to the server's and its timestamps stay honest."""

    def __init__(self, client: Client, request: bytes) -> None:
        self._client, self._request = client, request
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = b""
        self.transport: Any = None  # asyncio's or uvloop's transport

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            self._client.feed(data, time.time())
            return
        self._buffer += data
        head, sep, rest = self._buffer.partition(b"\r\n\r\n")
        if sep:
            self.head.set_result(head)
            if rest:
                self._client.feed(rest, time.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.connected = False
        if not self.head.done():
            self.head.set_exception(ConnectionResetError("closed before the response head"))


class Client:
    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.ids: list[int] = []
        self.times: list[float] = []
        self.last_id: int | None = None
        self.snapshots = 0
        self.deltas = 0
        self.delta_bytes = 0  # on the wire, SSE framing included
        self.errors: list[str] = []
        self.connected = False
        self._tail = b""
        self._stream: _Stream | None = None

    async def connect(self, timeout_s: float = 30.0) -> bool:
        """Open the stream; True once the response headers (200) arrived."""
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
        request = (f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
                   f"Accept: text/event-stream\r\n{resume}\r\n").encode()
        self._tail = b""
        loop = asyncio.get_running_loop()
        try:
            _, stream = await asyncio.wait_for(loop.create_connection(
                lambda: _Stream(self, request), self.host, self.port), timeout_s)
            self._stream = stream
            head = await asyncio.wait_for(stream.head, timeout_s)
        except (OSError, TimeoutError) as e:
            self.errors.append(type(e).__name__)
            await self.close()
            return False
        if not head.startswith(b"HTTP/1.1 200"):
            self.errors.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            await self.close()
            return False
        self.connected = True
        return True

    def feed(self, chunk: bytes, now: float) -> None:
        """Bytes of the stream: each event id (seat version) seen first is timed at `now`."""
        data = self._tail + chunk
        cut = data.rfind(b"\n") + 1
        self._tail, data = data[cut:], data[:cut]
        self.snapshots += data.count(b"event: snapshot")
        self.deltas += data.count(b"event: delta")
        if b"event: delta" in data:
            self.delta_bytes += sum(len(m) + 2 for m in data.split(b"\n\n")
                                    if b"event: delta" in m)
        for match in ID_LINE.finditer(data):
            version = int(match.group(1))
            if not self.ids or version > self.ids[-1]:
                self.ids.append(version)
                self.times.append(now)
            self.last_id = version

    async def close(self) -> None:
        if self._stream is not None and self._stream.transport is not None:
            self._stream.transport.close()
        self._stream = None
        self.connected = False

    def lags(self, changes: list[tuple[int, float]],
             by_second: dict[int, list[float]] | None = None) -> tuple[list[float], int]:
        """Seconds from each change to the first event covering it; and changes never seen.
        `by_second` also collects them by the second the change was made in."""
        out, missed = [], 0
        for version, changed_at in changes:
            i = bisect_left(self.ids, version)
            if i == len(self.ids):
                missed += 1
            else:
                out.append(self.times[i] - changed_at)
                if by_second is not None:
                    by_second.setdefault(int(changed_at), []).append(out[-1])
        return out, missed


async def connect_all(clients: list[Client], per_s: float) -> dict[str, Any]:
    start = time.monotonic()
    tasks = []
    for i, client in enumerate(clients):
        delay = start + i / per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.get_running_loop().create_task(client.connect()))
    results = await asyncio.gather(*tasks)
    return {"ok": sum(results), "failed": len(results) - sum(results),
            "seconds": round(time.monotonic() - start, 2), "errors": _errors(clients)}


def _errors(clients: list[Client]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for client in clients:
        for error in client.errors:
            counts[error] = counts.get(error, 0) + 1
    return counts


async def reconnect_all(clients: list[Client]) -> dict[str, Any]:
    before_snapshots = sum(c.snapshots for c in clients)
    before_deltas = sum(c.deltas for c in clients)
    before_errors = sum(len(c.errors) for c in clients)
    await asyncio.gather(*[c.close() for c in clients])
    start = time.monotonic()
    results = await asyncio.gather(*[c.connect() for c in clients])
    seconds = time.monotonic() - start
    await asyncio.sleep(2.0)  # let the resume messages arrive
    return {"ok": sum(results), "failed": len(results) - sum(results),
            "errors_new": sum(len(c.errors) for c in clients) - before_errors,
            "errors": _errors(clients), "seconds_to_all_connected": round(seconds, 2),
            "snapshots_after": sum(c.snapshots for c in clients) - before_snapshots,
            "deltas_after": sum(c.deltas for c in clients) - before_deltas}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=500.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients = [Client("127.0.0.1", args.port, args.path) for _ in range(args.clients)]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    _say("CONNECTED", await connect_all(clients, args.ramp))
    while True:
        line = (await stdin.readline()).decode().strip()
        if line == "RECONNECT":
            _say("RECONNECTED", await reconnect_all(clients))
        elif line.startswith("STOP"):
            _, path, *until = line.split(" ")
            with open(path) as f:
                changes = sorted((int(v), t) for v, t in json.load(f).items())
            boundary = int(until[0]) if until else changes[-1][0] if changes else 0
            phases = {"steady": [c for c in changes if c[0] <= boundary],
                      "after": [c for c in changes if c[0] > boundary]}
            still = sum(c.connected for c in clients)
            lags: dict[str, list[float]] = {"steady": [], "after": []}
            by_second: dict[str, dict[int, list[float]]] = {"steady": {}, "after": {}}
            worst: list[float] = []  # each client's worst lag while every stream was open
            missed = 0
            for client in clients:
                for phase, part in phases.items():
                    got, lost = client.lags(part, by_second[phase])
                    lags[phase] += got
                    missed += lost
                    if phase == "steady":
                        worst.append(max(got, default=0.0))
            await asyncio.gather(*[c.close() for c in clients])
            _say("RESULT", {"connected_at_end": still, "missed": missed,
                            "deltas": sum(c.deltas for c in clients),
                            "delta_bytes": sum(c.delta_bytes for c in clients),
                            "lags_ms": {phase: [round(x * 1000, 2) for x in values]
                                        for phase, values in lags.items()},
                            "worst_steady_ms": [round(x * 1000) for x in worst],
                            **{f"{phase}_p99_ms_by_second": {
                                second: round(_pct(values, 99) * 1000)
                                for second, values in sorted(seconds.items())}
                               for phase, seconds in by_second.items()}})
            return
        elif not line:
            return


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else 0.0


def _say(tag: str, data: dict[str, Any]) -> None:
    sys.stdout.write(f"{tag} {json.dumps(data)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        import uvloop  # what uvicorn runs on, so both ends of the benchmark use the same loop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
