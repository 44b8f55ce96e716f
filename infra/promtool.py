"""`promtool`, Prometheus's rule checker, for tests/unit/test_dashboards.py.

Taken from the distribution's `prometheus` package without installing it: `apt-get download`
fetches the .deb (checked by apt's signed lists) and only `usr/bin/promtool` is unpacked, into
`~/.cache/ticketing/bin`. Installing the package would also install and start a Prometheus
server on :9090; a `go install` of promtool compiles Prometheus and its dependencies for
minutes. `python -m infra.promtool` (run by infra/install.sh) fetches it when missing and prints
its path; `PROMTOOL` names another one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHED = Path.home() / ".cache" / "ticketing" / "bin" / "promtool"


class PromtoolMissing(RuntimeError):
    """promtool could not be found or fetched."""


def path(fetch: bool = True) -> Path:
    """promtool: $PROMTOOL, the cached one, one on PATH, else fetched into the cache."""
    named = os.environ.get("PROMTOOL")
    if named:
        return Path(named)
    if CACHED.exists():
        return CACHED
    on_path = shutil.which("promtool")
    if on_path:
        return Path(on_path)
    if not fetch:
        raise PromtoolMissing("promtool not found; run infra/install.sh")
    return _fetch()


def _fetch() -> Path:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    with tempfile.TemporaryDirectory() as tmp:
        download = [*sudo, "apt-get", "download", "-qq", "prometheus"]
        if subprocess.run(download, cwd=tmp, capture_output=True).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(download, cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("prometheus_*.deb"), None)
        if deb is None:
            raise PromtoolMissing("apt-get download prometheus gave no package")
        unpacked = Path(tmp) / "root"
        unpacked.mkdir()
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(unpacked), "./usr/bin/promtool"], input=data,
                       check=True, capture_output=True)
        CACHED.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked / "usr" / "bin" / "promtool"), CACHED)
    return CACHED


def main() -> int:
    try:
        print(path())
    except (PromtoolMissing, subprocess.CalledProcessError) as exc:
        print(f"promtool: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
