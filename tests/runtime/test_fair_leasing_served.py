"""A function's backlog does not keep another function's execution waiting, on a real server (issue 14).

Measured by order, not by time: the handlers record when each step begins (tests/handlers/fair.py),
and the test counts how many executions of the backlog began between the urgent execution's
start and its first step. The rules, lease by lease, are in tests/service/test_fair_leasing.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import HANDLERS, Server, shared_server, wait_for

from perdure.client import Client

# One worker running 20 invocations at once: the pool's 20 places, against a backlog of 2,000.
PLACES = 20
BACKLOG = 2_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = [str(HANDLERS / "fair.py"), "--workers", "1", "--concurrency", str(PLACES)]
    with shared_server(tmp_path_factory, "fair", args) as server:
        yield server


def began(log: Path) -> list[str]:
    """The functions whose steps began, in order."""
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def test_an_execution_starts_promptly_beside_a_backlog_of_thousands(server: Server) -> None:
    log = Path(server.env["PERDURE_TEST_LOG"])
    with Client(server.endpoint) as client, ThreadPoolExecutor(8) as threads:
        list(threads.map(lambda n: client.invoke("bulk", {"n": n}, wait=False), range(BACKLOG)))
        wait_for(lambda: len(began(log)) >= PLACES, timeout=60)
        before = len(began(log))
        client.invoke("urgent", {"n": 0}, wait=False)
        wait_for(lambda: "urgent" in began(log), timeout=60, interval=0.1)
    order = began(log)
    passed = order.index("urgent") - before
    # Oldest ready first, it would wait for the whole backlog (about 2,000 steps, 50 s); shared
    # fairly, it takes the first place that frees, give or take the places freed at that moment.
    assert passed <= 2 * PLACES, f"{passed} executions of the backlog began before the urgent one"
