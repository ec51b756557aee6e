"""``GET /metrics``: Prometheus's text format, read back with ``prometheus_client``'s own parser,
from a real `perdure serve` whose executions run, wait, fail, retry and crash."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import HANDLERS, PERDURE, Server, free_port, lambda_client, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    reply = httpx.get(url, headers=headers or {}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _start(server: Server, function: str, payload: dict[str, object]) -> str:
    reply = lambda_client(server.endpoint).invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload))
    return str(reply["ResponseMetadata"]["HTTPHeaders"]["x-amz-durable-execution-arn"])


def _status(server: Server, arn: str) -> str:
    return str(lambda_client(server.endpoint).get_durable_execution(DurableExecutionArn=arn)["Status"])


def test_counts_and_histograms_move_as_executions_run_fail_retry_and_wait(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(str(HANDLERS / "traced.py"))
    metrics = f"{server.endpoint}/metrics"
    before = scrape(metrics)

    callback_file = tmp_path / "callback-id"
    order = _start(
        server, "traced_order",
        {"url": f"{server.endpoint}/health", "callback_file": str(callback_file), "crash_marker": str(tmp_path / "crashed")},
    )  # fmt: skip
    failing = _start(server, "retried_then_failed", {"marker": str(tmp_path / "flaky")})
    wait_for(callback_file.exists, timeout=30)
    waiting = scrape(metrics)
    assert value(waiting, "perdure_executions", function="traced_order", state="suspended") == 1
    lambda_client(server.endpoint).send_durable_execution_callback_success(
        CallbackId=callback_file.read_text(), Result=json.dumps({"approved": True})
    )
    wait_for(lambda: _status(server, order) == "SUCCEEDED", timeout=60)
    wait_for(lambda: _status(server, failing) == "FAILED", timeout=60)
    after = scrape(metrics)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("perdure_executions_started_total", function="traced_order") == 1
    assert moved("perdure_executions_ended_total", function="traced_order", status="SUCCEEDED") == 1
    assert moved("perdure_executions_ended_total", function="retried_then_failed", status="FAILED") == 1
    # The order: to the wait, to the approval, the crash, the retry that ends it.
    assert moved("perdure_invocations_total", function="traced_order", outcome="completed") == 3
    assert moved("perdure_invocations_total", function="traced_order", outcome="failed") == 1
    assert moved("perdure_retries_total", function="traced_order", kind="invocation") == 1
    assert moved("perdure_retries_total", function="retried_then_failed", kind="step") == 1
    # check_stock, the approval's submitter and ship; charge twice (its failed attempt, its retry).
    assert moved("perdure_step_duration_seconds_count", function="traced_order") == 3
    assert moved("perdure_step_duration_seconds_count", function="retried_then_failed") == 2
    assert moved("perdure_callback_wait_seconds_count", function="traced_order", outcome="SUCCEEDED") == 1
    assert moved("perdure_timer_lateness_seconds_count", kind="wait") == 1
    assert moved("perdure_timer_lateness_seconds_count", kind="retry") == 1
    assert moved("perdure_checkpoint_duration_seconds_count", function="traced_order") >= 5
    assert moved("perdure_store_commit_duration_seconds_count", store="sqlite") > 0
    assert moved("perdure_invocation_duration_seconds_count", function="traced_order") == 4
    assert moved("perdure_compute_seconds_total", function="traced_order") > 0
    assert value(after, "perdure_executions", function="traced_order", state="suspended") == 0
    assert value(after, "perdure_worker_processes", state="busy") + value(after, "perdure_worker_processes", state="idle") >= 1
    assert value(after, "perdure_invocations_in_flight", state="running") == 0


def _create_key(workdir: Path, db_url: str) -> str:
    made = subprocess.run(
        [*PERDURE, "keys", "create", "--name", "prometheus", "--db", db_url],
        cwd=workdir, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return str(json.loads(made.stdout)["Token"])


@pytest.fixture
def guarded(tmp_path: Path) -> tuple[Server, str, int]:
    metrics_port = free_port()
    server = Server([str(HANDLERS / "traced.py"), "--metrics-port", str(metrics_port)], tmp_path, {}, dev=False)
    token = _create_key(tmp_path, server.db_url)
    server.start()
    yield server, token, metrics_port  # type: ignore[misc]
    server.stop()


def test_a_scrape_is_authenticated_like_the_api_unless_on_the_metrics_port(guarded: tuple[Server, str, int]) -> None:
    server, token, metrics_port = guarded
    refused = httpx.get(f"{server.endpoint}/metrics", timeout=10)
    assert refused.status_code in (401, 403), refused.text
    assert "perdure_" not in refused.text
    wrong = httpx.get(f"{server.endpoint}/metrics", headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert wrong.status_code in (401, 403)
    samples = scrape(f"{server.endpoint}/metrics", {"Authorization": f"Bearer {token}"})
    assert ("perdure_worker_processes", (("state", "idle"),)) in samples
    apart = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert ("perdure_worker_processes", (("state", "idle"),)) in apart
    assert urllib.parse.urlsplit(server.endpoint).port != metrics_port
