"""The lanes of a waiting room, admitted in this order, and which lane a join belongs to.

    presale   valid presale code holders, first come first served among themselves
    prequeue  joined before on-sale: ordered by the committed lottery at on-sale
    general   everyone after on-sale, first come first served by NTP-corrected time

Each lane is a Redis list in sequence order (see `store.queue`); a ticket's place is its lane
and sequence number, so its position is `seq - head + 1` (see `domain.waiting.status`).
"""

from __future__ import annotations

from enum import IntEnum


class QueueTier(IntEnum):
    PRESALE = 0
    PREQUEUE = 1
    GENERAL = 2


def is_prequeue(joined_at_ms: int, onsale_at_ms: int) -> bool:
    """Joined strictly before on-sale, by the corrected stamp alone: a join whose uncertainty
    straddles on-sale is classified by its best estimate, the same rule for everyone."""
    return joined_at_ms < onsale_at_ms
