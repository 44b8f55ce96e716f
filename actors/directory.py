"""Where the named actors are found: one event owner per event, one owner per seat block.

Actors are detached and named, so any Serve replica (or a restarted one) reaches the same
owner; `get_if_exists` makes lookup and (re)creation one step, which also rebuilds an event's
actors from Redis after a whole-cluster loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.event import Event
from domain.settings import Settings

if TYPE_CHECKING:
    from ray.actor import ActorHandle


def seat_block(settings: Settings, event_id: str, block: int) -> ActorHandle:
    from actors.seat_block import SeatBlockActor, actor_name

    resource = settings.block_actor_resource
    placement = {"resources": {resource: 0.001}} if resource else {}
    return _get_or_create(SeatBlockActor, actor_name(event_id, block), settings, placement,
                          settings, event_id, block)


def event_owner(settings: Settings, event: Event) -> ActorHandle:
    from actors.event_owner import EventOwnerActor

    return _get_or_create(EventOwnerActor, f"event:{event.event_id}", settings, {},
                          settings, event)


def existing_event_owner(settings: Settings, event_id: str) -> ActorHandle | None:
    import ray

    try:
        return ray.get_actor(f"event:{event_id}", namespace=settings.ray_namespace)
    except ValueError:
        return None


def waiting_room(settings: Settings, event_id: str) -> ActorHandle:
    from actors.waiting_room import WaitingRoomActor

    return _get_or_create(WaitingRoomActor, f"room:{event_id}", settings, {}, settings, event_id)


def ingest(settings: Settings, event_id: str, index: int) -> ActorHandle:
    from actors.ingest import JoinIngestActor, partitions_of

    partitions = partitions_of(index, settings.ingest_actors, settings.join_partitions)
    return _get_or_create(JoinIngestActor, f"ingest:{event_id}:{index}", settings, {},
                          settings, event_id, partitions)


def _get_or_create(actor_class: Any, name: str, settings: Settings, placement: dict[str, Any],
                   *args: Any) -> ActorHandle:
    handle: ActorHandle = actor_class.options(
        name=name, namespace=settings.ray_namespace, lifetime="detached",
        get_if_exists=True, **placement).remote(*args)
    return handle
