"""The stack's own secrets: made once, at random, in the state dir; handed to every process.

`make up` must not run on values anyone can read in the source, and a new user must not have
to invent them. So the first start writes each secret as a file of its own under
`<state dir>/secrets/` (directory 700, files 600) and every later start reads the same
files back. A variable set in the environment still wins, which is how a deployment brings its
own (from a secret manager). Ray's token-auth token is one of them: Ray reads it from the file
that `RAY_AUTH_TOKEN_PATH` names, so a machine that has never run Ray (no `~/.ray`) works.

Clients of the stack (demo.py, scripts, a shell) get the same environment from `client_env()`,
or `python -m infra.stack env` for a shell.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRETS_DIR = "secrets"
# environment variable -> file name in the secrets dir
GENERATED = {
    "TICKETING_TOKEN_SECRET": "token_secret",
    "TICKETING_ADMIN_TOKEN": "admin_token",
}
RAY_TOKEN_FILE = "ray_auth_token"


def secrets_dir(state: Path) -> Path:
    return state / SECRETS_DIR


def ensure(state: Path) -> Path:
    """Create whatever secret is missing (never overwrite one); return the secrets dir."""
    d = secrets_dir(state)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    d.chmod(0o700)
    for name in [*GENERATED.values(), RAY_TOKEN_FILE]:
        _create(d / name, secrets.token_urlsafe(32) if name != RAY_TOKEN_FILE
                else secrets.token_hex(32))
    return d


def _create(path: Path, value: str) -> None:
    """Write value to a new mode-600 file; an existing file is kept as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")


def stack_env(env: dict[str, str], state: Path) -> dict[str, str]:
    """env with the stack's secrets and Ray auth filled in wherever env does not set them."""
    d = secrets_dir(state)
    full = dict(env)
    for var, name in GENERATED.items():
        if not full.get(var) and (d / name).exists():
            full[var] = (d / name).read_text().strip()
    if not full.get("RAY_AUTH_TOKEN") and not full.get("RAY_AUTH_TOKEN_PATH"):
        full["RAY_AUTH_TOKEN_PATH"] = str(d / RAY_TOKEN_FILE)
    full.setdefault("RAY_AUTH_MODE", "token")
    return full


def admin_token_file(state: Path) -> Path:
    return secrets_dir(state) / GENERATED["TICKETING_ADMIN_TOKEN"]


def random_settings_secrets() -> dict[str, str]:
    """Fresh secrets as Settings overrides, for a stack that lives one run (tests, benchmarks)."""
    return {"token_secret": secrets.token_urlsafe(32), "admin_token": secrets.token_urlsafe(32)}
