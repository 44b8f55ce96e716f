"""The bulk of the crowd joining at the Kafka boundary: one process producing join records
into the event's joins topic on the crowd's schedule (the ingress's record format,
`store.joins.encode`, stamped with this machine's clock when sent, acks=all, idempotent).

This is what the ingress replicas would write for these users; the HTTP sample's users are
left out (they join through the real ingress). Users are `b<index>`.

    python -m benchmarks.onsale.producer CONFIG.json    (secret in ONSALE_TOKEN_SECRET)
stdout: "P <produced> <errors>" every 0.25 s, "DONE <json>" at the end (with the
acknowledgements per 0.1 s, `ack_bins`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    from confluent_kafka import Producer

    from benchmarks.onsale.crowd import CrowdShape, arrivals
    from domain.ids import ticket_id_for
    from store import joins

    cfg = json.loads(Path(sys.argv[1]).read_text())
    secret = os.environ["ONSALE_TOKEN_SECRET"]
    shape = CrowdShape(**cfg["shape"])
    times = arrivals(cfg["users"], shape, cfg["seed"])
    skip = np.zeros(len(times), dtype=bool)
    skip[np.asarray(cfg["http_indexes"], dtype=int)] = True
    onsale, event_id, topic = cfg["onsale_at"], cfg["event_id"], cfg["topic"]
    producer = Producer({"bootstrap.servers": cfg["bootstrap"], "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576, "message.timeout.ms": 300_000,
                         "compression.type": "none"})
    errors = 0
    delivered = 0
    # acknowledgements per 0.1 s: [latest send (the record's CreateTime), latest ack], the
    # bulk joins' series for the chaos marks' RTO without a pair per record
    acks: dict[int, list[float]] = {}

    def report(err: object, msg: Any) -> None:
        nonlocal errors, delivered
        if err is not None:
            errors += 1
            return
        delivered += 1
        now = time.time()
        sent = msg.timestamp()[1] / 1000
        b = acks.setdefault(int(now * 10), [sent, now])
        b[0], b[1] = max(b[0], sent), now

    sent = 0
    last_print = 0.0
    dumps = json.dumps
    for i in range(len(times)):
        if skip[i]:
            continue
        due = onsale + float(times[i])
        wait = due - time.time()
        if wait > 0:
            producer.poll(0)
            while wait > 0:  # in small steps, so progress keeps flowing
                time.sleep(min(0.005, wait))
                wait = due - time.time()
        user = f"b{i}"
        ticket = ticket_id_for(secret, event_id, user)
        value = dumps(joins.encode(ticket, event_id, user, int(time.time() * 1000), 3, True, None),
                      separators=(",", ":")).encode()
        while True:
            try:
                producer.produce(topic, value, ticket.encode(), on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 2000 == 0:
            producer.poll(0)
            if time.time() - last_print >= 0.25:
                last_print = time.time()
                print(f"P {delivered} {errors} {sent}", flush=True)
    while producer.flush(1.0):
        print(f"P {delivered} {errors} {sent}", flush=True)
    print(f"P {delivered} {errors} {sent}", flush=True)
    print("DONE " + json.dumps({"sent": sent, "delivered": delivered, "errors": errors,
                                "ack_bins": [acks[k] for k in sorted(acks)]}), flush=True)


if __name__ == "__main__":
    main()
