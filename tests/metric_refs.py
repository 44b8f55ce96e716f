"""The metrics the Grafana dashboard and the Prometheus alert rules read, from their files.

Shared by tests/unit/test_dashboards.py (each is defined in store/metrics.py) and
tests/integration/test_metrics.py (each is on Ray's endpoint of a live stack). A reference is
any name with Ray's export prefix (`store.metrics.EXPORT_PREFIX`, the one place it is spelled)
in a PromQL expression: a panel's targets, a template variable's query, a rule's expr.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from store.metrics import EXPORT_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "ticketing.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
_SERIES = re.compile(rf"\b{re.escape(EXPORT_PREFIX)}[a-zA-Z_:][a-zA-Z0-9_:]*")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def panels(data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel that is not a row, rows' nested panels included."""
    out = []
    for panel in (data or dashboard())["panels"]:
        out.extend(panel.get("panels", []))
        if panel["type"] != "row":
            out.append(panel)
    return out


def dashboard_expressions() -> dict[str, list[str]]:
    """Panel title (or `$variable`) -> its PromQL expressions."""
    data = dashboard()
    found = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in panels(data)}
    for variable in data.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            found["$" + variable["name"]] = [query["query"] if isinstance(query, dict) else query]
    return found


def alert_expressions() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for rule in alert_rules()}


def series_in(expression: str) -> set[str]:
    return set(_SERIES.findall(expression))


def referenced_series() -> set[str]:
    """Every exported series name the dashboard and the alert rules read."""
    exprs = [e for es in dashboard_expressions().values() for e in es]
    return {s for e in [*exprs, *alert_expressions().values()] for s in series_in(e)}
