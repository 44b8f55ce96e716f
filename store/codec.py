"""Redis answers as text: redis-py is typed `bytes | str` whatever the connection decodes."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def text_map(raw: Any) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
