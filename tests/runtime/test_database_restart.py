"""PostgreSQL restarted (``pg_ctl restart``) under load: servers and workers reconnect, and nothing recorded runs again.

200 executions of several steps each run on a `perdure serve` (with its workers) and a
`perdure worker` sharing one PostgreSQL server of the test's own. Once about a third of their
steps have run, the server is restarted: every session ends, and for a moment none can be
opened. Checkpoints cut off by it are not acknowledged; the invocations they belonged to are
counted lost and run again from what was recorded. Every execution must end SUCCEEDED, no step
may run again once it was recorded SUCCEEDED, and the API must answer again.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cluster import Worker
from pg_server import PostgresServer, find_pg_bindir, start_server
from servers import HANDLERS, Server
from step_runs import check_no_recorded_step_ran_again, step_runs

from perdure.client import Client

TARGETS = [str(HANDLERS / "resilient.py"), f"aws_steps={HANDLERS / 'resilient.py'}:aws_steps"]
EXECUTIONS = 200
STEPS = 5
PAUSE = 0.5
RESTART_AFTER = 0.3  # of all step runs
DEADLINE_SECONDS = 150
pytestmark = pytest.mark.timeout(DEADLINE_SECONDS + 60)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone: restarting the session's would disturb the tests after it."""
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) were not found.")
    server = start_server(bindir)
    try:
        yield server
    finally:
        server.stop()


def _start_all(endpoint: str) -> None:
    """Starts the executions, half of each style; one the restart cuts off is started again (same name: once)."""
    with Client(endpoint) as client:
        for i in range(EXECUTIONS):
            function = "seed_steps" if i % 2 else "aws_steps"
            payload = {"id": f"e{i:03d}", "steps": STEPS, "pause": PAUSE}
            for _ in range(30):
                try:
                    client.invoke(function, payload, wait=False, name=f"e{i:03d}")
                    break
                except Exception:  # noqa: BLE001 - the database restarting: 503, or a reply cut off
                    time.sleep(1)


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


def test_200_executions_survive_a_database_restart_and_no_recorded_step_runs_again(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.create_database(f"restart_{uuid.uuid4().hex[:8]}")
    log = tmp_path / "steps.log"
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    server = Server(TARGETS, tmp_path, env, db_url=url)
    worker = Worker(TARGETS, url, tmp_path, env, 0, workers=1)
    try:
        server.start()
        worker.start()
        began = time.monotonic()
        # Started from a thread of their own, so that the restart comes at its share of the
        # steps however long the starts take.
        starter = threading.Thread(target=_start_all, args=(server.endpoint,))
        starter.start()
        with Client(server.endpoint) as client:
            while _lines(log) < RESTART_AFTER * EXECUTIONS * STEPS:
                assert time.monotonic() - began < 60, f"only {_lines(log)} steps ran before the restart was due"
                time.sleep(0.02)
            before = _lines(log)
            restarting = time.monotonic()
            own_postgres.restart()
            restarted = time.monotonic()

            starter.join()
            finished = 0
            while finished < EXECUTIONS:
                assert time.monotonic() - began < DEADLINE_SECONDS, f"only {finished} executions ended"
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute("SELECT count(*) FROM executions WHERE status <> 'RUNNING'").fetchone()
                finished = int(row[0]) if row else 0
                time.sleep(0.2)
            elapsed = time.monotonic() - began
            # The API's own connections were dropped too: it answers with new ones.
            after = client.invoke("seed_steps", {"id": "after", "steps": STEPS, "pause": 0}, name="after")
        assert after["Status"] == "SUCCEEDED", after
        with psycopg.connect(url, autocommit=True) as conn:
            rerun = check_no_recorded_step_ran_again(conn, step_runs(log), STEPS)
    finally:
        worker.stop()
        server.stop()

    # Only steps cut short by the restart ran again, once each.
    assert all(count == 2 for count in rerun.values()), rerun
    print(
        f"\n{EXECUTIONS} executions of {STEPS} steps; PostgreSQL restarted after {before} step runs "
        f"(down {restarted - restarting:.1f} s); all SUCCEEDED after {elapsed:.1f} s, "
        f"{len(rerun)} interrupted step(s) ran again"
    )
