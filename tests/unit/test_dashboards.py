"""deploy/grafana/ticketing.json and deploy/prometheus/alerts.yml read only metrics that exist.

Every metric a panel, a template variable or an alert rule reads is defined in
store/metrics.py (tests/integration/test_metrics.py checks that each is on a live stack's
endpoint too); every defined metric has a panel; the rules pass promtool's check, and its
rule tests (deploy/prometheus/alerts_test.yml) show the chaos matrix's failures firing them.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from infra import promtool
from store import metrics
from tests import metric_refs

CHAOS_MATRIX = {"TicketingReplicaStale", "TicketingAdmissionStalled", "TicketingLedgerLag",
                "TicketingLedgerFailing"}


def test_every_metric_the_dashboard_and_the_rules_read_is_defined() -> None:
    defined = metrics.by_exported_name()
    referenced = metric_refs.referenced_series()
    assert referenced and referenced <= set(defined), sorted(referenced - set(defined))


def test_every_panel_and_rule_reads_a_ticketing_metric() -> None:
    """A typo'd or unprefixed name would read nothing, silently."""
    for title, exprs in metric_refs.dashboard_expressions().items():
        assert exprs, title
        for expr in exprs:
            assert metric_refs.series_in(expr), f"{title}: {expr}"
    for alert, expr in metric_refs.alert_expressions().items():
        assert metric_refs.series_in(expr), f"{alert}: {expr}"


def test_every_defined_metric_has_a_panel() -> None:
    on_panels = {s for title, exprs in metric_refs.dashboard_expressions().items()
                 if not title.startswith("$") for e in exprs for s in metric_refs.series_in(e)}
    shown = {metrics.by_exported_name()[s].name for s in on_panels}
    assert shown == {m.name for m in metrics.ALL}


def test_the_dashboard_is_grafana_json_with_unique_ids_and_a_prometheus_datasource() -> None:
    data = metric_refs.dashboard()
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in metric_refs.panels(data):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"])
        assert panel["description"], panel["title"]


def test_the_rules_cover_the_chaos_matrix_and_each_has_severity_summary_and_runbook() -> None:
    rules = metric_refs.alert_rules()
    assert {r["alert"] for r in rules} >= CHAOS_MATRIX
    runbook = (metric_refs.ROOT / "docs" / "runbook.md").read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/runbook.md" and anchor in anchors, rule["alert"]


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.fixture(scope="module")
def promtool_path() -> str:
    return str(promtool.path(fetch=False))  # infra/install.sh fetches it


def test_promtool_accepts_the_rules(promtool_path) -> None:
    done = subprocess.run([promtool_path, "check", "rules", str(metric_refs.ALERTS)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_tests_fire_the_chaos_matrix_alerts_and_nothing_when_healthy(
        promtool_path) -> None:
    done = subprocess.run([promtool_path, "test", "rules", metric_refs.ALERT_TESTS.name],
                          cwd=metric_refs.ALERT_TESTS.parent, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_parses_every_panel_expression(promtool_path, tmp_path) -> None:
    """Each panel's PromQL, with Grafana's variables given values, as a recording rule:
    `promtool check rules` parses it as Prometheus would."""
    grafana = {"$event": ".*", "$__range": "30m", "$__rate_interval": "1m"}
    rules = []
    for n, expr in enumerate(e for title, exprs in metric_refs.dashboard_expressions().items()
                             if not title.startswith("$") for e in exprs):
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"ticketing:panel_{n}", "expr": expr})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([promtool_path, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
