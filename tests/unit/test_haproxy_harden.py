"""The HAProxy config Ray Serve 2.60 renders, hardened: checked by HAProxy itself (`-c`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra import haproxy_harden
from infra.haproxy_harden import Hardening, harden

SAMPLE = Path(__file__).parent / "data" / "haproxy-ray-2.60.cfg"  # as Ray rendered it


@pytest.fixture
def rendered(tmp_path: Path) -> str:
    (tmp_path / "500.http").write_text("HTTP/1.0 500 Internal Server Error\r\n\r\n")
    return SAMPLE.read_text().replace("@DIR@", str(tmp_path))


def test_the_admin_socket_is_mode_600_and_stats_and_metrics_listen_on_loopback_only(rendered):
    out = harden(rendered, Hardening())
    assert "mode 666" not in out and "admin.sock mode 600 level admin" in out
    assert "bind 127.0.0.1:9314" in out and "bind 127.0.0.1:8614" in out
    assert "bind :9314" not in out and "bind *:8614" not in out


def test_the_frontend_times_out_slow_headers_caps_connections_and_writes_the_client_address(
        rendered):
    out = harden(rendered, Hardening(http_request_timeout_s=7, conn_per_addr_max=50))
    frontend = out.split("frontend http_frontend", 1)[1].split("\nbackend ", 1)[0]
    for line in ("timeout http-request 7s", "timeout client 60s", "timeout http-keep-alive 10s",
                 "tcp-request connection reject if { sc_conn_cur(0) gt 50 }",
                 "http-request del-header x-forwarded-for",
                 "http-request del-header x-ticketing-client-addr",
                 "http-request set-header x-ticketing-client-addr %[src]", "option forwardfor",
                 "option idle-close-on-response"):
        assert line in frontend
    # The client's copy is deleted before HAProxy writes its own.
    assert frontend.index("del-header x-ticketing-client-addr") < frontend.index("set-header")


def test_haproxy_accepts_the_hardened_config(rendered, tmp_path: Path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(harden(rendered, Hardening()))
    result = subprocess.run([haproxy_harden.real_binary(), "-c", "-f", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_template_that_changed_shape_fails_loudly_instead_of_running_unhardened(rendered):
    with pytest.raises(ValueError, match="stats socket"):
        harden(rendered.replace("stats socket", "stats sock"), Hardening())
    with pytest.raises(ValueError, match="http_frontend"):
        harden(rendered.replace("frontend http_frontend", "frontend web"), Hardening())


def test_a_header_name_that_could_inject_config_is_refused(rendered):
    with pytest.raises(ValueError, match="client_addr_header"):
        harden(rendered, Hardening(client_addr_header="x\n    stats enable"))


def test_the_wrapper_hardens_the_config_it_is_given_and_execs_haproxy(rendered, tmp_path: Path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(rendered)
    wrapper = haproxy_harden.install_wrapper(tmp_path / "bin")
    env = dict(os.environ, RAY_SERVE_HAPROXY_BINARY_PATH=str(wrapper))  # as Ray runs it
    result = subprocess.run([str(wrapper), "-c", "-f", str(config)], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mode 600" in (tmp_path / "haproxy.cfg.hardened").read_text()
    assert (tmp_path / "haproxy.cfg.hardened").stat().st_mode & 0o777 == 0o600
