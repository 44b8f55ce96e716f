"""RTO and RPO of each chaos mark, from the run's own timeline (pure: series in, numbers out).

A *success* is one request that worked: (attempt started, succeeded), in seconds after
on-sale. A hold refused because no seat was free counts as one: the hold path answered, and
when checkouts stall (a Kafka restart) every seat can be held, so waiting for a 201 timed
hold expiry instead of recovery. The recovery time of a fault is measured from the fault's
start (`t` of the chaos mark) to the end of the first success among the attempts **started
once the fault was in place** (`t + took_s`: a kill takes effect when the call returns, a
restart is down by then).
An attempt started earlier may have been served before the fault took effect, so it proves
nothing about recovery. The figure includes that request's own latency and, where requests
are sparse (the HTTP sample), the wait for the next one: it is an upper bound.

Sources (each figure says which):
  hold_bulk, checkout_bulk   the bulk users' seat-block handle calls (the actor boundary)
  hold_bulk_killed_block     the same, only the seat block a `kill-block[:B]` killed
  join_bulk                  the bulk join records acknowledged by Kafka (acks=all), binned
                             per 0.1 s by acknowledgement (the figure is at most 0.1 s late)
  hold_http, join_http,      the real HTTP clients (201 / 202 through the ingress)
  checkout_http
  admit_durable              the admission log (the room admitting again)

`rto_hold_s` / `rto_join_s` / `rto_checkout_s` are the slowest of their sources (the time until
holds, joins, checkouts succeed again on every path measured); `rto_admit_s` is the room's.
RPO is the confirmed bookings missing from the ledger; the other invariants (oversold, lost,
admitted twice, stuck) are the whole run's, as its audit finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Success = tuple[float, float]  # (attempt started, succeeded), seconds after on-sale

HOW = ("seconds from the fault (the mark's t) to the end of the first success of a request "
       "started once the fault was in place (t + took_s); per source (bulk: actor / Kafka "
       "boundary, http: the HTTP sample, durable: the admission log); rto_<kind>_s is the "
       "slowest source of that kind; an upper bound where requests are sparse")
KINDS = ("hold", "join", "checkout", "admit")
INVARIANTS = ("oversold", "confirmed_not_in_ledger", "lost_users", "admitted_twice", "stuck")


def rto_s(fault_t: float, injected_t: float, successes: Iterable[Success]) -> float | None:
    """Seconds from the fault to the first success of an attempt started at or after
    `injected_t`; None if no attempt started after it succeeded (nothing to measure)."""
    ends = [end for start, end in successes if start >= injected_t]
    return round(max(0.0, min(ends) - fault_t), 3) if ends else None


def slowest(by_source: Mapping[str, float | None], kind: str) -> float | None:
    """The latest recovery among the sources of one kind (`hold_bulk`, `hold_http`, ...)."""
    values = [v for k, v in by_source.items() if k.split("_", 1)[0] == kind and v is not None]
    return max(values) if values else None


def mark_recovery(mark: Mapping[str, Any], series: Mapping[str, Iterable[Success]],
                  invariants: Mapping[str, Any]) -> dict[str, Any]:
    """One chaos mark ({label, t, took_s, outcome}) with its RTO per source, per kind, and the
    run's invariants (RPO = confirmed bookings not in the ledger)."""
    t = float(mark["t"])
    injected = t + float(mark.get("took_s") or 0.0)
    by_source = {name: rto_s(t, injected, s) for name, s in series.items()}
    out = dict(mark)
    for kind in KINDS:
        out[f"rto_{kind}_s"] = slowest(by_source, kind)
    out["rto_s_by_source"] = by_source
    out["rpo_confirmed_bookings_lost"] = invariants.get("confirmed_not_in_ledger")
    out.update({k: invariants.get(k) for k in INVARIANTS})
    out["invariants_scope"] = "the whole run (durable audit)"
    return out


def killed_block(label: str) -> int | None:
    """`kill-block:3@10` -> 3, `kill-block@10` -> 0, any other action -> None."""
    action = label.split("@", 1)[0]
    name, _, arg = action.partition(":")
    if name != "kill-block":
        return None
    return int(arg) if arg else 0


def chaos_recovery(marks: Iterable[Mapping[str, Any]], series: Mapping[str, Iterable[Success]],
                   hold_by_block: Mapping[int, Iterable[Success]],
                   invariants: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every mark with its recovery; a `kill-block` mark also times its own block's holds."""
    fixed = {k: list(v) for k, v in series.items()}
    out = []
    for mark in marks:
        own = dict(fixed)
        block = killed_block(str(mark.get("label", "")))
        if block is not None:
            own["hold_bulk_killed_block"] = list(hold_by_block.get(block, ()))
        out.append(mark_recovery(mark, own, invariants))
    return out


def binned_acks(bins: Iterable[tuple[float, float] | list[float]]) -> list[Success]:
    """The producer's acknowledgement bins ([latest send in bin, latest ack in bin], wall
    seconds) as successes: a record sent at the bin's latest send was acked by its end."""
    return [(float(b[0]), float(b[1])) for b in bins]


def line(c: Mapping[str, Any]) -> str:
    """report.md's line for one chaos mark."""
    def s(v: Any) -> str:
        return "—" if v is None else f"{v:g} s"

    src = c.get("rto_s_by_source") or {}
    detail = ", ".join(f"{k} {s(v)}" for k, v in src.items())
    return (f"- `{c['label']}` at {c['t']} s: {c['outcome']} ({c['took_s']} s). "
            f"RTO hold {s(c.get('rto_hold_s'))}, join {s(c.get('rto_join_s'))}, checkout "
            f"{s(c.get('rto_checkout_s'))}, admissions {s(c.get('rto_admit_s'))} "
            f"(by source: {detail}). RPO: {c.get('rpo_confirmed_bookings_lost')} confirmed "
            f"bookings lost; oversold {c.get('oversold')}, users lost {c.get('lost_users')}, "
            f"stuck {c.get('stuck')}, admitted twice {c.get('admitted_twice')} (whole run).")


def stuck_users(not_told_when_stopped: int | None, http_states: Mapping[str, int]) -> int:
    """Users the on-sale left hanging: joined but neither admitted nor told `sold_out` when it
    stopped, plus HTTP clients never told (`joined`) or never through the join (`new`,
    `join_failed`)."""
    hanging = sum(http_states.get(k, 0) for k in ("new", "joined", "join_failed"))
    return int(not_told_when_stopped or 0) + hanging
