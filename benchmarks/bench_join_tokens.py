"""Per-join token work in-process, no services: verify a distinct user's ES256 user token and
sign its ticket token (a join), check a ticket token (a status read), the same user token
again (a retry). CPU time per operation (process_time), best of 7 x 500.

    python -m benchmarks.bench_join_tokens after
    # the code before issue 11's join-path work, for the ratio:
    mkdir -p /tmp/old && git archive f2209e3 domain actors/identity.py actors/__init__.py \\
        | tar -x -C /tmp/old && OLD=/tmp/old python -m benchmarks.bench_join_tokens before
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
import timeit
from typing import Any


def main(which: str) -> dict[str, Any]:
    if which == "before":
        sys.path.insert(0, os.environ.get("OLD", "/tmp/old"))
    settings_mod = importlib.import_module("domain.settings")
    # the old tree had the key ring in actors/ (moved to replica/ in session 12)
    identity_mod = importlib.import_module(
        "replica.identity" if which == "after" else "actors.identity")
    tokens = importlib.import_module("domain.tokens")
    idn = identity_mod.Identity(settings_mod.Settings.development())
    users = [idn.dev_token(f"user{n}") for n in range(3500)]
    loop = asyncio.new_event_loop()
    claims = tokens.Claims(tokens.TICKET, "user1", "ev0123456789ab", time.time() + 86400,
                           "tq0123456789abcdef")
    fresh = iter(users)

    def best(f: Any, n: int = 500) -> float:
        return min(timeit.Timer(f, timer=time.process_time).repeat(7, n)) / n * 1e6

    verify = best(lambda: loop.run_until_complete(idn.user(next(fresh))))
    sign = best(lambda: idn.sign(claims))
    ticket = idn.sign(claims)
    check = best(lambda: idn.verify(ticket, tokens.TICKET, "ev0123456789ab"))
    again = best(lambda: loop.run_until_complete(idn.user(users[0])))
    return {"code": which, "user_token_verify_us": round(verify, 1),
            "ticket_sign_us": round(sign, 1), "ticket_check_us": round(check, 1),
            "same_user_token_again_us": round(again, 1)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "after")))
