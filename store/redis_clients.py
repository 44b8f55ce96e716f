"""Every Redis client the platform uses is built here, and only here.

Without Sentinel a client connects to REDIS_URL. With REDIS_SENTINELS it asks the Sentinels
for the primary named REDIS_MASTER_NAME on every new connection (redis-py's `redis.sentinel`
and `redis.asyncio.sentinel`), so it follows a failover by itself: a connection to a dead
primary fails (ConnectionError) and the next one goes to the promoted replica; one still open
to a demoted primary gets READONLY, which redis-py turns into a ConnectionError and a fresh
connection. Either failure surfaces as a typed, retryable error (`is_failover_error`: a 503
with Retry-After, never a 500), and the same call succeeds once the Sentinels have promoted.

`replicated` is the acknowledgement a sale-deciding write waits for (see docs/design.md,
"Redis failover"): Redis replication is asynchronous, so a write the primary accepted can be
lost when the primary dies and a replica that had not received it yet is promoted.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from domain.errors import Unavailable
from domain.settings import Settings
from store import keys

# How long a client waits on one Sentinel before asking the next (a dead one must not stall
# every new connection during a failover).
SENTINEL_TIMEOUT_S = 0.5
# Cached reads on a replica: no retries and short timeouts, the primary answers instead.
REPLICA_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 0.25, "socket_timeout": 2.0}
# The errors of a primary that is gone, demoted, or refusing writes for want of replicas
# (min-replicas-to-write): all transient while a failover runs.
FAILOVER_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
RETRY_AFTER_S = 1


def connection_options(settings: Settings) -> dict[str, Any]:
    """What REDIS_URL says besides where the primary is: database, credentials, TLS."""
    options = redis.connection.parse_url(settings.redis_url)
    if settings.redis_ha:
        for name in ("host", "port", "path", "connection_class"):
            options.pop(name, None)
    return options


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    out = []
    for address in settings.redis_sentinels:
        host, _, port = address.rpartition(":")
        out.append((host, int(port)))
    return out


def primary(settings: Settings, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client of the primary (found through Sentinel when configured)."""
    if not settings.redis_ha:
        return redis.asyncio.Redis.from_url(settings.redis_url, **options)
    sentinel = redis.asyncio.sentinel.Sentinel(
        sentinel_addresses(settings), sentinel_kwargs=_sentinel_kwargs())
    return sentinel.master_for(settings.redis_master_name, redis_class=redis.asyncio.Redis,
                               **(connection_options(settings) | options))


def primary_sync(settings: Settings, **options: Any) -> redis.Redis:
    """A blocking client of the primary (found through Sentinel when configured)."""
    if not settings.redis_ha:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel = redis.sentinel.Sentinel(sentinel_addresses(settings),
                                       sentinel_kwargs=_sentinel_kwargs(asyncio=False))
    return sentinel.master_for(settings.redis_master_name, redis_class=redis.Redis,
                               **(connection_options(settings) | options))


def primary_url(settings: Settings) -> str:
    """REDIS_URL pointing at the primary now (asked of the Sentinels when configured), for
    what takes a URL rather than a client (redis-cli, backup and restore); credentials,
    database and TLS as REDIS_URL says. Unavailable if no Sentinel knows a primary."""
    if not settings.redis_ha:
        return settings.redis_url
    sentinel = redis.sentinel.Sentinel(sentinel_addresses(settings),
                                       sentinel_kwargs=_sentinel_kwargs(asyncio=False))
    try:
        host, port = sentinel.discover_master(settings.redis_master_name)
    except redis.sentinel.MasterNotFoundError as error:
        raise Unavailable(f"no Sentinel knows a primary {settings.redis_master_name!r}; retry"
                          ) from error
    finally:
        for client in sentinel.sentinels:
            client.close()
    return with_address(settings.redis_url, str(host), int(port))


def with_address(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced (user, password, database and options kept)."""
    parts = urllib.parse.urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f"{credentials}@{address}" if credentials else address))


def read_replicas(settings: Settings) -> list[tuple[str, redis.asyncio.Redis]]:
    """(label, client) of each read replica for cached reads. With Sentinel: one client that
    spreads its connections over the replicas Sentinel reports now (the primary when there is
    none), so a promoted replica is no longer read as one."""
    no_retry = REPLICA_OPTIONS | {"retry": AsyncRetry(NoBackoff(), 0)}
    if settings.redis_ha:
        sentinel = redis.asyncio.sentinel.Sentinel(
            sentinel_addresses(settings), sentinel_kwargs=_sentinel_kwargs())
        client = sentinel.slave_for(settings.redis_master_name, redis_class=redis.asyncio.Redis,
                                    **(connection_options(settings) | no_retry))
        return [(f"sentinel:{settings.redis_master_name}", client)]
    return [(url, redis.asyncio.Redis.from_url(url, **no_retry))
            for url in settings.redis_replica_urls]


def _sentinel_kwargs(asyncio: bool = True) -> dict[str, Any]:
    """No retries on a Sentinel: a dead one is skipped for the next at once."""
    retry = AsyncRetry(NoBackoff(), 0) if asyncio else Retry(NoBackoff(), 0)
    return {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "retry": retry}


def is_failover_error(error: BaseException) -> bool:
    """A Redis error that only means "the primary is moving": retry shortly."""
    if isinstance(error, FAILOVER_ERRORS):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(
        ("NOREPLICAS", "MASTERDOWN", "LOADING"))


def unavailable(error: RedisError) -> Unavailable:
    return Unavailable(f"redis is failing over or unreachable; retry ({type(error).__name__})")


async def replicated(client: redis.asyncio.Redis, settings: Settings) -> None:
    """Return once every write this process completed before the call is on at least
    REDIS_WAIT_REPLICAS replicas; raise Unavailable if they do not acknowledge within
    REDIS_WAIT_TIMEOUT_MS (the writes stay on the primary, unconfirmed). A no-op without
    replica acknowledgements configured.

    WAIT only covers the writes of the connection it runs on, and a pooled client's writes run
    on any of its connections; so a tiny write goes first on the same connection (a
    non-transactional pipeline): its replication offset is past every write completed before
    it, on whatever connection, and WAIT waits for that offset.
    """
    if settings.redis_wait_replicas <= 0:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(keys.replication_barrier(), b"1")
            pipe.execute_command("WAIT", settings.redis_wait_replicas,
                                 settings.redis_wait_timeout_ms)
            _, acked = await pipe.execute()
    except RedisError as error:
        raise unavailable(error) from error
    if int(acked) < settings.redis_wait_replicas:
        raise Unavailable(f"{acked} of {settings.redis_wait_replicas} Redis replicas "
                          f"acknowledged within {settings.redis_wait_timeout_ms} ms; retry")
