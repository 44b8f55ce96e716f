"""Chaos flags: `--chaos ACTION[:ARG]@SECOND` (seconds after on-sale; repeat the flag or
separate with commas).

  kill-block[:B]@S     kill the host that owns seat block B (default 0), with all it hosts
                       (Ray restarts it; the entities come back from Redis and the ledger)
  kill-room@S          kill the host that owns the event's waiting room
  kill-node@S          remove the Ray worker node (own stack only: it then runs two nodes)
  restart-redis@S      stop Redis and start it again on its data (own stack only)
  restart-kafka@S      stop the Kafka broker and start it again on its data (own stack only)
  failover-redis@S     kill -9 the Redis primary of a Redis HA stack (a primary, two replicas,
                       three Sentinels); Sentinel promotes a replica (own process stack)
  kill-kafka-broker@S  kill -9 the broker of a three-node Kafka cluster (RF 3, min ISR 2) that
                       leads the most partitions of the event's joins and the ledger
  restart-ray-head@S   kill -9 the Ray head (GCS on its own Redis) and start it again; Serve
                       comes back (own process stack)
  power-loss@S         kill -9 every process of the stack at once, then start it again as
                       `make up` does (own process stack)
The last four run the on-sale on `benchmarks/onsale/procstack.py` (every service a process,
as `make up` starts them); the others on the in-process stack (Ray in the driver).
"""

from __future__ import annotations

from dataclasses import dataclass

PROC_STACK = ("failover-redis", "kill-kafka-broker", "restart-ray-head", "power-loss")
ACTIONS = ("kill-block", "kill-room", "kill-node", "restart-redis", "restart-kafka", *PROC_STACK)
OWN_STACK_ONLY = ("kill-node", "restart-redis", "restart-kafka", *PROC_STACK)
# faults that take the driver's Ray connection away: it disconnects first and reconnects after
RAY_DOWN = ("restart-ray-head", "power-loss")


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


def stack_kind(chaos: list[Chaos]) -> str:
    """Which own stack a plan needs: "process" (any of PROC_STACK) or "in-process"; one stack
    runs one mode, so a plan mixing a Redis HA fault with a single-node one is refused."""
    actions = {c.action for c in chaos}
    proc = actions & set(PROC_STACK)
    if not proc:
        return "in-process"
    other = actions - set(PROC_STACK) - {"kill-block", "kill-room"}
    if other:
        raise ValueError(f"{', '.join(sorted(proc))} and {', '.join(sorted(other))}: not in "
                         "one run (they need different stacks)")
    return "process"
