"""Compute-seconds: an execution that runs for seconds and computes for milliseconds shows both."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from servers import HANDLERS, Server, lambda_client, wait_for
from test_metrics import scrape, value


def test_a_function_that_sleeps_2_s_durably_and_computes_50_ms_shows_50_ms(serve: Callable[..., Server]) -> None:
    server = serve(str(HANDLERS / "traced.py"))
    client = lambda_client(server.endpoint)
    before = scrape(f"{server.endpoint}/metrics")
    started = client.invoke(FunctionName="mostly_asleep", InvocationType="Event", Payload=json.dumps({}))
    arn = started["ResponseMetadata"]["HTTPHeaders"]["x-amz-durable-execution-arn"]
    wait_for(lambda: client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED", timeout=60)

    # boto3 drops the fields it does not know; the CLI prints them all.
    done = server.cli("executions", "get", arn)
    assert done.returncode == 0, done.stderr
    usage = json.loads(done.stdout)["PerdureUsage"]
    assert usage["DurationSeconds"] >= 2.0, usage
    # Two steps of 25 ms of CPU each, and each invocation's own work: far from the 2 s it lasted.
    assert 0.04 <= usage["ComputeSeconds"] <= 0.5, usage
    assert 0.045 <= usage["CpuSeconds"] <= usage["ComputeSeconds"] + 0.01, usage
    # Lambda's default 128 MB: an eighth of a GB-second per second.
    assert abs(usage["GBSeconds"] - usage["ComputeSeconds"] * 128 / 1024) < 0.002, usage

    after = scrape(f"{server.endpoint}/metrics")
    counted = value(after, "perdure_compute_seconds_total", function="mostly_asleep") - value(
        before, "perdure_compute_seconds_total", function="mostly_asleep"
    )
    assert abs(counted - usage["ComputeSeconds"]) < 0.01
    page = httpx.get(f"{server.endpoint}/functions", timeout=10).text
    assert f"{usage['ComputeSeconds']:.3f} s" in page.replace("\n", "")
