"""Where an entity lives: the pool's members, read from Redis, and a handle per entity.

An entity (seat block, waiting room, join ingest, event owner) is not an actor of its own: it
is hosted by one of a bounded pool of `EntityHost` actors (`actors/host.py`), chosen by
rendezvous hashing of its id over the live members (`domain.placement`). An `EntityHandle`
looks like an actor handle — `await handle.hold.remote(batch)`, `ray.get(handle.ping.remote())`
— and sends `host.call(entity_id, method, *args)` to the host that owns the entity. A router
whose view of the members is a second old reaches the previous owner, which forwards the call
once; the entity's epoch fencing keeps two hosts from ever both writing for it.

Hosts are named, detached actors, so any process — a Serve replica, a host, a test — reaches
the same ones, and they come back after a crash. Only the pool's manager creates them: host 0
is created on first use by whoever needs it (the pool always has it), every other host only by
host 0 as the pool grows. A router that reaches a host by a stale view of the members finds
it by name or is told it is unavailable (the client retries); it never starts one, which would
live on outside the pool, a zombie holding a CPU (host 0 also stops any host it finds by name
outside the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from domain import placement
from domain.errors import Unavailable
from domain.event import Event
from domain.settings import Settings
from store import keys

if TYPE_CHECKING:
    from ray.actor import ActorHandle

MEMBERS_TTL_S = 1.0
MEMBERS_READ_TIMEOUT_S = 1.0
HANDLE_TTL_S = 10.0  # a host retired and started again is found by name again within this
# What each host asks of `host_resource`: a token amount, so the resource says where hosts may
# run (nodes that offer it, in whole units as Ray requires) and CPUs (`host_cpus`) how many fit.
HOST_RESOURCE_SHARE = 0.001


def host_name(index: int) -> str:
    return f"host:{index}"


class Directory:
    """One per process and settings: the members (cached a second) and the host handles."""

    def __init__(self, settings: Settings) -> None:
        from store import redis_clients

        self.settings = settings
        # Read on the caller's event loop (a host's): no retries, short timeouts, so a Redis
        # that is down costs a refused connection, not redis-py's seconds of backoff.
        self._redis = redis_clients.primary_sync(
            settings, socket_timeout=MEMBERS_READ_TIMEOUT_S,
            socket_connect_timeout=MEMBERS_READ_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        self._members: frozenset[int] = frozenset()
        self._read_at = -MEMBERS_TTL_S
        self._hosts: dict[int, tuple[float, ActorHandle]] = {}
        self._lock = threading.Lock()
        self.local: Any = None  # the EntityHost of this process, when it is one

    def members(self) -> frozenset[int]:
        """The live hosts; {0} until host 0 has published any (it is the pool's manager)."""
        now = time.monotonic()
        if now - self._read_at >= MEMBERS_TTL_S:
            self._read_at = now
            try:
                raw = self._redis.smembers(keys.pool_members())
            except RedisError:  # Redis away: the last members seen, read again in a second
                return self._members or frozenset({0})
            # None published (yet): {0}, the manager; none any more (a Redis that came back
            # empty, until host 0 publishes them again): the last ones seen, so nothing is
            # handed off for a second and back
            self._members = frozenset(int(m) for m in raw) or self._members or frozenset({0})
        return self._members

    def refresh(self) -> None:
        self._read_at = -MEMBERS_TTL_S

    def owner(self, entity_id: str) -> int:
        return placement.owner(entity_id, self.members())

    def host(self, index: int, create: bool = False) -> ActorHandle:
        """The host's handle, found by name. It is created if it does not exist only when it
        is host 0 or `create` says so (host 0 growing the pool); otherwise Unavailable."""
        with self._lock:
            cached = self._hosts.get(index)
            if cached is None or time.monotonic() - cached[0] > HANDLE_TTL_S:
                try:
                    handle = self._create(index) if create or index == 0 else self._find(index)
                except Unavailable:
                    # A member that is not running (members restored from a backup into a new
                    # Ray, or a host that left): host 0, the manager, is started if it is not,
                    # so it publishes the members that run; until then callers retry.
                    if 0 not in self._hosts:
                        self._hosts[0] = (time.monotonic(), self._create(0))
                    raise
                cached = self._hosts[index] = (time.monotonic(), handle)
            return cached[1]

    def _create(self, index: int) -> ActorHandle:
        from actors.host import EntityHostActor

        s = self.settings
        resources = {s.host_resource: HOST_RESOURCE_SHARE} if s.host_resource else {}
        return EntityHostActor.options(
            name=host_name(index), namespace=s.ray_namespace, lifetime="detached",
            get_if_exists=True, num_cpus=s.host_cpus, resources=resources,
        ).remote(s, index)

    def _find(self, index: int) -> ActorHandle:
        import ray

        try:
            return ray.get_actor(host_name(index), namespace=self.settings.ray_namespace)
        except ValueError:
            raise Unavailable(f"host {index} is not running; retry") from None

    def named_hosts(self) -> list[int]:
        """Indexes of every host actor that exists, whoever started it (a GCS query)."""
        import ray

        found = []
        for actor in ray.util.list_named_actors(all_namespaces=True):
            name = str(actor.get("name", ""))
            if actor.get("namespace") == self.settings.ray_namespace and name.startswith(
                    "host:") and name[5:].isdigit():
                found.append(int(name[5:]))
        return sorted(found)

    def started_hosts(self) -> list[int]:
        """Indexes of the hosts this process has a handle of (created or found)."""
        with self._lock:
            return sorted(self._hosts)

    def forget_host(self, index: int) -> None:
        with self._lock:
            self._hosts.pop(index, None)

    def entity(self, entity_id: str) -> EntityHandle:
        return EntityHandle(self, entity_id)

    def send(self, entity_id: str, method: str, args: tuple[Any, ...], hops: int = 0) -> Any:
        """An awaitable (an ObjectRef, or a future on this host's own loop) of the call."""
        index = self.owner(entity_id)
        if self.local is not None and self.local.index == index:
            return asyncio.ensure_future(self.local.call(entity_id, method, *args, hops=hops))
        return self.host(index).call.remote(entity_id, method, *args, hops=hops)


class EntityHandle:
    """`handle.method.remote(*args)`, as on an actor handle, for a hosted entity."""

    def __init__(self, directory: Directory, entity_id: str) -> None:
        self._directory = directory
        self.entity_id = entity_id

    def __getattr__(self, method: str) -> _Method:
        if method.startswith("_"):
            raise AttributeError(method)
        return _Method(self._directory, self.entity_id, method)

    def __repr__(self) -> str:
        return f"EntityHandle({self.entity_id!r})"


class _Method:
    def __init__(self, directory: Directory, entity_id: str, method: str) -> None:
        self._directory, self._entity_id, self._method = directory, entity_id, method

    def remote(self, *args: Any) -> Any:
        return self._directory.send(self._entity_id, self._method, args)


_DIRECTORIES: dict[tuple[str, str], Directory] = {}
_DIRECTORIES_LOCK = threading.Lock()


def of(settings: Settings) -> Directory:
    key = (settings.redis_url, settings.ray_namespace)
    with _DIRECTORIES_LOCK:
        directory = _DIRECTORIES.get(key)
        if directory is None or directory.settings != settings:
            directory = _DIRECTORIES[key] = Directory(settings)
        return directory


def seat_block(settings: Settings, event_id: str, block: int) -> EntityHandle:
    return of(settings).entity(placement.block_entity(event_id, block))


def event_owner(settings: Settings, event: Event | str) -> EntityHandle:
    event_id = event if isinstance(event, str) else event.event_id
    return of(settings).entity(placement.event_entity(event_id))


def waiting_room(settings: Settings, event_id: str) -> EntityHandle:
    return of(settings).entity(placement.room_entity(event_id))


def ingest(settings: Settings, event_id: str, index: int) -> EntityHandle:
    return of(settings).entity(placement.ingest_entity(event_id, index))


def hosts(settings: Settings) -> list[ActorHandle]:
    """Handles of the live members (for health checks and broadcasts); a member that is not
    running (it left since the members were read) is left out."""
    directory = of(settings)
    found = []
    for index in sorted(directory.members()):
        with contextlib.suppress(Unavailable):
            found.append(directory.host(index))
    return found
