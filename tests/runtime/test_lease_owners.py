"""Lease owners name their process: a dead one's leases are taken back at once, a live one's never.

A dead owner is reported once, however long its leases wait for a server that serves them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servers import handler_target, wait_for

from perdure.runtime.leases import lease_owner_id, owner_is_dead
from perdure.runtime.scheduler import DEAD_OWNER_CHECK_SECONDS
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore

_PRINT_OWNER = "import sys; from perdure.runtime.leases import lease_owner_id; print(lease_owner_id(), flush=True); sys.stdin.read()"


@contextmanager
def _other_process() -> Iterator[tuple[str, Callable[[], None]]]:
    """A live process's lease owner ID, and a function that ends the process."""
    command = [sys.executable, "-c", _PRINT_OWNER]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdin is not None
        stdin = child.stdin

        def end() -> None:
            stdin.close()
            child.wait(30)

        yield child.stdout.readline().strip(), end


def test_an_owner_is_dead_once_its_process_has_exited() -> None:
    with _other_process() as (owner, end):
        assert not owner_is_dead(owner)
        end()
        assert owner_is_dead(owner)


def test_a_later_process_given_the_same_pid_does_not_keep_the_dead_owners_leases() -> None:
    host, pid, started, token = lease_owner_id().split(":")
    assert pid == str(os.getpid())
    assert not owner_is_dead(f"{host}:{pid}:{started}:{token}")
    if started != "-":  # where the system tells when a process started
        assert owner_is_dead(f"{host}:{pid}:{int(started) - 1}:{token}")


def test_owners_on_other_hosts_or_unreadable_count_as_alive() -> None:
    assert not owner_is_dead("another-host.example:1:100:abcd")
    assert not owner_is_dead("not an owner")


def test_only_the_dead_owners_leases_are_expired(service: DurableService) -> None:
    service.start_execution(StartRequest("orders", execution_name="mine"))
    service.start_execution(StartRequest("orders", execution_name="theirs"))
    with _other_process() as (dying, end):
        (held,) = service.lease(lease_owner_id(), ["orders"], 1, 30)
        (lost,) = service.lease(dying, ["orders"], 1, 30)
        end()

    assert service.expire_leases(owner_is_dead) == [dying]
    # Taken over by the same lease call that records the loss, without waiting out 30 s.
    (resumed,) = service.lease("next", ["orders"], 5, 30)
    assert resumed.execution_arn == lost.execution_arn
    assert resumed.execution_arn != held.execution_arn


def test_a_dead_owner_is_reported_once_while_its_leases_wait(serve: Any, tmp_path: Path) -> None:
    # The server serves "flow" only, so the dead owner's "orders" execution stays leased to it
    # (its lease lapsed) until a server of "orders" takes it: the owner is found dead once.
    server = serve(handler_target("flow", "steps"))
    service = DurableService(SQLiteStore(tmp_path / "perdure.db"))
    service.start_execution(StartRequest("orders", execution_name="orphan"))
    with _other_process() as (dying, end):
        service.lease(dying, ["orders"], 1, 3600)
        end()
    service.store.close()

    def reports() -> int:
        return server.log.read_text().count(f"Lease owner {dying} is gone")

    wait_for(reports)
    time.sleep(DEAD_OWNER_CHECK_SECONDS * 2.5)
    assert reports() == 1
