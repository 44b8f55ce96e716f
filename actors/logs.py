"""Structured (JSON, one object per line) logs for the platform's own loggers.

Access logs stay off on the hot path (they cost 20-50% here); errors and state changes are
logged as JSON so they can be searched by field (`logger`, `level`, `event_id`, ...).
"""

from __future__ import annotations

import json
import logging
import time

_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(time.time(), 3), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure() -> None:
    """JSON logs for every `ticketing.*` logger, once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("ticketing")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    _configured = True
