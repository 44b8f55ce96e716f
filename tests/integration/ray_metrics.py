"""Scraping Ray's Prometheus endpoints, as Prometheus would: every alive node's metrics agent
(`metrics_export_port`), the samples of all of them together."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def endpoints() -> list[str]:
    import ray

    return [f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            for node in ray.nodes() if node["Alive"]]


def scrape() -> list[Sample]:
    samples: list[Sample] = []
    for url in endpoints():
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            samples.extend(Sample(s.name, dict(s.labels), s.value) for s in family.samples)
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum over every process (Ray labels each with its WorkerId) of one series."""
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_until(check: Callable[[list[Sample]], bool], timeout_s: float = 60.0) -> list[Sample]:
    """Scrape until `check` holds (Ray's agent exports every few seconds); the last scrape."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape()
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(1.0)
