"""Make and rotate the ES256 key ring of ticket and admission tokens (TICKETING_SIGNING_KEYS).

    python -m infra.signing_keys new  FILE   # a ring of one fresh key (file mode 600)
    python -m infra.signing_keys rotate FILE # a fresh key signs from now; the old one retires

After a rotation, roll the replicas (they read the ring at start). The retired key keeps
verifying, and is published in /.well-known/jwks.json, until max(TICKET_TTL_S,
ADMISSION_TTL_S) after its retirement; `rotate` drops keys past that.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from domain import keyring
from domain.settings import Settings


def new_key(now: float) -> keyring.SigningKey:
    return keyring.from_private_key(ec.generate_private_key(ec.SECP256R1()), now)


def generate(max_token_ttl_s: float | None = None) -> str:
    """A fresh one-key ring as TICKETING_SIGNING_KEYS holds it (for `make up`'s secrets)."""
    ttl = max_token_ttl_s or Settings().max_token_ttl_s
    return keyring.KeyRing((new_key(time.time()),), ttl).to_json()


def rotate(text: str, max_token_ttl_s: float, now: float) -> str:
    return keyring.parse(text, max_token_ttl_s).rotate(new_key(now), now).to_json()


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m infra.signing_keys")
    ap.add_argument("command", choices=["new", "rotate"])
    ap.add_argument("file", type=Path)
    ap.add_argument("--max-token-ttl-s", type=float, default=Settings().max_token_ttl_s,
                    help="longest ticket/admission token lifetime (default: the settings')")
    args = ap.parse_args(argv)
    ttl = args.max_token_ttl_s
    if args.command == "new":
        if args.file.exists():
            print(f"{args.file} exists; use rotate", file=sys.stderr)
            return 1
        _write_private(args.file, generate(ttl))
    else:
        _write_private(args.file, rotate(args.file.read_text(), ttl, time.time()))
    print(keyring.parse(args.file.read_text(), ttl).active().kid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
