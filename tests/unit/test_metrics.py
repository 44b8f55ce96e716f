"""store/metrics.py: the metric names and tag keys are pinned, records stay in the process
until a flush, and a flush hands Ray exactly what changed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from store import metrics
from store.metrics import Kind

# The exact strings the dashboard, the alert rules and every scrape config depend on. Renaming
# one is a breaking change for operators: change it here, in deploy/ and in the docs at once.
PINNED = {
    ("ticketing_http_requests_total", Kind.COUNTER, ("route", "status")),
    ("ticketing_http_request_duration_seconds", Kind.HISTOGRAM, ("route",)),
    ("ticketing_joins_total", Kind.COUNTER, ("event",)),
    ("ticketing_cache_reads_total", Kind.COUNTER, ("source",)),
    ("ticketing_redis_replica_staleness_seconds", Kind.GAUGE, ("replica",)),
    ("ticketing_position_update_lag_seconds", Kind.HISTOGRAM, ("event",)),
    ("ticketing_admissions_total", Kind.COUNTER, ("event",)),
    ("ticketing_joins_queued_total", Kind.COUNTER, ("event",)),
    ("ticketing_admission_rate_per_s", Kind.GAUGE, ("event",)),
    ("ticketing_admission_measured_rate_per_s", Kind.GAUGE, ("event",)),
    ("ticketing_queue_waiting", Kind.GAUGE, ("event",)),
    ("ticketing_queue_oldest_wait_seconds", Kind.GAUGE, ("event",)),
    ("ticketing_admission_stalled_seconds", Kind.GAUGE, ("event",)),
    ("ticketing_seats_available", Kind.GAUGE, ("event",)),
    ("ticketing_holds_total", Kind.COUNTER, ("event",)),
    ("ticketing_sales_total", Kind.COUNTER, ("event",)),
    ("ticketing_seats_sold_total", Kind.COUNTER, ("event",)),
    ("ticketing_revenue_cents_total", Kind.COUNTER, ("event",)),
    ("ticketing_checkout_errors_total", Kind.COUNTER, ("code",)),
    ("ticketing_ledger_append_seconds", Kind.HISTOGRAM, ("outcome",)),
    ("ticketing_pool_hosts", Kind.GAUGE, ("state",)),
    ("ticketing_open_events", Kind.GAUGE, ()),
    ("ticketing_host_entities", Kind.GAUGE, ("host", "kind")),
}


def test_every_metric_name_kind_and_tag_key_is_pinned() -> None:
    assert {(m.name, m.kind, m.tags) for m in metrics.ALL} == PINNED


def test_names_are_unique_prometheus_names_and_counters_end_in_total() -> None:
    names = [m.name for m in metrics.ALL]
    assert len(names) == len(set(names))
    for metric in metrics.ALL:
        assert metric.name.startswith("ticketing_") and metric.name.isidentifier()
        assert metric.name.endswith("_total") == (metric.kind is Kind.COUNTER), metric.name
        assert "le" not in metric.tags  # histograms add it


def test_ray_prefixes_every_exported_name_and_a_histogram_has_three_series() -> None:
    assert metrics.EXPORT_PREFIX == "ray_"
    assert metrics.HTTP_REQUESTS.exported() == ("ray_ticketing_http_requests_total",)
    assert metrics.LEDGER_APPEND.exported() == (
        "ray_ticketing_ledger_append_seconds_bucket", "ray_ticketing_ledger_append_seconds_sum",
        "ray_ticketing_ledger_append_seconds_count")
    assert len(metrics.by_exported_name()) == sum(len(m.exported()) for m in metrics.ALL)


def test_binding_checks_the_tag_count_and_returns_the_same_child_each_time() -> None:
    child = metrics.HOLDS.bind("ev-bind")
    assert metrics.HOLDS.bind("ev-bind") is child and child.tags == {"event": "ev-bind"}
    with pytest.raises(ValueError):
        metrics.HOST_ENTITIES.bind("0")


class FakeRay:
    """What a flush hands Ray's metric objects (no Ray here: unit tests start nothing)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, float, dict[str, str]]] = []

    def metric(self, name: str, kind: metrics.Kind) -> Any:
        records = self.records

        class Recorder:
            def inc(self, value: float, tags: dict[str, str]) -> None:
                records.append((name, "inc", value, dict(tags)))

            def set(self, value: float, tags: dict[str, str]) -> None:
                records.append((name, "set", value, dict(tags)))

        return Recorder()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> tuple[metrics.Registry, FakeRay]:
    registry, ray = metrics.Registry(interval_s=3600), FakeRay()
    monkeypatch.setattr(registry, "_exported", lambda metric, suffix, kind, extra=(): ray.metric(
        metric.name + suffix, kind))
    monkeypatch.setattr(metrics, "REGISTRY", registry)
    return registry, ray


def test_a_flush_hands_ray_each_counters_increase_since_the_last_flush(registry) -> None:
    reg, ray = registry
    sold = metrics.SEATS_SOLD.bind("ev1")
    sold.inc(2)
    sold.inc(3)
    reg.flush()
    reg.flush()  # nothing new: nothing recorded
    sold.inc()
    reg.flush()
    assert ray.records == [("ticketing_seats_sold_total", "inc", 5, {"event": "ev1"}),
                           ("ticketing_seats_sold_total", "inc", 1, {"event": "ev1"})]


def test_a_gauge_is_handed_its_last_value_at_every_flush(registry) -> None:
    reg, ray = registry
    waiting = metrics.QUEUE_WAITING.bind("ev1")
    waiting.set(10)
    waiting.set(7)
    reg.flush()
    reg.flush()
    assert [r[2] for r in ray.records] == [7, 7]


def test_a_histogram_is_exported_as_cumulative_buckets_a_count_and_a_sum(registry) -> None:
    reg, ray = registry
    lag = metrics.POSITION_LAG.bind("ev1")
    for value in (0.03, 0.2, 0.2, 100.0):
        lag.observe(value)
    reg.flush()
    buckets = {r[3]["le"]: r[2] for r in ray.records
               if r[0] == "ticketing_position_update_lag_seconds_bucket"}
    assert buckets == {"0.05": 1, "0.1": 1, "0.25": 3, "0.5": 3, "1.0": 3, "2.0": 3, "5.0": 3,
                       "10.0": 3, "30.0": 3, "60.0": 3, "+Inf": 4}
    assert ("ticketing_position_update_lag_seconds_count", "set", 4, {"event": "ev1"}) in ray.records
    total = next(r[2] for r in ray.records if r[0] == "ticketing_position_update_lag_seconds_sum")
    assert math.isclose(total, 100.43)


def test_a_histogram_is_handed_its_running_totals_when_they_change_or_every_refresh(
        registry, monkeypatch) -> None:
    """Ray drops a gauge not set for two export intervals: an idle histogram is set again."""
    reg, ray = registry
    clock = [1000.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    lag = metrics.POSITION_LAG.bind("ev2")
    lag.observe(0.5)
    reg.flush()
    reg.flush()  # unchanged, set just now: skipped
    lag.observe(0.5)
    reg.flush()
    clock[0] += metrics.REFRESH_S
    reg.flush()  # unchanged, but due for a refresh
    infs = [r[2] for r in ray.records if r[0].endswith("_bucket") and r[3]["le"] == "+Inf"]
    assert infs == [1, 2, 2]


def test_a_value_on_a_bucket_bound_counts_in_that_bucket(registry) -> None:
    reg, ray = registry
    metrics.LEDGER_APPEND.bind("ok").observe(0.005)
    reg.flush()
    buckets = {r[3]["le"]: r[2] for r in ray.records if r[0].endswith("_bucket")}
    assert buckets["0.0025"] == 0 and buckets["0.005"] == 1


def test_a_failing_flush_is_logged_once_and_never_raises(registry, monkeypatch, caplog) -> None:
    reg, _ = registry

    def broken(*_: Any) -> Any:
        raise RuntimeError("recorder gone")

    monkeypatch.setattr(reg, "_exported", broken)
    metrics.HOLDS.bind("ev1").inc()
    metrics.HOLDS.bind("ev2").inc()
    reg.flush()
    reg.flush()
    assert sum("handing metrics to Ray failed" in r.message for r in caplog.records) == 1
