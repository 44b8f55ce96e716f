"""The invariant audit of an on-sale, from the durable truth (pure: the driver reads the
records, these functions judge them).

* oversold: seats in more than one distinct booking of the Kafka ledger, plus bookings beyond
  the venue's seats (read by an independent consumer, deduplicated by booking id as every
  reader of the ledger does).
* lost / admitted twice: every user who joined (the joins topic, read independently) must be
  admitted exactly once (the admission log) or still hold a place while the room says sold out
  (what its status and stream then tell it: `sold_out`).
* fairness inversion share: of the pairs of users whose true arrivals are ordered beyond their
  clocks' uncertainty, the share admitted in the other order (a later arrival admitted while
  an earlier one was admitted after it, or never). Pre-queue users are left out: the lottery
  orders them at random on purpose (its seed is committed and published).
* unsold while demand: seats not sold at the end while users who wanted them were turned away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LedgerAudit:
    bookings: int
    seats_sold: int
    oversold: int
    seats_in_two_bookings: int
    unknown_seats: int
    confirmed_not_in_ledger: int


def audit_ledger(bookings: Iterable[Mapping[str, Any]], venue_seats: set[str],
                 confirmed_ids: Iterable[str]) -> LedgerAudit:
    """`bookings`: ledger records of the event (duplicates allowed); `confirmed_ids`: booking
    ids the clients were told are confirmed (each must be in the ledger)."""
    unique: dict[str, Mapping[str, Any]] = {}
    for b in bookings:
        unique.setdefault(str(b["booking_id"]), b)
    per_seat = Counter(s for b in unique.values() for s in b["seat_ids"])
    doubled = sum(1 for c in per_seat.values() if c > 1)
    unknown = sum(1 for s in per_seat if s not in venue_seats)
    sold = len(per_seat)
    over = sum(c - 1 for c in per_seat.values() if c > 1) + unknown + max(0, sold - len(venue_seats))
    missing = sum(1 for i in set(confirmed_ids) if i not in unique)
    return LedgerAudit(len(unique), sold, over, doubled, unknown, missing)


@dataclass(frozen=True)
class QueueAudit:
    joined: int
    admitted: int
    told_sold_out: int
    lost_users: int
    admitted_twice: int
    admitted_not_joined: int
    sold_out_flag: bool


def audit_queue(joined: Iterable[str], admission_log: list[str], waiting: Iterable[str],
                sold_out: bool) -> QueueAudit:
    """`joined`: ticket ids of every join record (rejoins repeat); `admission_log`: ticket ids
    in log order; `waiting`: tickets still holding a place (places hash + pre-queue)."""
    joined_set = set(joined)
    counts = Counter(admission_log)
    twice = sum(1 for c in counts.values() if c > 1)
    admitted = set(counts)
    still = set(waiting) - admitted
    told = still if sold_out else set()
    lost = joined_set - admitted - told
    return QueueAudit(len(joined_set), len(admitted), len(told), len(lost), twice,
                      len(admitted - joined_set), sold_out)


def inversion_share(lo: np.ndarray, hi: np.ndarray, rank: np.ndarray) -> tuple[float, int, int]:
    """Users with true arrival inside [lo, hi] (uncertainty) and admission `rank` (np.inf for
    never admitted). A pair (i, j) is ordered when hi_i < lo_j (i surely came first); it is
    inverted when, besides, j was admitted before i (rank_j < rank_i), i.e. i was admitted
    later or never. Returns (inverted / ordered pairs with at least one admitted, inverted,
    ordered). O(n log n): the never-admitted are counted with sorted searches, the admitted
    with a Fenwick tree in admission order."""
    lo, hi, rank = (np.asarray(a, dtype=float) for a in (lo, hi, rank))
    admitted = np.isfinite(rank)
    a_lo, a_hi, a_rank = lo[admitted], hi[admitted], rank[admitted]
    n_hi_sorted = np.sort(hi[~admitted])
    a_hi_sorted = np.sort(a_hi)
    # ordered pairs (i first) with j admitted: i anything with hi_i < lo_j
    ordered = int(np.searchsorted(n_hi_sorted, a_lo, "left").sum()
                  + np.searchsorted(a_hi_sorted, a_lo, "left").sum())
    # ... plus pairs with i admitted and j never admitted (lo_j > hi_i): never inverted
    n_lo_sorted = np.sort(lo[~admitted])
    ordered += int((len(n_lo_sorted) - np.searchsorted(n_lo_sorted, a_hi, "right")).sum())
    # inverted: j admitted, i came surely first and was never admitted
    inverted = int(np.searchsorted(n_hi_sorted, a_lo, "left").sum())
    # inverted among the admitted: i before j surely, rank_i > rank_j
    inverted += _admitted_inversions(a_lo, a_hi, a_rank)
    share = inverted / ordered if ordered else 0.0
    return share, inverted, ordered


def _admitted_inversions(lo: np.ndarray, hi: np.ndarray, rank: np.ndarray) -> int:
    """Pairs with hi_i < lo_j and rank_i > rank_j: walk by rank descending, count inserted
    his below lo_j, then insert hi_j."""
    n = len(rank)
    if n < 2:
        return 0
    keys = np.sort(hi)
    tree = [0] * (n + 1)
    total = 0
    for k in np.argsort(-rank, kind="stable"):
        # count of inserted hi < lo[k]
        pos = int(np.searchsorted(keys, lo[k], "left"))
        i, s = pos, 0
        while i > 0:
            s += tree[i]
            i -= i & -i
        total += s
        i = int(np.searchsorted(keys, hi[k], "left")) + 1
        while i <= n:
            tree[i] += 1
            i += i & -i
    return total


def unsold_while_demand(seats: int, sold: int, turned_away: int) -> int:
    """Seats left unsold although users who wanted seats were told sold out / gave up."""
    return max(0, seats - sold) if turned_away > 0 else 0
