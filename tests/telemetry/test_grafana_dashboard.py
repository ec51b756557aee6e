"""docs/grafana/perdure-dashboard.json imports into Grafana as it is, and asks only for metrics a
real `perdure serve` exposes, in PromQL that Prometheus's own parser accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from servers import HANDLERS, ROOT, Server, lambda_client, wait_for

DASHBOARD = ROOT / "docs" / "grafana" / "perdure-dashboard.json"
WORKLOAD = ROOT / "docs" / "grafana" / "workload.py"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
METRIC = re.compile(r"\bperdure_[a-z_]+\b")
# A metric and the label matchers that select it: perdure_x{a="b", c=~"d"}.
SELECTOR = re.compile(r"\b(perdure_[a-z_]+)(?:\{([^}]*)\})?")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in _dashboard()["panels"] for target in panel.get("targets", [])]


def _series_name(name: str) -> str:
    """A sample's or a query's metric, less a histogram's _bucket, _sum or _count."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


def _scrape(server: Server) -> dict[str, set[str]]:
    """Each metric /metrics has samples of, with the names of its labels."""
    reply = httpx.get(f"{server.endpoint}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            labels.setdefault(_series_name(sample.name), set()).update(sample.labels.keys() - {"le"})
    return labels


def test_the_dashboard_declares_its_data_source_input_and_function_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    [source] = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == ("DS_PROMETHEUS", "datasource", "prometheus")
    [variable] = dashboard["templating"]["list"]
    assert variable["name"] == "function"
    assert variable["datasource"] == DATASOURCE
    assert variable["definition"] == "label_values(perdure_executions_started_total, function)"
    assert variable["includeAll"] and variable["allValue"] == ".*"

    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    for title, target in _targets():
        assert target["datasource"] == DATASOURCE, title
        assert target["refId"] and target["expr"].strip(), title
        assert METRIC.search(target["expr"]), f"{title}: {target['expr']} names no perdure_ metric"


def test_every_metric_the_dashboard_queries_is_one_perdure_serve_exposes(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(str(HANDLERS / "traced.py"), str(WORKLOAD))
    lam = lambda_client(server.endpoint)

    def start(function: str, payload: dict[str, Any]) -> str:
        reply = lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload))
        return str(reply["ResponseMetadata"]["HTTPHeaders"]["x-amz-durable-execution-arn"])

    def status(arn: str) -> str:
        return str(lam.get_durable_execution(DurableExecutionArn=arn)["Status"])

    # A step retried and an execution failed (traced.py's), and a refund a person approves.
    failing = start("retried_then_failed", {"marker": str(tmp_path / "flaky")})
    refund = start("refund", {"refund_id": "r-1", "spool": str(tmp_path)})
    callback = tmp_path / "r-1.callback"
    wait_for(callback.exists, timeout=30)
    scraped = _scrape(server)  # while the refund waits: the gauges of executions not ended have samples
    lam.send_durable_execution_callback_success(CallbackId=callback.read_text(), Result=json.dumps({"approved": True}))
    wait_for(lambda: status(refund) == "SUCCEEDED", timeout=60)
    wait_for(lambda: status(failing) == "FAILED", timeout=60)
    for name, labels in _scrape(server).items():
        scraped.setdefault(name, set()).update(labels)

    queried = {_series_name(name) for _, target in _targets() for name in METRIC.findall(target["expr"])}
    missing = sorted(queried - scraped.keys())
    assert missing == [], f"the dashboard queries metrics that /metrics does not have: {missing}"
    # Where a metric has a function label, the query follows the $function variable (All, or those chosen).
    for title, target in _targets():
        for name, matchers in SELECTOR.findall(target["expr"]):
            if "function" in scraped[_series_name(name)]:
                assert 'function=~"$function"' in matchers, f"{title}: {name} ignores $function in {target['expr']}"


def test_every_expression_parses_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    # As the browser and PostgreSQL tests do, this fails where its tool is missing (.ci/run installs it).
    assert promtool is not None, "promtool was not found: install Prometheus (apt-get install prometheus) to check the dashboard's PromQL."
    # Grafana replaces its variables before Prometheus sees a query: so does this test.
    rules = [
        {"record": f"perdure:check:{index}", "expr": target["expr"].replace("$__rate_interval", "1m").replace("$function", ".*")}
        for index, (_, target) in enumerate(_targets())
    ]
    path = tmp_path / "rules.json"  # JSON is YAML, which promtool reads
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
