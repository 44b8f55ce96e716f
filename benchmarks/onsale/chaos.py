"""Chaos flags: `--chaos ACTION[:ARG]@SECOND` (seconds after on-sale; repeat the flag or
separate with commas).

  kill-block[:B]@S     kill the host that owns seat block B (default 0), with all it hosts
                       (Ray restarts it; the entities come back from Redis and the ledger)
  kill-room@S          kill the host that owns the event's waiting room
  kill-node@S          remove the Ray worker node (own stack only: it then runs two nodes)
  restart-redis@S      stop Redis and start it again on its data (own stack only)
  restart-kafka@S      stop the Kafka broker and start it again on its data (own stack only)
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("kill-block", "kill-room", "kill-node", "restart-redis", "restart-kafka")
OWN_STACK_ONLY = ("kill-node", "restart-redis", "restart-kafka")


@dataclass(frozen=True)
class Chaos:
    action: str
    at_s: float
    arg: int = 0

    @property
    def label(self) -> str:
        arg = f":{self.arg}" if self.action == "kill-block" and self.arg else ""
        return f"{self.action}{arg}@{self.at_s:g}"


def parse(specs: list[str]) -> list[Chaos]:
    """`["kill-block@20", "restart-kafka@40,kill-room:0@60"]` -> Chaos list, by time."""
    out = []
    for spec in specs:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            head, sep, at = part.partition("@")
            if not sep:
                raise ValueError(f"chaos {part!r}: expected ACTION@SECOND")
            action, _, arg = head.partition(":")
            if action not in ACTIONS:
                raise ValueError(f"chaos {part!r}: action must be one of {', '.join(ACTIONS)}")
            try:
                seconds = float(at)
                index = int(arg) if arg else 0
            except ValueError as exc:
                raise ValueError(f"chaos {part!r}: bad number") from exc
            if seconds < 0 or index < 0:
                raise ValueError(f"chaos {part!r}: numbers must be >= 0")
            out.append(Chaos(action, seconds, index))
    return sorted(out, key=lambda c: c.at_s)


def check_allowed(chaos: list[Chaos], own_stack: bool) -> None:
    """A stack we did not start is not ours to restart."""
    if not own_stack:
        bad = [c.label for c in chaos if c.action in OWN_STACK_ONLY]
        if bad:
            raise ValueError(f"{', '.join(bad)}: only on the benchmark's own stack "
                             "(drop --base-url)")
