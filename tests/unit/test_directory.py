"""The directory's view of the pool's members while Redis does not answer."""

import socket
import time

from actors import directory
from domain.settings import Settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once it is closed


def test_members_while_redis_is_down_are_the_last_seen_and_do_not_block() -> None:
    d = directory.Directory(Settings.from_env(
        {}, redis_url=f"redis://127.0.0.1:{closed_port()}/0", token_secret="t" * 43,
        admin_token="a" * 43))
    started = time.monotonic()
    assert d.members() == frozenset({0})  # none seen yet: the manager
    d._members = frozenset({0, 1, 2})  # what an earlier read saw
    d.refresh()
    assert d.members() == frozenset({0, 1, 2})  # kept, not an error, nothing handed off
    assert d.owner("block:ev1:0") in {0, 1, 2}
    # a host's event loop runs this: a refused connection, not redis-py's retries' backoff
    assert time.monotonic() - started < 0.5
