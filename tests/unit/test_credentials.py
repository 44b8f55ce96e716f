"""The stack's own secrets (infra/credentials.py): random, private, kept, overridable."""

import stat
import subprocess
import sys

from domain.settings import SOURCE_SECRETS, Settings, secret_weakness
from infra import credentials, stack


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_start_generates_random_private_secrets(tmp_path):
    d = credentials.ensure(tmp_path)
    assert _mode(d) == 0o700
    files = [d / name for name in [*credentials.GENERATED.values(), credentials.RAY_TOKEN_FILE]]
    for f in files:
        assert _mode(f) == 0o600
        value = f.read_text().strip()
        assert value not in SOURCE_SECRETS and secret_weakness(value) == ""
    other = credentials.ensure(tmp_path / "other")
    assert all(f.read_text() != (other / f.name).read_text() for f in files)


def test_later_starts_reuse_the_secrets(tmp_path):
    first = {n: (credentials.ensure(tmp_path) / n).read_text() for n in credentials.GENERATED.values()}
    second = {n: (credentials.ensure(tmp_path) / n).read_text() for n in credentials.GENERATED.values()}
    assert first == second


def test_the_stack_env_carries_the_secrets_and_rays_token_path(tmp_path):
    d = credentials.ensure(tmp_path)
    env = credentials.stack_env({}, tmp_path)
    assert env["TICKETING_ADMIN_TOKEN"] == (d / "admin_token").read_text().strip()
    assert env["TICKETING_TOKEN_SECRET"] == (d / "token_secret").read_text().strip()
    assert env["RAY_AUTH_TOKEN_PATH"] == str(d / credentials.RAY_TOKEN_FILE)
    assert env["RAY_AUTH_MODE"] == "token"
    settings = Settings.from_env(env)
    assert settings.admin_token == env["TICKETING_ADMIN_TOKEN"]


def test_environment_variables_override_the_generated_secrets(tmp_path):
    credentials.ensure(tmp_path)
    env = credentials.stack_env({"TICKETING_ADMIN_TOKEN": "mine", "RAY_AUTH_TOKEN": "t"}, tmp_path)
    assert env["TICKETING_ADMIN_TOKEN"] == "mine"
    assert "RAY_AUTH_TOKEN_PATH" not in env


def test_a_client_of_the_stack_gets_its_secrets_and_ray_address(tmp_path):
    credentials.ensure(tmp_path)
    env = stack.client_env(tmp_path, base={})
    assert env["RAY_ADDRESS"] == f"127.0.0.1:{stack.RAY_GCS_PORT}"
    assert stack.client_settings(tmp_path).admin_token == env["TICKETING_ADMIN_TOKEN"]


def test_the_env_command_prints_shell_exports_for_the_stack(tmp_path):
    credentials.ensure(tmp_path)
    out = subprocess.run([sys.executable, "-m", "infra.stack", "env"], capture_output=True,
                         text=True, check=True, env={"TICKETING_STATE_DIR": str(tmp_path),
                                                     "PATH": "/usr/bin:/bin"}).stdout
    assert f"export RAY_AUTH_TOKEN_PATH={tmp_path}/secrets/ray_auth_token" in out
    assert "export TICKETING_ADMIN_TOKEN=" in out and "export RAY_AUTH_MODE=token" in out
