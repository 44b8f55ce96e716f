"""Backup and restore of a stack's state: `make backup [DIR=...]`, `make restore DIR=...`.

    python -m infra.backup backup [DIR]     (default <state dir>/backups/<UTC time>)
    python -m infra.backup restore DIR [--force]

A backup folder holds

    redis.rdb         a snapshot of Redis (`redis-cli --rdb`: the server's own point-in-time
                      RDB, sent over the replication protocol, so it works on a remote server)
    ledger.jsonl      every record of the booking ledger, read after the snapshot, with its
                      partition and offset: the ledger is a superset of the bookings the
                      snapshot knows (a booking is in the ledger before Redis confirms it)
    events.jsonl      the events log (event definitions with their lottery seeds)
    admissions.jsonl  the admissions log
    events.json       the event definitions as the snapshot has them (for people)
    manifest.json     when, from where, the topic prefix, each topic's partitions and end
                      offsets, each file's size and sha256

Consistency: the Redis snapshot is one instant; the logs are read after it, so they hold every
booking and admission the snapshot has, and possibly a few later ones. On restore each seat
block replays the ledger when it activates (a booking the snapshot lacks is applied again), so
no seat sold in the backup can be sold again; holds and joins after the snapshot are not in it.

Restore brings a backup into empty services: it loads the RDB into a temporary redis-server
(loopback, a free port, no persistence), copies every key with DUMP/RESTORE (and its TTL) into
the target Redis, then writes each log's records into the target Kafka, to the same
partitions, in order (acks=all, idempotent). It refuses a target that is not empty (an event
in any Redis database, or records in those topics) unless --force; a fresh stack's own
housekeeping keys (pool members, the due index) are overwritten. Joins topics are not copied:
who waits is in the snapshot, and the restored rooms read their joins topics (fresh, empty)
from the beginning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from domain.settings import Settings
from infra import stack
from store import redis_clients

FORMAT = "ticketing-backup-1"
SCAN_COUNT = 1000


class BackupError(RuntimeError):
    """A backup or restore could not be made as asked (nothing half-done is left unsaid)."""


@dataclass(frozen=True)
class Log:
    name: str  # file stem in the backup
    topic: str
    partitions: int
    configs: dict[str, str]


def logs_of(settings: Settings) -> list[Log]:
    """The durable logs a backup carries (the joins topics are not: see the module doc)."""
    from store import catalog_log

    return [Log("ledger", settings.ledger_topic, settings.ledger_partitions, {}),
            Log("events", settings.events_topic, catalog_log.PARTITIONS,
                {"cleanup.policy": "compact"}),
            Log("admissions", settings.admissions_topic, settings.ledger_partitions, {})]


# -- backup -------------------------------------------------------------------------------------

def backup(settings: Settings, folder: Path) -> dict[str, Any]:
    """Write a backup of the stack `settings` names into `folder` (created; must be empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty")
    started = time.time()
    url = redis_clients.primary_url(settings)  # with Sentinel: the primary now
    _redis_snapshot(url, folder / "redis.rdb")
    topics = {log.name: _export_log(settings.kafka_bootstrap, log, folder / f"{log.name}.jsonl")
              for log in logs_of(settings)}
    events = _event_definitions(url)
    (folder / "events.json").write_text(json.dumps(events, indent=1))
    manifest = {
        "format": FORMAT, "started_at": started, "finished_at": time.time(),
        "redis_url": _without_password(url),
        "kafka_bootstrap": settings.kafka_bootstrap,
        "kafka_topic_prefix": settings.kafka_topic_prefix,
        "topics": topics, "events": len(events),
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                  for p in sorted(folder.iterdir())},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _redis_snapshot(url: str, target: Path) -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        raise BackupError("redis-cli not found (Debian: apt-get install redis-tools)")
    done = subprocess.run([cli, "-u", url, "--rdb", str(target)], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        raise BackupError(f"redis snapshot failed: {done.stderr.strip() or done.stdout.strip()}")


def _export_log(bootstrap: str, log: Log, target: Path) -> dict[str, Any]:
    """Every record of the topic up to its end offsets now, one JSON line each."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        known = consumer.topics()
        if log.topic not in known:
            target.write_text("")
            return {"topic": log.topic, "partitions": log.partitions, "end_offsets": {},
                    "records": 0}
        parts = sorted(consumer.partitions_for_topic(log.topic) or set())
        tps = [TopicPartition(log.topic, p) for p in parts]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        rows: list[tuple[int, int, str | None, str]] = []
        deadline = time.monotonic() + 300
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BackupError(f"reading {log.topic} timed out")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                        rows.append((r.partition, r.offset,
                                     r.key.decode() if r.key is not None else None,
                                     r.value.decode()))
    finally:
        consumer.close()
    rows.sort(key=lambda row: (row[0], row[1]))
    with target.open("w") as out:
        for partition, offset, key, value in rows:
            out.write(json.dumps({"partition": partition, "offset": offset, "key": key,
                                  "value": value}) + "\n")
    return {"topic": log.topic, "partitions": len(parts),
            "end_offsets": {str(tp.partition): ends[tp] for tp in tps}, "records": len(rows)}


def _event_definitions(url: str) -> list[dict[str, Any]]:
    from store import keys

    client = redis.Redis.from_url(url)
    try:
        ids = [i.decode() for i in cast(list[bytes], client.zrange(keys.events_index(), 0, -1))]
        raws = [client.get(keys.event(i)) for i in ids]
        return [json.loads(raw) for raw in raws if raw is not None]
    finally:
        client.close()


# -- restore ------------------------------------------------------------------------------------

def restore(settings: Settings, folder: Path, force: bool = False) -> dict[str, Any]:
    """Bring the backup in `folder` into the (empty) Redis and Kafka `settings` name."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"not a backup of this kind: {manifest.get('format')!r}")
    for name, facts in manifest["files"].items():
        if _sha256(folder / name) != facts["sha256"]:
            raise BackupError(f"{name} does not match the manifest (corrupt or changed)")
    if manifest["kafka_topic_prefix"] != settings.kafka_topic_prefix and not force:
        raise BackupError(f"the backup's topics are {manifest['kafka_topic_prefix']}.*, this "
                          f"stack's {settings.kafka_topic_prefix}.* (--force restores anyway)")
    url = redis_clients.primary_url(settings)  # with Sentinel: the primary now
    target = redis.Redis.from_url(url)
    try:
        if not force and _has_events(url, target):
            raise BackupError("the target Redis is not empty: it has events (--force restores "
                              "over it)")
        logs = logs_of(settings)
        if not force:
            _check_empty_topics(settings.kafka_bootstrap, [log.topic for log in logs])
        keys_restored = _load_rdb(folder / "redis.rdb", url)
    finally:
        target.close()
    records = {log.name: _import_log(settings, log, folder / f"{log.name}.jsonl",
                                     manifest["topics"][log.name]["partitions"])
               for log in logs}
    return {"keys": keys_restored, "records": records}


def _has_events(url: str, client: redis.Redis) -> bool:
    """Whether any database holds an event (a fresh stack's own housekeeping keys, the pool's
    members or the due index, do not count: the restore overwrites them)."""
    from store import keys

    for db in _keyspace(client):
        other = redis.Redis.from_url(url, db=int(db[2:]))
        try:
            if other.zcard(keys.events_index()) or next(
                    iter(other.scan_iter(match=keys.event("*"), count=SCAN_COUNT)), None):
                return True
        finally:
            other.close()
    return False


def _keyspace(client: redis.Redis) -> dict[str, Any]:
    return {db: facts for db, facts in client.info("keyspace").items() if db.startswith("db")}


def _check_empty_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        known = consumer.topics()
        for topic in topics:
            if topic not in known:
                continue
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            if any(consumer.end_offsets(tps).values()):
                raise BackupError(f"kafka topic {topic} is not empty (--force restores anyway)")
    finally:
        consumer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_rdb(rdb: Path, target_url: str) -> int:
    """RDB -> a temporary redis-server -> DUMP/RESTORE into the target, db by db."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ticketing-restore-") as tmp:
        shutil.copy(rdb, Path(tmp) / "dump.rdb")
        process = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", tmp,
             "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            source = redis.Redis(port=port)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if not int(source.info("persistence")["loading"]):
                        break
                except redis.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BackupError("the snapshot could not be loaded")
                time.sleep(0.1)
            copied = 0
            for db in _keyspace(source):
                number = int(db[2:])
                src = redis.Redis(port=port, db=number)
                dst = redis.Redis.from_url(target_url, db=number)
                copied += _copy_db(src, dst)
                src.close()
                dst.close()
            source.close()
            return copied
        finally:
            process.terminate()
            process.wait(30)


def _copy_db(src: redis.Redis, dst: redis.Redis) -> int:
    copied = 0
    cursor = 0
    while True:
        cursor, names = src.scan(cursor, count=SCAN_COUNT)
        if names:
            read = src.pipeline(transaction=False)
            for name in names:
                read.pttl(name)
                read.dump(name)
            answers = read.execute()
            write = dst.pipeline(transaction=False)
            for i, name in enumerate(names):
                ttl, payload = answers[2 * i], answers[2 * i + 1]
                if payload is None:  # expired meanwhile
                    continue
                write.restore(name, max(int(ttl), 0), payload, replace=True)
                copied += 1
            write.execute()
        if cursor == 0:
            return copied


def _import_log(settings: Settings, log: Log, source: Path, partitions: int) -> int:
    from kafka import KafkaProducer

    from store.kafka_io import ensure_topic

    lines = [json.loads(line) for line in source.read_text().splitlines() if line]
    ensure_topic(settings.kafka_bootstrap, log.topic, max(partitions, 1),
                 settings.kafka_replication_factor, settings.kafka_min_insync_replicas,
                 log.configs or None)
    if not lines:
        return 0
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             enable_idempotence=True, linger_ms=5)
    try:
        for row in lines:  # in (partition, offset) order: each partition keeps its order
            producer.send(log.topic, row["value"].encode(),
                          key=row["key"].encode() if row["key"] is not None else None,
                          partition=row["partition"])
        producer.flush(120)
    finally:
        producer.close()
    return len(lines)


# -- helpers ------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("backup", help="write a backup folder")
    make.add_argument("dir", nargs="?", help="the folder (default <state dir>/backups/<time>)")
    back = sub.add_parser("restore", help="bring a backup into empty services")
    back.add_argument("dir")
    back.add_argument("--force", action="store_true", help="restore over data that is there")
    args = parser.parse_args(argv)
    settings = stack.client_settings()
    try:
        if args.command == "backup":
            folder = Path(args.dir) if args.dir else stack.state_dir() / "backups" / (
                time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
            manifest = backup(settings, folder)
            print(f"backup in {folder}: {manifest['events']} events, " + ", ".join(
                f"{name} {t['records']} records" for name, t in manifest["topics"].items()))
        else:
            done = restore(settings, Path(args.dir), force=args.force)
            print(f"restored {done['keys']} Redis keys and " + ", ".join(
                f"{name} {n} records" for name, n in done["records"].items()))
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
