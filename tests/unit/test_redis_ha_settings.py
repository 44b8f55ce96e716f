"""Redis HA settings (REDIS_SENTINELS ...) and the one client factory's configuration."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.settings import Settings
from infra import sentinel
from store import redis_clients

HA = {"REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380,127.0.0.1:26381",
      "REDIS_WAIT_REPLICAS": "1"}


def test_sentinels_are_read_as_a_list_and_mean_ha():
    settings = Settings.development(HA)
    assert settings.redis_sentinels == ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")
    assert settings.redis_ha and settings.redis_master_name == "ticketing"
    assert not Settings.development().redis_ha


def test_the_stack_topology_writes_settings_that_validate():
    env = sentinel.settings_env(sentinel.SENTINEL_PORTS)
    settings = Settings.development(env)
    assert settings.redis_ha and settings.redis_wait_replicas == 1
    assert len(sentinel.SENTINEL_PORTS) // 2 < sentinel.QUORUM <= len(sentinel.SENTINEL_PORTS)


@pytest.mark.parametrize(("env", "problem"), [
    (HA | {"REDIS_SENTINELS": "127.0.0.1"}, "is not host:port"),
    (HA | {"REDIS_SENTINELS": "127.0.0.1:99999"}, "is not host:port"),
    (HA | {"REDIS_SENTINELS": "127.0.0.1:26379,127.0.0.1:26379"}, "twice"),
    (HA | {"REDIS_REPLICA_URLS": "redis://127.0.0.1:6380/0"}, "exclude each other"),
    (HA | {"REDIS_WAIT_REPLICAS": "0"}, "REDIS_WAIT_REPLICAS must be >= 1"),
    ({"REDIS_WAIT_REPLICAS": "-1"}, "REDIS_WAIT_REPLICAS must be >= 0"),
    ({"REDIS_WAIT_TIMEOUT_MS": "0"}, "REDIS_WAIT_TIMEOUT_MS >= 1"),
    (HA | {"REDIS_WAIT_TIMEOUT_MS": "15000"}, "must stay below actor_call_timeout_s"),
])
def test_ha_settings_that_cannot_work_are_refused_at_start(env, problem):
    with pytest.raises(ValueError, match=problem):
        Settings.development(env)


def test_an_empty_master_name_with_sentinels_is_refused():
    with pytest.raises(ValueError, match="REDIS_MASTER_NAME must be set"):
        Settings.development(HA, redis_master_name="")


def test_without_sentinels_every_client_connects_to_redis_url():
    settings = Settings.development({"REDIS_URL": "redis://127.0.0.1:7000/3",
                                     "REDIS_REPLICA_URLS": "redis://127.0.0.1:7001/3"})
    client = redis_clients.primary(settings, max_connections=7)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 7000, 3)
    assert client.connection_pool.max_connections == 7
    sync = redis_clients.primary_sync(settings)
    assert isinstance(sync, redis.Redis) and sync.connection_pool.connection_kwargs["port"] == 7000
    [(label, replica)] = redis_clients.read_replicas(settings)
    assert label == "redis://127.0.0.1:7001/3"
    assert replica.connection_pool.connection_kwargs["port"] == 7001


def test_with_sentinels_every_client_asks_them_for_the_named_primary():
    settings = Settings.development(HA | {"REDIS_URL": "redis://ignored-host:1/2",
                                          "REDIS_MASTER_NAME": "onsale"})
    for client in (redis_clients.primary(settings, max_connections=9),
                   redis_clients.primary_sync(settings)):
        pool = client.connection_pool
        assert isinstance(pool, (redis.SentinelConnectionPool,
                                 redis.asyncio.SentinelConnectionPool))
        assert pool.service_name == "onsale" and pool.is_master
        assert [(s.connection_pool.connection_kwargs["host"],
                 s.connection_pool.connection_kwargs["port"])
                for s in pool.sentinel_manager.sentinels] == redis_clients.sentinel_addresses(
                    settings)
        assert pool.connection_kwargs["db"] == 2  # only the database of REDIS_URL counts
        assert "ignored-host" not in repr(pool.connection_kwargs)
    [(label, replicas)] = redis_clients.read_replicas(settings)
    assert label == "sentinel:onsale"
    assert isinstance(replicas.connection_pool, redis.asyncio.SentinelConnectionPool)
    assert not replicas.connection_pool.is_master


@pytest.mark.parametrize("error", [
    RedisConnectionError("Connection refused"), RedisTimeoutError("timed out"),
    ReadOnlyError("You can't write against a read only replica."),
    ResponseError("NOREPLICAS Not enough good replicas to write."),
    ResponseError("MASTERDOWN Link with MASTER is down"),
])
def test_errors_of_a_moving_primary_are_retryable(error):
    assert redis_clients.is_failover_error(error)
    assert redis_clients.unavailable(error).code == "unavailable"


def test_other_redis_errors_are_not_mistaken_for_a_failover():
    assert not redis_clients.is_failover_error(ResponseError("WRONGTYPE Operation against a key"))


def test_clients_of_an_ha_stack_get_its_sentinel_settings_from_its_state_dir(tmp_path):
    from infra import stack

    assert "REDIS_SENTINELS" not in stack.client_env(tmp_path, base={})
    (tmp_path / sentinel.ENV_FILE).write_text("".join(
        f"{k}={v}\n" for k, v in sentinel.settings_env(sentinel.SENTINEL_PORTS).items()))
    env = stack.client_env(tmp_path, base={})
    assert env["REDIS_SENTINELS"] == "127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"
    assert env["REDIS_WAIT_REPLICAS"] == "1"


def test_a_plain_up_is_refused_on_a_state_dir_that_runs_redis_ha(tmp_path):
    from infra import stack

    (tmp_path / sentinel.ENV_FILE).write_text("REDIS_MASTER_NAME=ticketing\n")
    with pytest.raises(stack.StackError, match="runs Redis HA"):
        stack.up(env={}, state=tmp_path, with_ray=False)


def test_the_sentinels_last_written_primary_is_where_a_restart_starts_the_primary(tmp_path):
    conf = tmp_path / "sentinel-1" / "sentinel.conf"  # port 1: nothing answers there
    conf.parent.mkdir()
    conf.write_text("port 1\nsentinel monitor ticketing 127.0.0.1 6381 2\n")
    # no Sentinel answers: the config they rewrote at the failover decides
    assert sentinel.current_primary(tmp_path, (1,), 6379) == 6381
    assert sentinel.current_primary(tmp_path / "new", (1,), 6379) == 6379


def test_make_up_ha_runs_its_replicas_on_the_next_ports_and_sentinels_20000_above():
    assert sentinel.topology_ports(6379) == (sentinel.REPLICA_PORTS, sentinel.SENTINEL_PORTS)


def test_primary_url_is_redis_url_without_sentinels_and_moves_only_the_address():
    settings = Settings.development({"REDIS_URL": "redis://:pw@10.0.0.1:6379/1"})
    assert redis_clients.primary_url(settings) == "redis://:pw@10.0.0.1:6379/1"
    assert redis_clients.with_address("rediss://u:p@old:1/2?ssl_cert_reqs=none", "10.1.2.3",
                                      6380) == "rediss://u:p@10.1.2.3:6380/2?ssl_cert_reqs=none"
    assert redis_clients.with_address("redis://old:1/0", "::1", 7) == "redis://[::1]:7/0"
