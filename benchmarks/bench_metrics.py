"""What one metric record costs on the hot path: store/metrics.py's bound children against a
direct `ray.util.metrics` record (what every request would pay without them) and
prometheus_client's labelled children (the page the app served before). CPU time per record
(process_time), best of 7 x 20,000; plus one flush of a process's worth of children.

    python -m benchmarks.bench_metrics            # Ray's recorder without a cluster
    python -m benchmarks.bench_metrics --ray      # in a local Ray worker (ray.init; `heavy`)

Results: benchmarks/results/bench_metrics.json (`--ray`: bench_metrics_ray.json).
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from typing import Any

from benchmarks._common import write_result
from store import metrics

N = 20_000


def best(f: Any, n: int = N) -> float:
    """Microseconds of CPU per call."""
    return min(timeit.Timer(f, timer=time.process_time).repeat(7, n)) / n * 1e6


def run(with_ray: bool) -> dict[str, Any]:
    if with_ray:
        import ray

        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    from prometheus_client import CollectorRegistry
    from prometheus_client import Counter as PromCounter
    from prometheus_client import Histogram as PromHistogram
    from ray.util import metrics as ray_metrics

    ours_counter = metrics.HTTP_REQUESTS.bind("/bench", "200")
    ours_hist = metrics.HTTP_DURATION.bind("/bench")
    ours_gauge = metrics.QUEUE_WAITING.bind("bench")
    ray_counter = ray_metrics.Counter("bench_requests_total", "b", tag_keys=("route", "status"))
    ray_counter.set_default_tags({"route": "/bench", "status": "200"})
    ray_hist = ray_metrics.Histogram("bench_seconds", "b", boundaries=list(
        metrics.LATENCY_BUCKETS_S), tag_keys=("route",)).set_default_tags({"route": "/bench"})
    ray_gauge = ray_metrics.Gauge("bench_waiting", "b", tag_keys=("event",))
    ray_gauge.set_default_tags({"event": "bench"})
    registry = CollectorRegistry()
    prom_counter = PromCounter("bench_requests", "b", ["route", "status"],
                               registry=registry).labels("/bench", "200")
    prom_hist = PromHistogram("bench_seconds", "b", ["route"], registry=registry,
                              buckets=metrics.LATENCY_BUCKETS_S).labels("/bench")
    # a busy replica's worth of children: 30 routes x 4 statuses, 30 latency children
    for route in range(30):
        for status in ("200", "201", "409", "429"):
            metrics.HTTP_REQUESTS.bind(f"/r{route}", status).inc()
        metrics.HTTP_DURATION.bind(f"/r{route}").observe(0.004)
    metrics.REGISTRY.flush()  # the Ray objects made once
    for child in metrics.REGISTRY.children():
        if isinstance(child, metrics.Counter):
            child.inc()
        elif isinstance(child, metrics.Histogram):
            child.observe(0.004)
    started = time.process_time()
    metrics.REGISTRY.flush()
    flush_ms = (time.process_time() - started) * 1000
    return {
        "ray_initialised": with_ray,
        "us_per_record": {
            "ours_counter_inc": round(best(ours_counter.inc), 3),
            "ours_histogram_observe": round(best(lambda: ours_hist.observe(0.004)), 3),
            "ours_gauge_set": round(best(lambda: ours_gauge.set(3.0)), 3),
            "ray_counter_inc": round(best(ray_counter.inc), 3),
            "ray_histogram_observe": round(best(lambda: ray_hist.observe(0.004)), 3),
            "ray_gauge_set": round(best(lambda: ray_gauge.set(3.0)), 3),
            "prometheus_client_counter_inc": round(best(prom_counter.inc), 3),
            "prometheus_client_histogram_observe": round(best(lambda: prom_hist.observe(0.004)), 3),
            "lambda_call_overhead": round(best(lambda: None), 3),
        },
        "flush": {"children": len(metrics.REGISTRY.children()), "cpu_ms": round(flush_ms, 2),
                  "every_s": metrics.FLUSH_INTERVAL_S},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ray", action="store_true", help="record inside a local Ray worker")
    args = parser.parse_args()
    result = run(args.ray)
    print(json.dumps(result, indent=2))
    write_result("bench_metrics_ray" if args.ray else "bench_metrics", result)


if __name__ == "__main__":
    main()
