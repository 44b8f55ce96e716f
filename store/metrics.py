"""Every metric of the app and the actors, exported through Ray's metrics system.

One home per name: each metric's name, kind, tag keys and help are defined here once, and
`tests/unit/test_metrics.py` pins them as exact strings (the dashboard in
`deploy/grafana/ticketing.json` and the alert rules in `deploy/prometheus/alerts.yml` read
them). Ray's metrics agent on every node serves them in the Prometheus text format at
`http://<node>:<metrics_export_port>/metrics` (`make up` fixes the port:
`infra.stack.RAY_METRICS_EXPORT_PORT`), with the names prefixed `ray_` (`EXPORT_PREFIX`) and
labels Ray adds (`WorkerId`, `NodeAddress`, `SessionName`, ...): sum or max them away.

Why records stay in the process: a `ray.util.metrics` record crosses into Ray's C++ recorder
and costs ~4-6 us (benchmarks/bench_metrics.py), and the join, hold and HTTP paths run thousands
of requests a second. So the hot path records into a child bound once to its tag values (a
counter `inc` is one Python add, ~0.1 us; a histogram `observe` a bisect and three adds, ~0.4
us), and one daemon thread per process hands what changed to Ray every `FLUSH_INTERVAL_S`.
Ray's own agent exports every few seconds, so this adds at most a second to what a scrape
sees. Records come from the process's event loop; the flusher only reads them (it never
resets a value), so no update is lost to the thread switch.

Histograms are exported laid out as Prometheus lays them out: cumulative `<name>_bucket{le}`,
`<name>_sum` and `<name>_count` series, so `histogram_quantile` and `rate` read them as usual.
Ray's own Histogram takes one observation per C++ call, which is what the hot path must not
pay, and a Ray Counter named `..._bucket` is exported as `..._bucket_total`; so they are Ray
Gauges set to this process's running totals at every flush (TYPE gauge on the page; a restart
starts them at 0 again, which `rate` treats as the counter reset it is). Ray drops a gauge not
set for two export intervals, so a dead process's series end instead of freezing.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

log = logging.getLogger("ticketing.metrics")

EXPORT_PREFIX = "ray_"  # what Ray's exporter puts before every application metric's name
FLUSH_INTERVAL_S = 1.0
REFRESH_S = 5.0  # an unchanged histogram is set again this often (Ray drops one unset 2 x 10 s)
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0, 30.0)
LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Metric:
    """A metric's definition; `bind` (on the kinds below) gives the child to record into."""

    name: str
    help: str
    tags: tuple[str, ...] = ()

    kind = Kind.GAUGE

    def exported(self) -> tuple[str, ...]:
        """The series names a scrape of Ray's endpoint shows for it."""
        return (EXPORT_PREFIX + self.name,)

    def _check(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.tags):
            raise ValueError(f"{self.name} takes tags {self.tags}, got {values!r}")
        return tuple(str(v) for v in values)


@dataclass(frozen=True)
class CounterMetric(Metric):
    kind = Kind.COUNTER

    def bind(self, *values: str) -> Counter:
        return REGISTRY.child(self, self._check(values), Counter)


@dataclass(frozen=True)
class GaugeMetric(Metric):
    kind = Kind.GAUGE

    def bind(self, *values: str) -> Gauge:
        return REGISTRY.child(self, self._check(values), Gauge)


@dataclass(frozen=True)
class HistogramMetric(Metric):
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S

    kind = Kind.HISTOGRAM

    def exported(self) -> tuple[str, ...]:
        base = EXPORT_PREFIX + self.name
        return (base + "_bucket", base + "_sum", base + "_count")

    def bind(self, *values: str) -> Histogram:
        return REGISTRY.child(self, self._check(values), Histogram)


# -- the definitions --------------------------------------------------------------------------
# The ingress (Serve replicas)
HTTP_REQUESTS = CounterMetric(
    "ticketing_http_requests_total", "HTTP requests answered, by route template and status",
    ("route", "status"))
HTTP_DURATION = HistogramMetric(
    "ticketing_http_request_duration_seconds", "HTTP request time until the response head is "
    "handed over (a stream: until it starts), by route template", ("route",))
JOINS = CounterMetric(
    "ticketing_joins_total", "Joins acknowledged by Kafka (a rejoin counts again)", ("event",))
CACHE_READS = CounterMetric(
    "ticketing_cache_reads_total", "Cached reads, by where they were served (replica, primary)",
    ("source",))
REPLICA_STALENESS = GaugeMetric(
    "ticketing_redis_replica_staleness_seconds", "Measured replication delay of each Redis read "
    "replica (-1 while unreachable)", ("replica",))
POSITION_LAG = HistogramMetric(
    "ticketing_position_update_lag_seconds", "From the room's admission step moving a lane head "
    "to this replica's queue streams having been handed the new positions", ("event",),
    LAG_BUCKETS_S)
# The waiting room (one per event, on a host)
ADMISSIONS = CounterMetric(
    "ticketing_admissions_total", "Users admitted from the waiting room", ("event",))
JOINS_QUEUED = CounterMetric(
    "ticketing_joins_queued_total", "Joins the room merged and placed in a lane", ("event",))
ADMISSION_RATE = GaugeMetric(
    "ticketing_admission_rate_per_s", "The event's set admission rate", ("event",))
ADMISSION_MEASURED_RATE = GaugeMetric(
    "ticketing_admission_measured_rate_per_s", "Admissions per second the room measured lately",
    ("event",))
QUEUE_WAITING = GaugeMetric(
    "ticketing_queue_waiting", "Users waiting in the event's lanes (presale and general)",
    ("event",))
QUEUE_OLDEST_WAIT = GaugeMetric(
    "ticketing_queue_oldest_wait_seconds", "How long the first user still waiting has waited",
    ("event",))
ADMISSION_STALLED = GaugeMetric(
    "ticketing_admission_stalled_seconds", "How far the room is behind its own pace while users "
    "it could admit wait (seats left, rate above 0): seconds since its last admission beyond "
    "one admission interval; 0 when it keeps pace or has nobody to admit", ("event",))
SEATS_AVAILABLE = GaugeMetric(
    "ticketing_seats_available", "Seats neither held nor sold, as the room last read them",
    ("event",))
# Seat blocks (many per event, on the hosts)
HOLDS = CounterMetric("ticketing_holds_total", "Holds made", ("event",))
SALES = CounterMetric(
    "ticketing_sales_total", "Bookings confirmed (in the ledger and sold)", ("event",))
SEATS_SOLD = CounterMetric("ticketing_seats_sold_total", "Seats sold", ("event",))
REVENUE = CounterMetric(
    "ticketing_revenue_cents_total", "Revenue of the confirmed bookings, in cents", ("event",))
CHECKOUT_ERRORS = CounterMetric(
    "ticketing_checkout_errors_total", "Checkouts that failed at the seat block, by error code",
    ("code",))
LEDGER_APPEND = HistogramMetric(
    "ticketing_ledger_append_seconds", "Time to get a checkout batch acknowledged by every "
    "in-sync replica of the ledger topic (acks=all), by outcome (ok, failed)", ("outcome",))
# The host pool
POOL_HOSTS = GaugeMetric(
    "ticketing_pool_hosts", "Hosts of the pool as host 0 sized and pinged it (wanted, live)",
    ("state",))
OPEN_EVENTS = GaugeMetric("ticketing_open_events", "Events open (not closed)")
HOST_ENTITIES = GaugeMetric(
    "ticketing_host_entities", "Entities active on a host, by kind (block, room, ingest, event)",
    ("host", "kind"))

ALL: tuple[Metric, ...] = (
    HTTP_REQUESTS, HTTP_DURATION, JOINS, CACHE_READS, REPLICA_STALENESS, POSITION_LAG, ADMISSIONS,
    JOINS_QUEUED, ADMISSION_RATE, ADMISSION_MEASURED_RATE, QUEUE_WAITING, QUEUE_OLDEST_WAIT,
    ADMISSION_STALLED, SEATS_AVAILABLE, HOLDS, SALES, SEATS_SOLD, REVENUE, CHECKOUT_ERRORS,
    LEDGER_APPEND, POOL_HOSTS, OPEN_EVENTS, HOST_ENTITIES)


def by_exported_name() -> dict[str, Metric]:
    """Every exported series name (histograms: three each) to its metric."""
    return {series: metric for metric in ALL for series in metric.exported()}


# -- recording --------------------------------------------------------------------------------
class Child:
    """One metric with its tag values bound: what the hot path records into."""

    def __init__(self, metric: Metric, values: tuple[str, ...]) -> None:
        self.metric = metric
        self.tags = dict(zip(metric.tags, values, strict=True))


class Counter(Child):
    def __init__(self, metric: Metric, values: tuple[str, ...]) -> None:
        super().__init__(metric, values)
        self.value = 0.0
        self._flushed = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def _delta(self) -> float:
        value, delta = self.value, self.value - self._flushed
        self._flushed = value
        return delta


class Gauge(Child):
    def __init__(self, metric: Metric, values: tuple[str, ...]) -> None:
        super().__init__(metric, values)
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value


class Histogram(Child):
    def __init__(self, metric: Metric, values: tuple[str, ...]) -> None:
        super().__init__(metric, values)
        assert isinstance(metric, HistogramMetric)
        self._bounds = metric.buckets
        self.counts = [0] * (len(self._bounds) + 1)  # per bucket; the last one is +Inf
        self.sum = 0.0
        self._flushed: tuple[int, float] = (-1, -math.inf)  # (observations, monotonic time)
        # the cumulative bucket tags, built once
        self._le_tags = [self.tags | {"le": _le(b)} for b in (*self._bounds, math.inf)]

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class Registry:
    """The bound children of this process and the thread that hands them to Ray."""

    def __init__(self, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._children: dict[tuple[str, tuple[str, ...]], Child] = {}
        self._ray: dict[str, Any] = {}  # exported Ray metric objects, by name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed = False

    def child(self, metric: Metric, values: tuple[str, ...], kind: type[Any]) -> Any:
        key = (metric.name, values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, kind(metric, values))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="ticketing-metrics",
                                                    daemon=True)
                    self._thread.start()
        return child

    def release(self, *children: Child) -> None:
        """Stop exporting these (an entity passivated): Ray drops a gauge no longer set after
        two export intervals, so its series ends instead of repeating its last value."""
        with self._lock:
            for child in children:
                key = (child.metric.name, tuple(child.tags.values()))
                if self._children.get(key) is child:
                    del self._children[key]

    def children(self) -> list[Child]:
        with self._lock:
            return list(self._children.values())

    def _run(self) -> None:
        while True:
            time.sleep(self.interval_s)
            self.flush()

    def flush(self) -> None:
        """Hand every change since the last flush to Ray's recorder."""
        try:
            for child in self.children():
                if isinstance(child, Counter):
                    delta = child._delta()
                    if delta > 0:
                        self._exported(child.metric, "", Kind.COUNTER).inc(delta, tags=child.tags)
                elif isinstance(child, Gauge):  # set every time: the last value is what counts
                    self._exported(child.metric, "", Kind.GAUGE).set(child.value, tags=child.tags)
                elif isinstance(child, Histogram):
                    self._flush_histogram(child)
        except Exception:  # a metrics failure must never take a request or an actor down
            if not self._failed:
                log.exception("handing metrics to Ray failed (logged once)")
            self._failed = True

    def _flush_histogram(self, child: Histogram) -> None:
        counts, total, now = list(child.counts), child.sum, time.monotonic()
        if sum(counts) == child._flushed[0] and now - child._flushed[1] < REFRESH_S:
            return  # nothing new, and set lately enough that Ray keeps it
        child._flushed = (sum(counts), now)
        buckets = self._exported(child.metric, "_bucket", Kind.GAUGE, ("le",))
        cumulative = 0
        for count, le_tags in zip(counts, child._le_tags, strict=True):
            cumulative += count
            buckets.set(cumulative, tags=le_tags)
        self._exported(child.metric, "_count", Kind.GAUGE).set(cumulative, tags=child.tags)
        self._exported(child.metric, "_sum", Kind.GAUGE).set(total, tags=child.tags)

    def _exported(self, metric: Metric, suffix: str, kind: Kind,
                  extra_tags: tuple[str, ...] = ()) -> Any:
        """The Ray metric object of one exported name (made on first use, in this thread)."""
        name = metric.name + suffix
        made = self._ray.get(name)
        if made is None:
            from ray.util import metrics as ray_metrics

            cls = ray_metrics.Counter if kind is Kind.COUNTER else ray_metrics.Gauge
            made = self._ray[name] = cls(name, metric.help, tag_keys=(*metric.tags, *extra_tags))
        return made


REGISTRY = Registry()
