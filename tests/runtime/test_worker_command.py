"""`perdure worker` runs executions that `perdure serve --no-workers` starts, and stops cleanly."""

from __future__ import annotations

import json
import signal
import statistics
import uuid
from pathlib import Path

import pytest
from cluster import Cluster, Worker
from servers import HANDLERS, wait_for
from pg_server import PostgresServer

from perdure.client import Client

SCALE = HANDLERS / "scale.py"


def _target(name: str) -> str:
    return f"{name}={SCALE}:{name}"


def test_worker_runs_at_once_an_execution_started_through_another_process_on_postgres(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"pickup_{uuid.uuid4().hex[:8]}")
    cluster = Cluster(tmp_path, url, tmp_path / "side-effects.log")
    try:
        api = cluster.serve_api(_target("quick"))
        cluster.add_worker(_target("quick"), workers=1)
        latencies = []
        with Client(api.endpoint) as client:
            # The first invocation starts the worker's process; the others find it warm.
            for i in range(6):
                arn = client.invoke("quick", {"n": i}, wait=False)["DurableExecutionArn"]
                ended = wait_for(lambda: (e := client.get_execution(arn))["Status"] != "RUNNING" and e, timeout=30)
                assert ended["Status"] == "SUCCEEDED", ended  # type: ignore[index]
                # Both ends are stamped by the database's writers: the API when it started the
                # execution, the worker when it recorded the result.
                latencies.append(ended["EndTimestamp"] - ended["StartTimestamp"])  # type: ignore[index]
    finally:
        cluster.stop()
    warm = latencies[1:]
    # Polling once a second would put these anywhere from 0 to 1 s; NOTIFY wakes the worker
    # within a round trip, and running the execution takes a few milliseconds more.
    assert max(warm) < 0.5, warm
    assert statistics.median(warm) < 0.2, warm


def test_worker_stops_on_sigterm_once_its_running_invocation_finishes(tmp_path: Path) -> None:
    log = tmp_path / "side-effects.log"
    cluster = Cluster(tmp_path, f"sqlite:///{tmp_path / 'perdure.db'}", log)
    try:
        api = cluster.serve_api(_target("slow"))
        worker = cluster.add_worker(_target("slow"), workers=1)
        with Client(api.endpoint) as client:
            arn = client.invoke("slow", {"id": "nap-1", "seconds": 2}, wait=False)["DurableExecutionArn"]
            wait_for(lambda: log.exists() and "nap-started" in log.read_text())
            worker.signal(signal.SIGTERM)
            assert worker.process is not None
            assert worker.process.wait(20) == 0, worker.output()
            execution = client.get_execution(arn)
    finally:
        cluster.stop()
    assert "Received SIGTERM" in worker.output()
    assert "nap-finished" in log.read_text()
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"]) == "rested"


def test_idle_worker_stops_at_once_on_sigint(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, f"sqlite:///{tmp_path / 'perdure.db'}", tmp_path / "side-effects.log")
    try:
        worker = cluster.add_worker(_target("quick"))
        worker.signal(signal.SIGINT)
        assert worker.process is not None
        assert worker.process.wait(5) == 0, worker.output()
    finally:
        cluster.stop()
    assert "Received SIGINT" in worker.output()


SEED_APP = """
import perdure as durable

VERSION = "v1"


def send(callback_id):
    pass


@durable.function
def approval(ctx, event):
    answer = ctx.wait_for_callback(send)
    return {"answer": answer, "version": VERSION}


@durable.function
def other(ctx, event):
    return ctx.step(lambda: "ran")
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, list[str]]:
    """A database URL, and the blob options a worker in another folder needs to share its blobs."""
    if request.param == "sqlite":
        # Blobs live beside the database file, wherever the process runs.
        return f"sqlite:///{tmp_path / 'db' / 'perdure.db'}", []
    server: PostgresServer = request.getfixturevalue("postgres_server")
    # With PostgreSQL, every process is given the same blob store (S3 across machines); here,
    # the folder the API's process uses by default.
    return server.create_database(f"stored_{uuid.uuid4().hex[:8]}"), ["--blobs", str(tmp_path / ".perdure" / "blobs")]


def test_a_worker_given_no_code_runs_every_version_of_the_functions_it_is_given_from_the_database(
    tmp_path: Path, database: tuple[str, list[str]]
) -> None:
    code, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    code.mkdir()
    elsewhere.mkdir()
    (code / "app.py").write_text(SEED_APP)
    db_url, blob_options = database
    cluster = Cluster(tmp_path, db_url, tmp_path / "side-effects.log")
    picked = ["--function", "approval", "--function", "ghost", *blob_options]
    worker = Worker(picked, cluster.db_url, elsewhere, cluster.env, 0, workers=1)
    try:
        api = cluster.serve_api(str(code / "app.py"))
        worker.start()
        with Client(api.endpoint) as client:
            # Ready before the others, so a worker that served it would run it first.
            not_served = client.invoke("other", {}, wait=False)["DurableExecutionArn"]
            first = client.invoke("approval", {}, wait=False)["DurableExecutionArn"]
            first_callback = wait_for(lambda: open_callback(client, first), timeout=30)
            api.stop()
            (code / "app.py").write_text(SEED_APP.replace('"v1"', '"v2"'))
            api.start()
            second = client.invoke("approval", {}, wait=False)["DurableExecutionArn"]
            second_callback = wait_for(lambda: open_callback(client, second), timeout=30)
            for callback_id in (first_callback, second_callback):
                client.succeed_callback(str(callback_id), "yes")
            results = [wait_for(lambda arn=arn: client.get_execution(arn).get("Result"), timeout=30) for arn in (first, second)]
            other_events = [event["EventType"] for event in client.history(not_served)]
    finally:
        worker.stop()
        cluster.stop()
    assert [json.loads(result) for result in results] == [{"answer": "yes", "version": "v1"}, {"answer": "yes", "version": "v2"}]
    assert other_events == ["ExecutionStarted"]
    assert "No version of 'ghost' is in the database yet" in worker.output()
    assert not (elsewhere / "app.py").exists()


def open_callback(client: Client, arn: str) -> str | None:
    events = client.history(arn)
    started = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
    return started[-1] if started else None
