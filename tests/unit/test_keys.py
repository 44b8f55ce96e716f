import inspect

from store import keys

EVENT = "ev0123456789ab"


def test_event_level_keys_are_pinned():
    assert keys.event(EVENT) == "tk:{ev0123456789ab}:event"
    assert keys.available(EVENT) == "tk:{ev0123456789ab}:avail"
    assert keys.user_seats(EVENT) == "tk:{ev0123456789ab}:users"
    assert keys.bookings(EVENT) == "tk:{ev0123456789ab}:bookings"
    assert keys.card_seats(EVENT) == "tk:{ev0123456789ab}:cards"
    assert keys.card_claims(EVENT) == "tk:{ev0123456789ab}:cardclaims"
    assert keys.room(EVENT) == "tk:{ev0123456789ab}:q:room"
    assert keys.room_epoch(EVENT) == "tk:{ev0123456789ab}:q:epoch"
    assert keys.queue_places(EVENT) == "tk:{ev0123456789ab}:q:place"
    assert keys.queue_line(EVENT) == "tk:{ev0123456789ab}:q:line"
    assert keys.queue_presale(EVENT) == "tk:{ev0123456789ab}:q:presale"
    assert keys.queue_prequeue(EVENT) == "tk:{ev0123456789ab}:q:prequeue"
    assert keys.queue_admitted(EVENT) == "tk:{ev0123456789ab}:q:admitted"
    assert keys.queue_log(EVENT) == "tk:{ev0123456789ab}:q:log"
    assert keys.queue_offsets(EVENT) == "tk:{ev0123456789ab}:q:offsets"
    assert keys.lottery_seed(EVENT) == "tk:{ev0123456789ab}:q:seed"
    assert keys.lottery_entrants(EVENT) == "tk:{ev0123456789ab}:q:entrants"


def test_rate_budget_keys_are_pinned():
    assert keys.rate_budget(EVENT, "join", "a:203.0.113.9") == "tk:{ev0123456789ab}:rl:join:a:203.0.113.9"
    assert keys.rate_budget(EVENT, "status", "u:alice") == "tk:{ev0123456789ab}:rl:status:u:alice"
    assert keys.rate_budget("signin", "signin", "a:::1") == "tk:{signin}:rl:signin:a:::1"


def test_block_keys_are_pinned():
    assert keys.block_epoch(EVENT, 3) == "tk:{ev0123456789ab}:b3:epoch"
    assert keys.block_held(EVENT, 3) == "tk:{ev0123456789ab}:b3:held"
    assert keys.block_sold(EVENT, 3) == "tk:{ev0123456789ab}:b3:sold"
    assert keys.block_holds(EVENT, 3) == "tk:{ev0123456789ab}:b3:holds"


def test_global_keys_are_pinned():
    assert keys.events_index() == "tk:events"
    assert keys.payment("k-1") == "tk:pay:k-1"


def test_block_script_keys_come_in_the_documented_order():
    assert keys.block_script_keys(EVENT, 3) == [
        "tk:{ev0123456789ab}:b3:epoch",
        "tk:{ev0123456789ab}:b3:held",
        "tk:{ev0123456789ab}:b3:sold",
        "tk:{ev0123456789ab}:b3:holds",
        "tk:{ev0123456789ab}:avail",
        "tk:{ev0123456789ab}:users",
        "tk:{ev0123456789ab}:bookings",
        "tk:{ev0123456789ab}:seatver",
        "tk:{ev0123456789ab}:seatlog",
    ]


def _per_event_key_builders():
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        if fn.__module__ != keys.__name__ or name.startswith("_"):
            continue
        params = list(inspect.signature(fn).parameters)
        if params[:1] == ["event_id"]:
            yield name, fn, params


def test_every_per_event_key_carries_the_event_hash_tag():
    builders = list(_per_event_key_builders())
    assert len(builders) >= 12
    for name, fn, params in builders:
        result = fn(EVENT, 3) if params == ["event_id", "block"] else fn(EVENT)
        for key in result if isinstance(result, list) else [result]:
            assert key.startswith("tk:{ev0123456789ab}:"), (name, key)
            assert key.count("{") == 1 and key.count("}") == 1, (name, key)


def test_keys_of_different_blocks_and_events_never_collide():
    seen = set()
    for event_id in (EVENT, "evffffffffffff"):
        for block in (1, 11, 111):
            for key in keys.block_script_keys(event_id, block)[:4]:
                assert key not in seen
                seen.add(key)


def test_availability_and_replica_keys_are_pinned():
    assert keys.seat_version(EVENT) == "tk:{ev0123456789ab}:seatver"
    assert keys.seat_changes(EVENT) == "tk:{ev0123456789ab}:seatlog"
    assert keys.replica_heartbeat("r1a2b3c") == "tk:replica:heartbeat:r1a2b3c"


def test_pool_keys_are_pinned():
    assert keys.pool_members() == "tk:pool:members"
    assert keys.due_index() == "tk:due"
    assert keys.open_events() == "tk:events:open"
    assert keys.catalog_restored() == "tk:events:restored"
