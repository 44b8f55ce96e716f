"""Per-join token work in-process, no services: verify a distinct user's ES256 user token and
sign its ticket token (a join), check a ticket token (a status read), the same user token
again (a retry). CPU time per operation (process_time), best of 7 x 500.

    python -m benchmarks.bench_join_tokens after
    # a distinct user's token check per signing algorithm an OIDC issuer may use, through the
    # app's own check (tokens.user_claims); writes results/bench_join_tokens_algorithms.json
    python -m benchmarks.bench_join_tokens algorithms
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


ISSUER, AUDIENCE = "https://issuer.example", "ticketing"


def algorithms() -> dict[str, Any]:
    """What checking a distinct user's token costs the replica under each algorithm the app
    accepts from an issuer (ES256 is the stack's own development issuer; RS256 is what most
    OIDC providers sign with): the join path's bound on the user-token side."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    from benchmarks._common import machine_info, write_result

    keys: dict[str, Any] = {"ES256": ec.generate_private_key(ec.SECP256R1()),
                            "RS256": rsa.generate_private_key(65537, 2048),
                            "EdDSA": ed25519.Ed25519PrivateKey.generate()}
    result: dict[str, Any] = {
        "benchmark": "bench_join_tokens_algorithms", "machine": machine_info(),
        "method": "tokens.user_claims on a distinct user's token each call (public key object, "
                  "no cache), process_time, best of 7 x 500; sign for comparison (the issuer's "
                  "side, best of 3 x 100)", "verify_us": {}, "sign_us": {}}
    for alg, key in keys.items():
        verify_us, sign_us = _algorithm_costs(alg, key, time.time())
        result["verify_us"][alg], result["sign_us"][alg] = verify_us, sign_us
    print(json.dumps(result["verify_us"]), "sign:", json.dumps(result["sign_us"]))
    print("wrote", write_result("bench_join_tokens_algorithms", result))
    return result


def _algorithm_costs(alg: str, key: Any, now: float) -> tuple[float, float]:
    import jwt

    from domain import tokens

    def mint(n: int) -> str:
        return jwt.encode({"iss": ISSUER, "sub": f"user{n}", "aud": AUDIENCE,
                           "exp": int(now + 3600), "iat": int(now), "jti": f"j{n}"},
                          key, algorithm=alg)

    fresh, public = iter([mint(n) for n in range(3500)]), key.public_key()

    def check() -> None:
        tokens.user_claims(public, next(fresh), ISSUER, AUDIENCE, now)

    verify = min(timeit.Timer(check, timer=time.process_time).repeat(7, 500)) / 500
    sign = min(timeit.Timer(lambda: mint(0), timer=time.process_time).repeat(3, 100)) / 100
    return round(verify * 1e6, 1), round(sign * 1e6, 1)


if __name__ == "__main__":
    if sys.argv[1:] == ["algorithms"]:
        algorithms()
    else:
        print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "after")))
