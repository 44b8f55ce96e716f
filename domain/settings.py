"""One typed, frozen settings object, read once from the environment.

Every field names its environment variable, its default and why it exists; units are in the
names. `Settings.from_env()` fails at start on values that cannot work together, so a bad
deployment is refused before it takes traffic, not in the middle of an on-sale.
"""

from __future__ import annotations

import math
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

# Development values, written here in the open: only a caller that asks for them by name gets
# them (unit tests, `Settings.development()`); `make up` generates random secrets instead, and
# production refuses these and anything else that is weak (`secret_weakness`).
DEV_TOKEN_SECRET = "dev-only-insecure-token-secret"
DEV_ADMIN_TOKEN = "dev-admin-token"
SOURCE_SECRETS = frozenset({DEV_TOKEN_SECRET, DEV_ADMIN_TOKEN})
PRODUCTION_SECRET_MIN_CHARS = 32
PRODUCTION_SECRET_MIN_BITS = 100  # estimated; a random 16-byte hex key estimates ~120
# A checkout batch's bookings go out as one Kafka record batch (store.ledger): 512 bookings of
# the largest hold (max_quantity seats) stay below its 512 KiB.
CHECKOUT_BATCH_MAX_LIMIT = 512


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    redis_url: str = _setting(
        "REDIS_URL", "redis://127.0.0.1:6379/0", "Primary Redis: locks, holds, caches.")
    redis_replica_urls: tuple[str, ...] = _setting(
        "REDIS_REPLICA_URLS", (), "Comma-separated Redis read replicas for cached reads "
        "(without Sentinel; with it the replicas are found through Sentinel).")
    # -- Redis HA: Sentinel finds the primary and promotes a replica when it dies (issue 12) --
    redis_sentinels: tuple[str, ...] = _setting(
        "REDIS_SENTINELS", (), "Redis Sentinels (host:port, comma-separated). Set: every client "
        "asks them for the primary named REDIS_MASTER_NAME and follows a failover; only the "
        "database number (and credentials) of REDIS_URL still count. Empty: REDIS_URL is the "
        "primary.")
    redis_master_name: str = _setting(
        "REDIS_MASTER_NAME", "ticketing", "The name the Sentinels monitor the primary under.")
    redis_wait_replicas: int = _setting(
        "REDIS_WAIT_REPLICAS", 0, "Replicas that must acknowledge the writes a sale depends on "
        "(an owner's new fencing epoch, a checkout begun before its ledger write, joins "
        "persisted before their Kafka offsets are committed) before they count (Redis WAIT). "
        "At least 1 with Sentinel: a failover then never loses them (docs/design.md).")
    redis_wait_timeout_ms: int = _setting(
        "REDIS_WAIT_TIMEOUT_MS", 1000, "Longest such a write waits for its replica "
        "acknowledgements; without them in time it is refused as retryable (503).")
    kafka_bootstrap: str = _setting(
        "KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers (host:port, comma-separated).")
    kafka_topic_prefix: str = _setting(
        "KAFKA_TOPIC_PREFIX", "ticketing", "Prefix of every Kafka topic, so tests can isolate.")
    ntp_servers: tuple[str, ...] = _setting(
        "NTP_SERVERS", ("127.0.0.1:11123",), "NTP servers (host[:port]) for queue timestamps.")
    admin_token: str = _setting(
        "TICKETING_ADMIN_TOKEN", "", "Bearer token for admin endpoints (required; `make up` "
        "generates one into its state dir).")
    token_secret: str = _setting(
        "TICKETING_TOKEN_SECRET", "", "HMAC key for ticket and admission tokens (required; "
        "`make up` generates one into its state dir).")
    signing_keys: str = _setting(
        "TICKETING_SIGNING_KEYS", "", "ES256 keys that sign ticket and admission tokens: a private "
        "JWK Set (JSON text, or the path of a file holding it; `python -m infra.signing_keys`). "
        "The newest unretired key signs; retired keys verify and stay published in "
        "/.well-known/jwks.json until max_token_ttl_s after retirement. Empty (development "
        "only): one key derived from TICKETING_TOKEN_SECRET.")
    auth_issuer: str = _setting(
        "AUTH_ISSUER", "", "`iss` of the OIDC issuer whose user tokens sign users in. Empty "
        "(development only): the stack issues them itself at POST /v1/dev/token.")
    auth_jwks_url: str = _setting(
        "AUTH_JWKS_URL", "", "JWKS URL of AUTH_ISSUER's signing keys (fetched, cached 5 min).")
    auth_audience: str = _setting(
        "AUTH_AUDIENCE", "ticketing", "`aud` a user token must carry (the client id registered "
        "with the issuer).")
    dev_user_token_ttl_s: int = _setting(
        "DEV_USER_TOKEN_TTL_S", 3600, "Lifetime of the development user tokens.")
    user_token_cache_max: int = _setting(
        "USER_TOKEN_CACHE_MAX", 50_000, "Verified user tokens each replica remembers (LRU, "
        "~300 B each), so a retry or rejoin skips the signature check; 0 turns it off.")
    user_token_cache_s: float = _setting(
        "USER_TOKEN_CACHE_S", 300.0, "Longest a remembered verification is trusted (never past "
        "the token's exp): as long as the issuer's keys are cached, so a key the issuer drops "
        "stops working as soon as it would without this cache.")
    pow_challenge_ttl_s: int = _setting(
        "POW_CHALLENGE_TTL_S", 300, "How long a proof-of-work challenge may be solved and used.")
    production: bool = _setting(
        "TICKETING_PRODUCTION", False, "Refuse weak secrets (short, predictable or written in "
        "the source) when true.")
    ray_namespace: str = _setting(
        "TICKETING_RAY_NAMESPACE", "ticketing", "Ray namespace of the named actors.")
    http_host: str = _setting("HTTP_HOST", "127.0.0.1", "Address Serve's HTTP ingress binds.")
    http_port: int = _setting("HTTP_PORT", 8000, "Port of Serve's HTTP ingress.")
    # -- hosting: entities on a bounded pool of host actors (issue 9) --
    host_cpus: float = _setting(
        "HOST_CPUS", 0.5, "CPUs each host actor declares: real demand, so a pool that must grow "
        "makes Ray's autoscaler add nodes (0 would hide it).")
    host_resource: str = _setting(
        "HOST_RESOURCE", "", "Custom Ray resource host actors need (pins them to nodes that "
        "offer it); empty places them anywhere.")
    host_pool_min: int = _setting(
        "HOST_POOL_MIN", 2, "Fewest host actors, whatever the catalog (host 0 manages the pool).")
    host_pool_max: int = _setting(
        "HOST_POOL_MAX", 64, "Most host actors the pool grows to.")
    events_per_host: int = _setting(
        "EVENTS_PER_HOST", 250, "Open events one host is sized for; the pool grows by one host "
        "per this many open events.")
    pool_check_interval_s: float = _setting(
        "POOL_CHECK_INTERVAL_S", 1.0, "How often hosts re-read the members (handing off what "
        "they no longer own) and host 0 pings the pool and resizes it.")
    host_ping_timeout_s: float = _setting(
        "HOST_PING_TIMEOUT_S", 2.0, "How long host 0 waits for a host's answer to a ping; a ping "
        "not answered this fast counts as silence.")
    host_leave_after_s: float = _setting(
        "HOST_LEAVE_AFTER_S", 10.0, "A member silent this long leaves the members (its entities "
        "come back on the others) until it answers again; a busy host answering late stays.")
    passivate_after_s: float = _setting(
        "PASSIVATE_AFTER_S", 60.0, "An entity unused this long is passivated: its memory is "
        "released, its state stays in Redis and Kafka, and it comes back on use or when due.")
    due_sweep_interval_s: float = _setting(
        "DUE_SWEEP_INTERVAL_S", 0.25, "How often each host looks for due entities in the due "
        "index (hold expiries of passivated blocks, heartbeats of busy rooms).")
    redis_watch_interval_s: float = _setting(
        "REDIS_WATCH_INTERVAL_S", 0.5, "How often each host asks Redis who it is (its run_id): "
        "a Redis that restarted (and may have lost its last writes, or everything) makes the "
        "host activate every entity it hosts again, reconciled with the Kafka logs.")
    entity_heartbeat_s: float = _setting(
        "ENTITY_HEARTBEAT_S", 2.0, "A busy room or ingest keeps a due entry this far ahead, so "
        "if its host dies another host activates it within about this long.")
    event_length_s: float = _setting(
        "EVENT_LENGTH_S", 30 * 86400.0, "When an event ends if it does not say (after on-sale).")
    event_close_after_s: float = _setting(
        "EVENT_CLOSE_AFTER_S", 86400.0, "An event closes by itself this long after it ends.")
    ledger_partitions: int = _setting(
        "LEDGER_PARTITIONS", 4, "Partitions of the booking ledger topic (created by the first "
        "host that writes a booking).")
    kafka_replication_factor: int = _setting(
        "KAFKA_REPLICATION_FACTOR", 1, "Replicas of every topic the platform creates.")
    kafka_min_insync_replicas: int = _setting(
        "KAFKA_MIN_INSYNC_REPLICAS", 1, "min.insync.replicas of every topic it creates (acks=all "
        "waits for this many).")
    serve_replicas: int = _setting(
        "SERVE_REPLICAS", 1, "HTTP replicas of the Serve app (per cluster). On a 2-core box one "
        "fans out 7,500 streams fastest; a second competes with HAProxy for the same cores.")
    ingress_resource: str = _setting(
        "INGRESS_RESOURCE", "", "Custom Ray resource the HTTP replicas need (pins them to ingress "
        "nodes that offer it); empty places them anywhere.")
    proxy_location: str = _setting(
        "SERVE_PROXY_LOCATION", "EveryNode", "Where Serve runs HTTP proxies: EveryNode (each node "
        "serves) or HeadOnly (needed when several nodes share one host, as in tests).")
    hold_ttl_s: int = _setting(
        "HOLD_TTL_S", 600, "Default hold lifetime (seat and price locked), per event overridable.")
    max_seats_per_user: int = _setting(
        "MAX_SEATS_PER_USER", 6, "Default cap of seats a user holds plus buys, per event.")
    admission_ttl_s: int = _setting(
        "ADMISSION_TTL_S", 1800, "How long an admission token lets its user hold and buy.")
    ticket_ttl_s: int = _setting(
        "TICKET_TTL_S", 86400, "How long a waiting-room ticket token stays valid.")
    block_max_seats: int = _setting(
        "BLOCK_MAX_SEATS", 2000, "Most seats one seat-block actor owns (whole rows per block).")
    sweep_interval_s: float = _setting(
        "SWEEP_INTERVAL_S", 0.2, "How often a seat-block actor frees expired holds.")
    sweep_batch_max: int = _setting(
        "SWEEP_BATCH_MAX", 500, "Most expired holds freed by one sweep round trip.")
    hold_batch_max: int = _setting(
        "HOLD_BATCH_MAX", 64, "Most hold requests a Serve replica sends in one actor call.")
    hold_batch_wait_s: float = _setting(
        "HOLD_BATCH_WAIT_S", 0.002, "Longest a hold waits for its batch to fill.")
    hold_batches_in_flight: int = _setting(
        "HOLD_BATCHES_IN_FLIGHT", 1, "Most hold batches a Serve replica has out to one seat "
        "block (it works through them one at a time; what comes meanwhile goes as the next, "
        "larger batch). Per block: a slow block never holds up another's holds.")
    checkout_batch_max: int = _setting(
        "CHECKOUT_BATCH_MAX", 64, "Most checkouts a seat block charges, writes to the ledger in "
        "one Kafka produce and confirms together (at most 512: a batch's bookings fit one "
        "record batch).")
    checkout_batch_wait_ms: float = _setting(
        "CHECKOUT_BATCH_WAIT_MS", 2.0, "Longest a checkout waits for its batch to fill (each "
        "batch costs one acknowledged produce, ~0.5-1 ms of the broker's CPU, and two fenced "
        "script calls).")
    checkout_drain_s: float = _setting(
        "CHECKOUT_DRAIN_S", 20.0, "How long a seat block being replaced (handed off, or "
        "activated again after a Redis restart) lets its checkouts in flight finish under its "
        "own epoch before it lets its successor activate; one slower than this is settled by "
        "the successor (set back if not charged, finished at expiry if paid).")
    max_body_bytes: int = _setting(
        "MAX_BODY_BYTES", 65536, "Largest request body accepted; larger gets 413.")
    max_quantity: int = _setting(
        "MAX_QUANTITY", 50, "Largest quantity or seat list one hold may ask for.")
    kafka_timeout_s: float = _setting(
        "KAFKA_TIMEOUT_S", 10.0, "How long a ledger write may wait for acks=all.")
    actor_call_timeout_s: float = _setting(
        "ACTOR_CALL_TIMEOUT_S", 30.0, "How long Serve waits on one actor call before a 503.")
    join_batch_max: int = _setting(
        "JOIN_BATCH_MAX", 512, "Most joins a Serve replica sends to Kafka in one batch.")
    join_batch_wait_ms: float = _setting(
        "JOIN_BATCH_WAIT_MS", 10.0, "Longest a join waits for its Kafka batch to fill (each batch "
        "costs the broker a request: ~0.5 ms of its CPU here).")
    join_partitions: int = _setting(
        "JOIN_PARTITIONS", 4, "Kafka partitions of each event's joins topic (joins spread by ticket).")
    ingest_actors: int = _setting(
        "INGEST_ACTORS", 2, "Actors per event pulling join batches from the partitions.")
    ingest_batch_max: int = _setting(
        "INGEST_BATCH_MAX", 5000, "Most joins one ingest actor pulls per batch.")
    ingest_wait_ms: int = _setting(
        "INGEST_WAIT_MS", 50, "Longest an ingest actor waits for its batch to fill.")
    ingest_fetch_wait_ms: int = _setting(
        "INGEST_FETCH_WAIT_MS", 200, "Longest the broker holds an ingest fetch open waiting for "
        "64 KiB of joins: longer costs the broker less while quiet (50 ms: 3x its idle CPU), "
        "and delays a join by up to this when traffic is light.")
    ingest_commit_interval_ms: int = _setting(
        "INGEST_COMMIT_INTERVAL_MS", 1000, "Least time between an ingest actor's offset commits "
        "(each costs the broker ~2 ms of CPU; a crash replays at most this much, deduplicated).")
    ingest_stall_s: float = _setting(
        "INGEST_STALL_S", 5.0, "A host's joins consumer behind on a lane but fetching nothing this "
        "long is rebuilt.")
    ingest_lag_ms: int = _setting(
        "INGEST_LAG_MS", 250, "Allowance for joins still on their way through Kafka, added to "
        "the clock uncertainty behind which the room merges partitions.")
    partition_idle_ms: int = _setting(
        "PARTITION_IDLE_MS", 1000, "A partition silent this long stops holding the merge back.")
    admission_rate_per_s: float = _setting(
        "ADMISSION_RATE_PER_S", 50.0, "Default admissions per second, per event overridable.")
    admit_interval_s: float = _setting(
        "ADMIT_INTERVAL_S", 0.1, "How often the room merges, persists and admits.")
    admit_batch_max: int = _setting(
        "ADMIT_BATCH_MAX", 10_000, "Most users one admission step lets in (keeps each step "
        "short; unspent rate carries over to the next).")
    room_idle_tick_max_s: float = _setting(
        "ROOM_IDLE_TICK_MAX_S", 0.5, "A room with nothing to do slows its ticks down to this; "
        "new joins wake it at once.")
    ntp_refresh_s: float = _setting(
        "NTP_REFRESH_S", 30.0, "How often the ingress re-measures its clock offset.")
    unsynced_uncertainty_ms: int = _setting(
        "UNSYNCED_UNCERTAINTY_MS", 1000, "Clock uncertainty assumed when no NTP server answers.")
    join_rate_per_s: float = _setting(
        "JOIN_RATE_PER_S", 5.0, "Joins allowed per client address per second, shared by all "
        "replicas in Redis (429 beyond).")
    status_rate_per_s: float = _setting(
        "STATUS_RATE_PER_S", 10.0, "Status reads allowed per client address per second (429 "
        "beyond).")
    user_rate_per_s: float = _setting(
        "USER_RATE_PER_S", 2.0, "Joins, and separately status reads, allowed per signed-in user "
        "per second (burst 3), whatever address they come from.")
    signin_rate_per_s: float = _setting(
        "SIGNIN_RATE_PER_S", 20.0, "Development user tokens, and proof-of-work challenges, issued "
        "per client address per second.")
    client_addr_header: str = _setting(
        "CLIENT_ADDR_HEADER", "", "Request header holding the client address, written by the "
        "hardened HAProxy (infra/haproxy_harden.py deletes any client-sent copy first). Empty: "
        "the peer address. Never X-Forwarded-For, which clients write.")
    ingress_http_request_timeout_s: int = _setting(
        "INGRESS_HTTP_REQUEST_TIMEOUT_S", 10, "HAProxy closes a connection that has not sent "
        "its whole request head within this (slowloris).")
    ingress_keep_alive_timeout_s: int = _setting(
        "INGRESS_KEEP_ALIVE_TIMEOUT_S", 10, "HAProxy closes an idle keep-alive connection after "
        "this.")
    ingress_client_timeout_s: int = _setting(
        "INGRESS_CLIENT_TIMEOUT_S", 60, "HAProxy closes a client inactive this long (streams "
        "send a heartbeat every 15 s, so live ones never are).")
    ingress_conn_per_addr_max: int = _setting(
        "INGRESS_CONN_PER_ADDR_MAX", 1000, "Concurrent connections HAProxy accepts from one "
        "source address (an office or carrier NAT is many buyers: keep it generous).")
    max_streams_per_ticket: int = _setting(
        "MAX_STREAMS_PER_TICKET", 3, "Open SSE streams one ticket may hold per replica.")
    stream_tick_s: float = _setting(
        "STREAM_TICK_S", 1.0, "How often a replica refreshes queue positions for its streams.")
    heartbeat_s: float = _setting(
        "HEARTBEAT_S", 15.0, "SSE heartbeat interval (keeps proxies from closing idle streams).")
    access_log: bool = _setting(
        "ACCESS_LOG", False, "Serve access logs; off by default, they cost 20-50% on the hot path.")
    # -- live availability and read replicas (issue 4) --
    seat_log_max: int = _setting(
        "SEAT_LOG_MAX", 10_000, "Seat changes kept in each event's Redis change stream (capped "
        "so it cannot grow without end; older reconnects get a fresh snapshot).")
    seat_delta_interval_s: float = _setting(
        "SEAT_DELTA_INTERVAL_S", 0.2, "Availability deltas are coalesced and sent at most this "
        "often per stream (fewer, larger messages for thousands of clients).")
    seat_delta_phases: int = _setting(
        "SEAT_DELTA_PHASES", 4, "A replica's streams are split into this many phases, written "
        "in turn across each delta interval, so its writes are spread over the interval instead "
        "of one burst that every stream waits behind (each stream still gets at most one delta "
        "per interval, with every change up to its turn).")
    seat_resume_max: int = _setting(
        "SEAT_RESUME_MAX", 2000, "Seat changes each replica keeps in memory per event so a "
        "reconnect (Last-Event-ID) resumes without a snapshot or a Redis read.")
    seat_stream_queue_max: int = _setting(
        "SEAT_STREAM_QUEUE_MAX", 256, "Messages queued for one slow stream client before it is "
        "dropped (it reconnects and resumes), so one client cannot grow the replica's memory.")
    seat_stream_heartbeat_s: float = _setting(
        "SEAT_STREAM_HEARTBEAT_S", 15.0, "SSE comment sent on idle availability streams so "
        "proxies keep them open.")
    seat_feed_idle_s: float = _setting(
        "SEAT_FEED_IDLE_S", 60.0, "A replica keeps reading an event's changes this long after "
        "its last stream client left, so a mass reconnect resumes from memory.")
    replica_probe_interval_s: float = _setting(
        "REPLICA_PROBE_INTERVAL_S", 0.5, "How often each replica's staleness is measured (a "
        "heartbeat written to the primary, timed until the replica shows it).")
    replica_max_staleness_s: float = _setting(
        "REPLICA_MAX_STALENESS_S", 2.0, "A replica staler than this is skipped; reads go to the "
        "primary until it catches up.")
    replica_retry_s: float = _setting(
        "REPLICA_RETRY_S", 2.0, "After a replica fails a read, reads skip it this long.")
    gc_freeze_interval_s: float = _setting(
        "GC_FREEZE_INTERVAL_S", 1.0, "A Serve replica moves its live objects out of the garbage "
        "collector's reach this often (replica/gc_policy.py: thousands of streams made full "
        "collections of up to 1.1 s); 0 turns it off.")
    gc_unfreeze_interval_s: float = _setting(
        "GC_UNFREEZE_INTERVAL_S", 600.0, "How often a replica hands its frozen objects back for "
        "one full collection (frees reference cycles that became garbage while frozen); 0 "
        "never.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from its env variable (when set), apply overrides, validate."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(raw, f.default)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def development(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings with the development secrets written in the source: for unit tests only,
        which ask for them by calling this; nothing that serves traffic does."""
        secrets = {"token_secret": DEV_TOKEN_SECRET, "admin_token": DEV_ADMIN_TOKEN}
        return cls.from_env({} if environ is None else environ, **(secrets | overrides))

    def validate(self) -> None:
        """Fail at start on combinations that cannot work."""
        problems = []
        if self.gc_freeze_interval_s < 0 or self.gc_unfreeze_interval_s < 0 or (
                0 < self.gc_unfreeze_interval_s < self.gc_freeze_interval_s):
            problems.append("GC_FREEZE_INTERVAL_S and GC_UNFREEZE_INTERVAL_S must be >= 0, the "
                            "unfreeze interval (when not 0) at least the freeze interval")
        if self.hold_ttl_s <= 0 or self.admission_ttl_s <= 0 or self.ticket_ttl_s <= 0:
            problems.append("hold_ttl_s, admission_ttl_s and ticket_ttl_s must be positive")
        if not 1 <= self.max_seats_per_user <= self.max_quantity:
            problems.append("max_seats_per_user must be between 1 and max_quantity")
        if min(self.block_max_seats, self.hold_batch_max, self.hold_batches_in_flight,
               self.sweep_batch_max) < 1:
            problems.append("block_max_seats, hold_batch_max, hold_batches_in_flight and "
                            "sweep_batch_max must be >= 1")
        if not 1 <= self.host_pool_min <= self.host_pool_max or self.events_per_host < 1:
            problems.append("host_pool_min must be between 1 and host_pool_max, events_per_host "
                            ">= 1")
        if self.host_cpus < 0 or self.passivate_after_s <= 0 or self.due_sweep_interval_s <= 0:
            problems.append("host_cpus must be >= 0, passivate_after_s and due_sweep_interval_s > 0")
        if self.redis_watch_interval_s <= 0:
            problems.append("redis_watch_interval_s must be > 0")
        if self.host_leave_after_s < self.host_ping_timeout_s:
            problems.append("host_leave_after_s must be >= host_ping_timeout_s")
        if self.entity_heartbeat_s <= self.pool_check_interval_s:
            problems.append("entity_heartbeat_s must exceed pool_check_interval_s")
        if not 1 <= self.kafka_min_insync_replicas <= self.kafka_replication_factor:
            problems.append("kafka_min_insync_replicas must be between 1 and "
                            "kafka_replication_factor")
        if self.serve_replicas < 1:
            problems.append("serve_replicas must be >= 1")
        if self.join_partitions < 1 or not 1 <= self.ingest_actors <= self.join_partitions:
            problems.append("ingest_actors must be between 1 and join_partitions")
        if self.admission_rate_per_s < 0 or self.admit_interval_s <= 0:
            problems.append("admission_rate_per_s must be >= 0 and admit_interval_s > 0")
        if self.admit_batch_max < 1 or self.room_idle_tick_max_s < self.admit_interval_s:
            problems.append("admit_batch_max must be >= 1 and room_idle_tick_max_s >= "
                            "admit_interval_s")
        if (self.seat_log_max < 100 or self.seat_resume_max < 1 or self.seat_delta_interval_s < 0
                or self.seat_delta_phases < 1):
            problems.append("seat_log_max must be >= 100, seat_resume_max >= 1, "
                            "seat_delta_interval_s >= 0, seat_delta_phases >= 1")
        if self.ingest_commit_interval_ms < 0 or min(self.ingest_wait_ms,
                                                     self.ingest_fetch_wait_ms) < 1:
            problems.append("ingest_commit_interval_ms must be >= 0, ingest_wait_ms and "
                            "ingest_fetch_wait_ms >= 1")
        if self.join_batch_max < 1 or self.join_batch_wait_ms < 0:
            problems.append("join_batch_max must be >= 1 and join_batch_wait_ms >= 0")
        if not 1 <= self.checkout_batch_max <= CHECKOUT_BATCH_MAX_LIMIT or (
                self.checkout_batch_wait_ms < 0):
            problems.append(f"checkout_batch_max must be between 1 and {CHECKOUT_BATCH_MAX_LIMIT} "
                            "and checkout_batch_wait_ms >= 0")
        if self.checkout_drain_s < 0:
            problems.append("checkout_drain_s must be >= 0")
        waits_s = 2 * self.redis_wait_timeout_ms / 1000 if self.redis_wait_replicas else 0.0
        if (self.checkout_batch_wait_ms / 1000 + self.kafka_timeout_s + waits_s
                >= self.actor_call_timeout_s):
            problems.append("checkout_batch_wait_ms + kafka_timeout_s (+ 2 x "
                            "redis_wait_timeout_ms with REDIS_WAIT_REPLICAS) must stay below "
                            "actor_call_timeout_s (Serve would answer 503 for a checkout that "
                            "then confirms)")
        problems += self._redis_problems()
        if self.sweep_interval_s <= 0 or self.hold_batch_wait_s < 0:
            problems.append("sweep_interval_s must be > 0 and hold_batch_wait_s >= 0")
        if self.production and not (self.signing_keys and self.auth_issuer):
            problems.append("TICKETING_SIGNING_KEYS, AUTH_ISSUER and AUTH_JWKS_URL must be set "
                            "in production")
        if bool(self.auth_issuer) != bool(self.auth_jwks_url):
            problems.append("AUTH_ISSUER and AUTH_JWKS_URL go together")
        if self.auth_issuer in ("urn:ticketing", "urn:ticketing:dev"):
            problems.append("AUTH_ISSUER must not be the stack's own issuer")
        if self.user_token_cache_max < 0 or not 0 <= self.user_token_cache_s <= 300:
            problems.append("USER_TOKEN_CACHE_MAX must be >= 0 and USER_TOKEN_CACHE_S between 0 "
                            "and 300 (the issuer key cache's lifespan)")
        if not self.auth_audience or self.dev_user_token_ttl_s <= 0:
            problems.append("AUTH_AUDIENCE must be set and DEV_USER_TOKEN_TTL_S positive")
        if min(self.join_rate_per_s, self.status_rate_per_s, self.user_rate_per_s,
               self.signin_rate_per_s) <= 0:
            problems.append("join, status, user and signin rates must be positive")
        if min(self.ingress_http_request_timeout_s, self.ingress_keep_alive_timeout_s,
               self.ingress_client_timeout_s, self.ingress_conn_per_addr_max) < 1:
            problems.append("ingress timeouts and the per-address connection cap must be >= 1")
        if self.ingress_client_timeout_s <= max(self.heartbeat_s, self.seat_stream_heartbeat_s):
            problems.append("INGRESS_CLIENT_TIMEOUT_S must exceed the stream heartbeats")
        for name, value in (("TICKETING_TOKEN_SECRET", self.token_secret),
                            ("TICKETING_ADMIN_TOKEN", self.admin_token)):
            if not value:
                problems.append(f"{name} is not set (`make up` generates it into its state dir; "
                                "`python -m infra.stack env` prints it)")
            elif self.production and (weakness := secret_weakness(value)):
                problems.append(f"{name} is {weakness}; production needs a random secret")
        if self.token_secret and len(self.token_secret) < 16:
            problems.append("TICKETING_TOKEN_SECRET must be at least 16 characters")
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))

    def _redis_problems(self) -> list[str]:
        problems = []
        for address in self.redis_sentinels:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                problems.append(f"REDIS_SENTINELS entry {address!r} is not host:port")
        if self.redis_sentinels:
            if len(set(self.redis_sentinels)) != len(self.redis_sentinels):
                problems.append("REDIS_SENTINELS lists a Sentinel twice")
            if not self.redis_master_name:
                problems.append("REDIS_MASTER_NAME must be set with REDIS_SENTINELS")
            if self.redis_replica_urls:
                problems.append("REDIS_REPLICA_URLS and REDIS_SENTINELS exclude each other "
                                "(with Sentinel the read replicas are the ones it reports; a "
                                "fixed URL would be the old primary after a failover)")
            if self.redis_wait_replicas < 1:
                problems.append("REDIS_WAIT_REPLICAS must be >= 1 with REDIS_SENTINELS (else "
                                "a failover can lose an owner's epoch or a begun checkout)")
        if self.redis_wait_replicas < 0 or self.redis_wait_timeout_ms < 1:
            problems.append("REDIS_WAIT_REPLICAS must be >= 0 and REDIS_WAIT_TIMEOUT_MS >= 1")
        return problems

    @property
    def redis_ha(self) -> bool:
        """The primary is found through Sentinel (and may move)."""
        return bool(self.redis_sentinels)

    @property
    def dev_issuer(self) -> bool:
        """The stack signs users in itself (POST /v1/dev/token): development without an IdP."""
        return not self.production and not self.auth_issuer

    @property
    def max_token_ttl_s(self) -> float:
        """Longest a ticket or admission token lives: how long a retired key stays published."""
        return float(max(self.ticket_ttl_s, self.admission_ttl_s))

    @property
    def ledger_topic(self) -> str:
        """Topics are named here and nowhere else."""
        return f"{self.kafka_topic_prefix}.bookings"

    @property
    def events_topic(self) -> str:
        """Event definitions and lottery seeds (compacted), read back when Redis lost them."""
        return f"{self.kafka_topic_prefix}.events"

    @property
    def admissions_topic(self) -> str:
        """Every admission step of every room (key = event id), read back when Redis lost it."""
        return f"{self.kafka_topic_prefix}.admissions"

    def joins_topic(self, event_id: str) -> str:
        """One joins topic per event, so each room commits its own offsets."""
        return f"{self.kafka_topic_prefix}.joins.{event_id}"

    @property
    def joins_group(self) -> str:
        """The consumer group of every joins topic: each host's one consumer reads many events
        (offsets are kept per topic and partition, so each event's stay apart)."""
        return f"{self.kafka_topic_prefix}.joins"


def secret_weakness(value: str) -> str:
    """Why `value` is too weak to guard production ("" when it is not): written in the source,
    shorter than PRODUCTION_SECRET_MIN_CHARS, or under PRODUCTION_SECRET_MIN_BITS of estimated
    entropy (which catches "aaaa…" and "abcabc…" of any length)."""
    if value in SOURCE_SECRETS:
        return "a development value written in the source"
    if len(value) < PRODUCTION_SECRET_MIN_CHARS:
        return f"shorter than {PRODUCTION_SECRET_MIN_CHARS} characters"
    if _entropy_bits(value) < PRODUCTION_SECRET_MIN_BITS:
        return f"too predictable (under {PRODUCTION_SECRET_MIN_BITS} bits of entropy)"
    return ""


def _entropy_bits(value: str) -> float:
    """The lower of two estimates: the characters' Shannon entropy times the length (blind to
    repeats) and the deflated size in bits (blind to a small alphabet)."""
    counts, n = Counter(value), len(value)
    shannon = -n * sum(c / n * math.log2(c / n) for c in counts.values())
    deflated = 8 * (len(zlib.compress(value.encode(), 9)) - len(zlib.compress(b"", 9)))
    return min(shannon, deflated)


def _parse(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
            raise ValueError(f"not a boolean: {raw!r}")
        return raw.lower() in {"1", "true", "yes"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
