from dataclasses import fields

import pytest

from domain.settings import DEV_ADMIN_TOKEN, DEV_TOKEN_SECRET, Settings, secret_weakness

SECRET = "Vq3-hT9xLw0_RkZs7YpJ2mCe5NbGd8Fu"  # a random 32-character value
ADMIN = "8f1c0e7b2a9d4f6e3b5a7c9d1e2f4a6b"
SECRETS = {"TICKETING_TOKEN_SECRET": SECRET, "TICKETING_ADMIN_TOKEN": ADMIN}
DEFAULTS = Settings(token_secret=SECRET, admin_token=ADMIN)


def test_an_environment_with_only_the_secrets_gives_the_defaults():
    s = Settings.from_env(SECRETS)
    assert s == DEFAULTS
    assert (s.production, s.token_secret, s.ntp_servers) == (False, SECRET, ("127.0.0.1:11123",))


@pytest.mark.parametrize("missing", ["TICKETING_TOKEN_SECRET", "TICKETING_ADMIN_TOKEN"])
def test_no_secret_is_taken_from_the_source_when_none_is_given(missing):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    with pytest.raises(ValueError, match=f"{missing} is not set"):
        Settings.from_env(env)


def test_the_development_secrets_come_only_to_a_caller_that_asks_for_them():
    s = Settings.development()
    assert (s.token_secret, s.admin_token) == (DEV_TOKEN_SECRET, DEV_ADMIN_TOKEN)
    assert DEV_TOKEN_SECRET not in (f.default for f in fields(Settings))
    assert DEV_ADMIN_TOKEN not in (f.default for f in fields(Settings))


def test_every_setting_names_an_env_variable_and_says_why_it_exists():
    names = [f.metadata["env"] for f in fields(Settings)]
    assert len(names) == len(set(names))
    assert all(f.metadata["doc"] for f in fields(Settings))


def test_from_env_reads_each_type_from_its_env_name():
    s = Settings.from_env(SECRETS | {
        "REDIS_URL": "redis://r:1/2",
        "REDIS_REPLICA_URLS": " redis://a:1 , redis://b:2,, ",
        "NTP_SERVERS": "ntp1:123",
        "HTTP_PORT": "9000",
        "HOLD_TTL_S": "120",
        "SWEEP_INTERVAL_S": "0.5",
        "KAFKA_TIMEOUT_S": "3",
        "ACCESS_LOG": "yes",
        "KAFKA_TOPIC_PREFIX": "t1",
    })
    assert s.redis_url == "redis://r:1/2"
    assert s.redis_replica_urls == ("redis://a:1", "redis://b:2")
    assert s.ntp_servers == ("ntp1:123",)
    assert s.http_port == 9000 and isinstance(s.http_port, int)
    assert s.hold_ttl_s == 120
    assert s.sweep_interval_s == 0.5
    assert s.kafka_timeout_s == 3.0 and isinstance(s.kafka_timeout_s, float)
    assert s.access_log is True
    assert (s.ledger_topic, s.joins_topic("ev1")) == ("t1.bookings", "t1.joins.ev1")
    assert (s.events_topic, s.admissions_topic) == ("t1.events", "t1.admissions")
    assert s.joins_group == "t1.joins"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("TRUE", True), ("Yes", True),
                                               ("0", False), ("false", False), ("no", False)])
def test_booleans_read_the_usual_spellings(raw, expected):
    assert Settings.from_env(SECRETS | {"ACCESS_LOG": raw}).access_log is expected


@pytest.mark.parametrize("raw", ["on", "2", "y", "maybe"])
def test_other_boolean_spellings_are_refused(raw):
    with pytest.raises(ValueError, match="boolean"):
        Settings.from_env(SECRETS | {"ACCESS_LOG": raw})


@pytest.mark.parametrize(("name", "raw"), [("HTTP_PORT", "80.5"), ("HOLD_TTL_S", "ten"),
                                           ("SWEEP_INTERVAL_S", "fast")])
def test_numbers_that_do_not_parse_are_refused(name, raw):
    with pytest.raises(ValueError):
        Settings.from_env(SECRETS | {name: raw})


def test_an_empty_env_value_means_the_default():
    assert Settings.from_env(SECRETS | {"HTTP_PORT": "", "REDIS_URL": ""}) == DEFAULTS


def test_overrides_win_over_the_environment():
    assert Settings.from_env(SECRETS | {"HTTP_PORT": "9000"}, http_port=9001).http_port == 9001


def test_unrelated_env_variables_are_ignored():
    assert Settings.from_env(SECRETS | {"PATH": "/bin", "HOME": "/root"}) == DEFAULTS


@pytest.mark.parametrize("env", [
    {"HOLD_TTL_S": "0"},
    {"ADMISSION_TTL_S": "-1"},
    {"TICKET_TTL_S": "0"},
    {"MAX_SEATS_PER_USER": "0"},
    {"MAX_SEATS_PER_USER": "51"},
    {"MAX_SEATS_PER_USER": "10", "MAX_QUANTITY": "5"},
    {"BLOCK_MAX_SEATS": "0"},
    {"HOLD_BATCH_MAX": "0"},
    {"HOLD_BATCHES_IN_FLIGHT": "0"},
    {"SWEEP_BATCH_MAX": "0"},
    {"SWEEP_INTERVAL_S": "0"},
    {"HOLD_BATCH_WAIT_S": "-0.001"},
    {"JOIN_BATCH_MAX": "0"},
    {"JOIN_BATCH_WAIT_MS": "-1"},
    {"CHECKOUT_BATCH_MAX": "0"},
    {"CHECKOUT_BATCH_MAX": "513"},
    {"CHECKOUT_BATCH_WAIT_MS": "-1"},
    {"CHECKOUT_BATCH_WAIT_MS": "1000", "KAFKA_TIMEOUT_S": "29.5"},
    {"CHECKOUT_DRAIN_S": "-1"},
    {"INGEST_COMMIT_INTERVAL_MS": "-1"},
    {"INGEST_WAIT_MS": "0"},
    {"INGEST_FETCH_WAIT_MS": "0"},
    {"ADMIT_BATCH_MAX": "0"},
    {"ROOM_IDLE_TICK_MAX_S": "0.05"},
    {"TICKETING_TOKEN_SECRET": "too-short"},
])
def test_settings_that_cannot_work_together_fail_at_start(env):
    with pytest.raises(ValueError, match="invalid settings"):
        Settings.from_env(SECRETS | env)


def test_a_zero_batch_wait_is_allowed():
    assert Settings.from_env(SECRETS | {"HOLD_BATCH_WAIT_S": "0"}).hold_batch_wait_s == 0.0
    assert Settings.from_env(SECRETS | {"CHECKOUT_BATCH_WAIT_MS": "0"}).checkout_batch_wait_ms == 0


def test_a_checkout_batch_may_not_outlast_the_actor_call_that_waits_for_it():
    fits = {"CHECKOUT_BATCH_WAIT_MS": "500", "KAFKA_TIMEOUT_S": "29", "ACTOR_CALL_TIMEOUT_S": "30"}
    assert Settings.from_env(SECRETS | fits).checkout_batch_wait_ms == 500
    with pytest.raises(ValueError, match="actor_call_timeout_s"):
        Settings.from_env(SECRETS | fits | {"KAFKA_TIMEOUT_S": "30"})


@pytest.mark.parametrize("name", ["TICKETING_TOKEN_SECRET", "TICKETING_ADMIN_TOKEN"])
@pytest.mark.parametrize(("weak", "why"), [
    (DEV_TOKEN_SECRET, "written in the source"),
    (DEV_ADMIN_TOKEN, "written in the source"),
    ("a-real-production-secret", "shorter than 32"),
    ("x" * 64, "too predictable"),
    ("abcd" * 16, "too predictable"),
    ("password" * 5, "too predictable"),
])
def test_production_refuses_weak_secrets_not_only_the_literal_defaults(name, weak, why):
    with pytest.raises(ValueError, match=f"{name} is .*{why}"):
        Settings.from_env(SECRETS | {"TICKETING_PRODUCTION": "true", name: weak})


def test_random_secrets_of_the_usual_sizes_are_strong():
    import secrets

    for value in (secrets.token_urlsafe(32), secrets.token_hex(16), secrets.token_hex(32), SECRET):
        assert secret_weakness(value) == ""


def test_production_starts_with_real_secrets():
    s = Settings.from_env(SECRETS | {"TICKETING_PRODUCTION": "1"} | PRODUCTION_IDENTITY)
    assert s.production and s.token_secret == SECRET


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        DEFAULTS.http_port = 1  # type: ignore[misc]


PRODUCTION_IDENTITY = {"TICKETING_SIGNING_KEYS": "/etc/ticketing/signing-keys.json",
                       "AUTH_ISSUER": "https://login.example.com/",
                       "AUTH_JWKS_URL": "https://login.example.com/.well-known/jwks.json"}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_IDENTITY))
def test_production_needs_signing_keys_and_an_oidc_issuer(missing):
    env = {"TICKETING_PRODUCTION": "1", "TICKETING_TOKEN_SECRET": SECRET,
           "TICKETING_ADMIN_TOKEN": "real-admin"} | PRODUCTION_IDENTITY
    del env[missing]
    with pytest.raises(ValueError, match=r"AUTH_|SIGNING"):
        Settings.from_env(env)


def test_the_stack_is_the_user_token_issuer_only_in_development_without_an_issuer():
    dev = {"TICKETING_TOKEN_SECRET": SECRET, "TICKETING_ADMIN_TOKEN": "unit-admin"}
    assert Settings.from_env(dev).dev_issuer
    assert not Settings.from_env(dev | {"AUTH_ISSUER": "https://id",
                                        "AUTH_JWKS_URL": "https://id/k"}).dev_issuer
    with pytest.raises(ValueError, match="own issuer"):
        Settings.from_env(dev | {"AUTH_ISSUER": "urn:ticketing", "AUTH_JWKS_URL": "https://id/k"})
