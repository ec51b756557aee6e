"""Concurrency and rate limits on real servers, measured by the handlers themselves (tests/handlers/limited.py).

Each invocation records when its work starts and ends; the tests count from those records how
many ran at once (per tenant too) and how often one started. The rules, lease by lease, are
in tests/service/test_limits.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster import Cluster
from pg_server import PostgresServer
from servers import HANDLERS, Server, lambda_client, shared_server, wait_for

from perdure.client import Client

APP = str(HANDLERS / "limited.py")


@dataclass(frozen=True)
class Run:
    """One invocation's work, as its handler recorded it."""

    function: str
    n: int
    tenant: str
    start: float
    end: float


def runs(log: Path, function: str) -> list[Run]:
    """The finished runs of ``function`` the log records, by start time."""
    starts: dict[tuple[str, int], tuple[float, str]] = {}
    found = []
    for line in log.read_text().splitlines() if log.exists() else []:
        event, when, name, n, tenant = line.split()
        if name != function:
            continue
        if event == "start":
            starts[(name, int(n))] = (float(when), tenant)
        elif (name, int(n)) in starts:
            began, tenant = starts.pop((name, int(n)))
            found.append(Run(name, int(n), tenant, began, float(when)))
    return sorted(found, key=lambda run: run.start)


def starts(log: Path, function: str) -> list[float]:
    """When each run of ``function`` started, finished or not, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted(float(when) for event, when, name, *_ in (line.split() for line in lines) if event == "start" and name == function)


def most_at_once(runs: list[Run]) -> int:
    """The most of these runs in progress at one moment."""
    edges = sorted([(run.start, 1) for run in runs] + [(run.end, -1) for run in runs])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def most_in_a_window(times: list[float], seconds: float) -> int:
    """The most of these times in any window ``seconds`` long (closed at its start, open at its end)."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with shared_server(tmp_path_factory, "limits", [APP, "--workers", "2"]) as server:
        yield server


@pytest.fixture
def log(server: Server) -> Path:
    return Path(server.env["PERDURE_TEST_LOG"])


def start_all(server: Server, function: str, payloads: list[dict[str, Any]]) -> list[str]:
    """Starts one execution per payload without waiting for it, from a few threads (as many callers would)."""
    with Client(server.endpoint) as client, ThreadPoolExecutor(8) as threads:
        started = threads.map(lambda payload: client.invoke(function, payload, wait=False), payloads)
        return [execution["DurableExecutionArn"] for execution in started]


def statuses(server: Server, function: str) -> dict[str, int]:
    with Client(server.endpoint) as client:
        found: dict[str, int] = {}
        for execution in client.list_executions(function):
            found[execution["Status"]] = found.get(execution["Status"], 0) + 1
        return found


def listed(server: Server, function: str) -> dict[str, Any]:
    """The function's entry in `perdure functions list`."""
    done = server.cli("functions", "list")
    assert done.returncode == 0, done.stderr
    return next(entry for entry in json.loads(done.stdout) if entry["FunctionName"] == function)


def test_fifty_executions_run_at_most_three_at_once_and_all_finish(server: Server, log: Path) -> None:
    start_all(server, "capped", [{"n": n} for n in range(50)])
    # Those waiting are visible while they wait: how many, and for how long the oldest.
    entry = listed(server, "capped")
    assert entry["PerdureLimits"] == {"ReservedConcurrentExecutions": 3}
    assert entry["PerdureQueue"]["Running"] <= 3
    assert entry["PerdureQueue"]["Ready"] >= 30, entry
    assert entry["PerdureQueue"]["OldestReadySeconds"] > 0, entry
    wait_for(lambda: statuses(server, "capped").get("SUCCEEDED") == 50, timeout=60, interval=0.5)
    done = runs(log, "capped")
    assert len(done) == 50
    assert most_at_once(done) == 3, "never more than 3, and the 3 places used"
    assert statuses(server, "capped") == {"SUCCEEDED": 50}
    assert listed(server, "capped")["PerdureQueue"] == {"Running": 0, "Ready": 0, "Suspended": 0, "Paused": 0}


def test_two_tenants_share_the_places_fairly(server: Server, log: Path) -> None:
    lam = lambda_client(server.endpoint)
    for tenant in ("early", "late"):
        for n in range(12):
            payload = json.dumps({"n": n if tenant == "early" else 100 + n, "tenant": tenant})
            lam.invoke(FunctionName="shared", InvocationType="Event", Payload=payload, TenantId=tenant)
    wait_for(lambda: statuses(server, "shared").get("SUCCEEDED") == 24, timeout=60, interval=0.5)
    done = runs(log, "shared")
    early = [run for run in done if run.tenant == "early"]
    late = [run for run in done if run.tenant == "late"]
    assert len(early) == len(late) == 12
    assert most_at_once(done) <= 4
    assert most_at_once(early) == most_at_once(late) == 2, "each tenant its share, no more"
    # First come, first served would run all 12 early ones (3 rounds of 4) before any late one.
    assert late[0].start < early[2].start, "the late tenant does not wait behind the early one's backlog"


def test_a_rate_of_ten_a_second_holds_under_a_burst_of_two_hundred(server: Server, log: Path) -> None:
    # A worker process started first: the burst's first invocations would otherwise wait for
    # it together, and their handlers begin at one moment however their starts were spread.
    with Client(server.endpoint) as client:
        assert client.invoke("paced", {"n": -1})["Status"] == "SUCCEEDED"
    began = time.time()
    arns = start_all(server, "paced", [{"n": n} for n in range(200)])
    wait_for(lambda: [t for t in starts(log, "paced") if t >= began], timeout=30)
    first = next(t for t in starts(log, "paced") if t >= began)
    # Three seconds of the burst: enough to see the pace, without waiting for all 200.
    wait_for(lambda: starts(log, "paced")[-1] >= first + 3.0, timeout=30, interval=0.2)
    seen = [t for t in starts(log, "paced") if first <= t < first + 3.0]
    # A handler begins a little after its invocation starts, by a varying hand-off: one of slack.
    assert most_in_a_window(seen, 1.0) <= 11, seen
    assert 24 <= len(seen) <= 31, "about ten a second: held to the rate, not far below it"
    # The invocations' starts as the service recorded them hold the rate exactly.
    with Client(server.endpoint) as client:
        finished = [arn for arn in arns if client.get_execution(arn)["Status"] == "SUCCEEDED"]
        leased = sorted(
            event["InvocationCompletedDetails"]["StartTimestamp"]
            for arn in finished
            for event in client.history(arn)
            if event["EventType"] == "InvocationCompleted"
        )
    assert len(leased) >= 24
    assert most_in_a_window(leased, 1.0) <= 10, leased
    # The rest wait, ready; none failed for the limit.
    assert set(statuses(server, "paced")) <= {"RUNNING", "SUCCEEDED"}


def test_a_reserved_concurrency_set_through_the_api_holds_until_deleted(server: Server, log: Path) -> None:
    lam = lambda_client(server.endpoint)
    assert lam.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 3
    assert lam.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=1)["ReservedConcurrentExecutions"] == 1
    try:
        assert lam.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 1
        start_all(server, "capped", [{"n": 1000 + n, "seconds": 0.1} for n in range(8)])
        wait_for(lambda: len([r for r in runs(log, "capped") if r.n >= 1000]) == 8, timeout=60, interval=0.3)
        assert most_at_once([r for r in runs(log, "capped") if r.n >= 1000]) == 1
    finally:
        lam.delete_function_concurrency(FunctionName="capped")
    assert lam.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 3, "the code's again"
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="paced")


def test_concurrency_routes_refuse_what_they_cannot_use(server: Server) -> None:
    lam = lambda_client(server.endpoint)
    # boto3 checks the minimum itself: what other clients may send is sent by hand.
    for bad in (-1, "3", 2_000_000, None):
        reply = httpx.put(f"{server.endpoint}/2017-10-31/functions/capped/concurrency", json={"ReservedConcurrentExecutions": bad})
        assert reply.status_code == 400, reply.text
        assert reply.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
        assert "ReservedConcurrentExecutions must be" in reply.json()["message"], reply.text
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="whole function"):
        lam.put_function_concurrency(FunctionName="capped:live", ReservedConcurrentExecutions=2)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_concurrency(FunctionName="nowhere")
    assert lam.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 3


def test_a_template_reserved_concurrency_holds_across_workers_on_postgres(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create_database(f"limits_{uuid.uuid4().hex[:8]}")
    log = tmp_path / "side-effects.log"
    cluster = Cluster(tmp_path, url, log)
    template = ["--template", str(HANDLERS / "limited.yaml")]
    try:
        api = cluster.serve_api(*template)
        for _ in range(2):
            cluster.add_worker(*template, workers=2)
        start_all(api, "reserved", [{"n": n} for n in range(30)])
        wait_for(lambda: len(runs(log, "reserved")) == 30, timeout=90, interval=0.5)
        assert statuses(api, "reserved") == {"SUCCEEDED": 30}
    finally:
        cluster.stop()
    done = runs(log, "reserved")
    assert most_at_once(done) == 3, "3 at once across two workers' four processes, never more"
