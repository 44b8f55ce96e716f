"""bench_availability_stream --gc-probe: every Python process Ray starts records its garbage
collector's pauses (gc.callbacks) into $GCPROBE_DIR/<pid>.json every second.

On PYTHONPATH only for the benchmark's own Ray cluster; does nothing without GCPROBE_DIR.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from typing import Any

_DIR = os.environ.get("GCPROBE_DIR", "")
_stats: dict[str, Any] = {"cmd": "", "collections": 0, "total_s": 0.0, "max_ms": 0.0,
                          "by_generation": {}, "over_ms": {"20": 0, "50": 0, "100": 0},
                          "pauses_over_20_ms": []}
_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    s = _stats
    s["collections"] += 1
    s["total_s"] += ms / 1000
    s["max_ms"] = max(s["max_ms"], ms)
    gen = s["by_generation"].setdefault(str(info.get("generation")), [0, 0.0, 0.0])
    gen[0], gen[1], gen[2] = gen[0] + 1, gen[1] + ms / 1000, max(gen[2], ms)
    for bound in s["over_ms"]:
        s["over_ms"][bound] += ms > int(bound)
    if ms > 20:
        s["pauses_over_20_ms"] = [*s["pauses_over_20_ms"][-499:],
                                  [round(time.time(), 3), info.get("generation"), round(ms, 1)]]


def _dump_forever() -> None:
    path = os.path.join(_DIR, f"{os.getpid()}.json")
    while True:
        time.sleep(1)
        try:
            with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
                _stats["cmd"] = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
            _stats["frozen"] = gc.get_freeze_count()
            with open(path + ".tmp", "w") as f:
                json.dump(_stats, f)
            os.replace(path + ".tmp", path)
        except OSError:
            pass


if _DIR:
    os.makedirs(_DIR, exist_ok=True)
    gc.callbacks.append(_on_gc)
    threading.Thread(target=_dump_forever, daemon=True, name="gc-probe").start()
