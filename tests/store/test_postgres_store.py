"""What only the PostgreSQL store does: row locks between processes, migrations, NOTIFY."""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_backends import (
    INLINE_LIMIT,
    NOW,
    PostgresServer,
    execution,
    insert,
    operation,
)

from perdure.errors import PerdureError
from perdure.protocol.records import (
    ExecutionStatus,
    InvocationOutput,
    InvocationStatus,
    OperationUpdate,
)
from perdure.protocol.timers import Timer, TimerKind
from perdure.service.executions import DurableService, StartRequest
from perdure.store import open_store
from perdure.store.blobs import BlobConfig, FileBlobStore
from perdure.store.pg_settings import PostgresSettings
from perdure.store.postgres import PostgresStore


@pytest.fixture
def open_pg(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., PostgresStore]]:
    """Opens more stores on the test database (each with its own pool, like another process)."""
    opened: list[PostgresStore] = []

    def open_one(url: str = postgres_url, **options: Any) -> PostgresStore:
        options.setdefault("blobs", FileBlobStore(tmp_path / "blobs"))
        options.setdefault("inline_limit", INLINE_LIMIT)
        store = PostgresStore(url, **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def in_threads(count: int, work: Callable[[int], Any], timeout: float = 60) -> list[Any]:
    """Runs ``work(i)`` in ``count`` threads; returns the results, or raises the first error."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread is stuck (a lock never released?)"
    if errors:
        raise errors[0]
    return results


class FixedClock:
    def __call__(self) -> float:
        return NOW


# -- leasing and timers between processes ---------------------------------------------------


def test_concurrent_transactions_never_get_the_same_ready_execution(open_pg: Callable[..., PostgresStore]) -> None:
    stores = [open_pg(), open_pg()]
    insert(stores[0], *[execution(f"e{i:02d}", ready_time=NOW - i) for i in range(20)])
    both_read = threading.Barrier(2, timeout=30)

    def lease(index: int) -> list[str]:
        with stores[index].transaction() as tx:
            ready = [e.id for e in tx.ready_executions(NOW, 10, ["orders"])]
            both_read.wait()  # hold the row locks until the other transaction has read too
            return ready

    first, second = in_threads(2, lease)
    assert len(first) == len(second) == 10
    assert set(first).isdisjoint(second)


def test_processes_leasing_at_once_each_get_different_executions(open_pg: Callable[..., PostgresStore]) -> None:
    services = [DurableService(open_pg(), clock=FixedClock()) for _ in range(4)]
    for i in range(40):
        services[0].start_execution(StartRequest("orders", None, execution_name=f"o-{i}"))

    def lease_all(index: int) -> list[str]:
        leased: list[str] = []
        while batch := services[index].lease(f"owner-{index}", ["orders"], 3, 300):
            leased.extend(invocation.execution_arn for invocation in batch)
        return leased

    results = in_threads(4, lease_all)
    every = [arn for leased in results for arn in leased]
    assert len(every) == 40 and len(set(every)) == 40


def test_a_locked_execution_is_skipped_by_leasing_and_timers_rather_than_waited_for(
    open_pg: Callable[..., PostgresStore],
) -> None:
    holder, other = open_pg(), open_pg()
    insert(holder, execution("busy", ready_time=NOW), execution("free", ready_time=NOW))
    with holder.transaction() as tx:
        for execution_id in ("busy", "free"):
            tx.set_timer(Timer(execution_id, "w", TimerKind.WAIT, NOW))
    with holder.transaction() as held:
        assert held.get_execution_by_id("busy") is not None  # a checkpoint in progress
        started = time.monotonic()
        with other.transaction() as tx:
            assert [e.id for e in tx.ready_executions(NOW, 10, ["orders"])] == ["free"]
            assert [t.execution_id for t in tx.due_timers(NOW, 10)] == ["free"]
        assert time.monotonic() - started < 2
    with other.transaction() as tx:
        assert [t.execution_id for t in tx.due_timers(NOW, 10)] == ["busy", "free"]


def test_firing_timers_never_deadlocks_with_a_checkpoint_that_moves_them(
    open_pg: Callable[..., PostgresStore],
) -> None:
    # A checkpoint locks its execution, then moves the execution's timers; a timer pass that
    # locked the timers first and then wanted the execution would deadlock with it.
    checkpointer, firer = open_pg(), open_pg()
    insert(checkpointer, execution("e1"))
    with checkpointer.transaction() as tx:
        tx.set_timer(Timer("e1", "c", TimerKind.CALLBACK_HEARTBEAT, NOW))
    locked = threading.Event()
    fired = threading.Event()

    def checkpoint(_: int) -> None:
        with checkpointer.transaction() as tx:
            assert tx.get_execution_by_id("e1") is not None
            locked.set()
            fired.wait(10)
            tx.set_timer(Timer("e1", "c", TimerKind.CALLBACK_HEARTBEAT, NOW + 10))

    def fire(_: int) -> list[Timer]:
        locked.wait(10)
        with firer.transaction() as tx:
            due = tx.due_timers(NOW, 10)
            for timer in due:
                tx.get_execution_by_id(timer.execution_id)
                tx.delete_timer(timer)
        fired.set()
        return due

    results = in_threads(2, lambda i: checkpoint(i) if i == 0 else fire(i))
    assert results[1] == []
    with firer.snapshot() as tx:
        assert tx.due_timers(NOW + 10, 10) == [Timer("e1", "c", TimerKind.CALLBACK_HEARTBEAT, NOW + 10)]


def test_concurrent_timer_passes_fire_each_timer_once(open_pg: Callable[..., PostgresStore]) -> None:
    stores = [open_pg(), open_pg()]
    insert(stores[0], *[execution(f"e{i:02d}") for i in range(10)])
    with stores[0].transaction() as tx:
        for i in range(10):
            tx.set_timer(Timer(f"e{i:02d}", "w", TimerKind.WAIT, NOW - i))
    both_read = threading.Barrier(2, timeout=30)

    def fire(index: int) -> list[str]:
        with stores[index].transaction() as tx:
            due = tx.due_timers(NOW, 100)
            both_read.wait()
            for timer in due:
                tx.delete_timer(timer)
            return [t.execution_id for t in due]

    first, second = in_threads(2, fire)
    assert set(first).isdisjoint(second) and len(first) + len(second) == 10


# -- starting, reading while writing --------------------------------------------------------


def test_two_starts_of_one_name_at_once_create_one_execution(open_pg: Callable[..., PostgresStore]) -> None:
    services = [DurableService(open_pg(), clock=FixedClock()) for _ in range(4)]
    go = threading.Barrier(4, timeout=30)

    def start(index: int) -> tuple[str, bool]:
        go.wait()
        result = services[index].start_execution(StartRequest("orders", '{"n": 1}', execution_name="once"))
        return result.execution.arn, result.created

    results = in_threads(4, start)
    assert len({arn for arn, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]


def test_a_second_start_of_a_name_waits_for_the_first_and_then_finds_it(
    open_pg: Callable[..., PostgresStore],
) -> None:
    first, second = open_pg(), open_pg()
    found: list[object] = []
    with first.transaction() as tx:
        assert tx.find_execution("orders", "once") is None
        tx.insert_execution(execution("e1", name="once"))
        waiter = threading.Thread(target=lambda: found.append(_find(second, "once")))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive(), "the second lookup should wait for the first start to commit"
    waiter.join(10)
    assert found == ["e1"]


def _find(store: PostgresStore, name: str) -> str | None:
    with store.transaction() as tx:
        existing = tx.find_execution("orders", name)
        return existing.id if existing else None


def test_a_snapshot_is_consistent_and_does_not_wait_for_writers(open_pg: Callable[..., PostgresStore]) -> None:
    reader, writer = open_pg(), open_pg()
    insert(writer, execution("e1"))
    with reader.snapshot() as snap:
        assert snap.get_execution_by_id("e1") == execution("e1")
        with writer.transaction() as tx:
            current = tx.get_execution_by_id("e1")  # locked by the writer
            assert current is not None
            tx.update_execution(current.evolve(version=5))
            with reader.snapshot() as during:  # does not wait for the lock
                assert during.get_execution_by_id("e1") == execution("e1")
        # Committed now, but this snapshot keeps the view it started with.
        assert snap.get_execution_by_id("e1") == execution("e1")
    with reader.snapshot() as after:
        assert after.get_execution_by_id("e1") == execution("e1", version=5)


# -- migrations -----------------------------------------------------------------------------


def test_processes_starting_at_once_on_a_new_database_migrate_it_once(
    postgres_server: PostgresServer, open_pg: Callable[..., PostgresStore]
) -> None:
    url = postgres_server.create_database(f"fresh_{time.monotonic_ns()}")
    go = threading.Barrier(3, timeout=30)

    def open_at_once(_: int) -> None:
        go.wait()
        open_pg(url)

    in_threads(3, open_at_once)
    open_pg(url)  # reopening finds nothing to do
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version FROM perdure_schema_version ORDER BY version").fetchall()
    scripts = resources.files("perdure.store.pg_schema").iterdir()
    shipped = sorted(int(f.name.split("_", 1)[0]) for f in scripts if f.name.endswith(".sql"))
    assert versions == [(n,) for n in shipped] and len(shipped) >= 2
    store = open_pg(url)
    insert(store, execution("e1"))
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == execution("e1")


# -- wake-ups -------------------------------------------------------------------------------


def test_listeners_are_woken_by_commits_that_make_work_ready(open_pg: Callable[..., PostgresStore]) -> None:
    listener, writer = open_pg(), open_pg()
    assert listener.listen(0) is True  # subscribing: anything may have been missed before
    assert listener.listen(0.05) is False
    insert(writer, execution("e1", ready_time=NOW))
    assert listener.listen(5) is True
    assert listener.listen(0.05) is False

    with pytest.raises(RuntimeError), writer.transaction() as tx:
        tx.set_timer(Timer("e1", "w", TimerKind.WAIT, NOW))
        raise RuntimeError("rolled back")
    with writer.snapshot() as tx:
        tx.ready_executions(NOW, 10, ["orders"])
    with writer.transaction() as tx:
        tx.get_execution_by_id("e1")
    assert listener.listen(0.1) is False

    with writer.transaction() as tx:
        tx.set_timer(Timer("e1", "w", TimerKind.WAIT, NOW))
    assert listener.listen(5) is True


# -- opening --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_store_opens_postgresql_urls(postgres_url: str, tmp_path: Path, scheme: str) -> None:
    url = postgres_url.replace("postgresql://", f"{scheme}://", 1)
    store = open_store(url, BlobConfig(str(tmp_path / "blobs")))
    try:
        assert isinstance(store, PostgresStore)
        with store.snapshot() as tx:
            assert tx.next_wakeup() is None
    finally:
        store.close()


def test_an_unreachable_database_is_a_clear_error_without_the_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.url().replace("perdure@", "perdure:s3cret@").replace(
        f":{postgres_server.port}/", f":{_closed_port()}/"
    )
    started = time.monotonic()
    with pytest.raises(PerdureError, match="Cannot connect to the PostgreSQL database perdure@127.0.0.1") as caught:
        PostgresStore(url, settings=PostgresSettings(connect_timeout=5))
    assert "s3cret" not in str(caught.value)
    assert time.monotonic() - started < 5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_finished_executions_keep_their_status_after_a_restart(open_pg: Callable[..., PostgresStore]) -> None:
    service = DurableService(open_pg(), clock=FixedClock())
    started = service.start_execution(StartRequest("orders", None, execution_name="o-1"))
    service.stop_execution(started.execution.arn)
    restarted = DurableService(open_pg(), clock=FixedClock())
    assert restarted.get_execution(started.execution.arn).status is ExecutionStatus.STOPPED


def test_connections_the_server_dropped_are_replaced_without_failing_a_transaction(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    insert(pg_store, execution("e1"))
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        terminated = [
            row[0]
            for row in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (terminated,))
        # Dropped: the server has closed them (pg_terminate_backend only asks a backend to end).
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (terminated,)).fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    with pg_store.transaction() as tx:
        assert tx.get_execution_by_id("e1") == execution("e1")
    with pg_store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == execution("e1")


def test_a_listener_that_lost_its_connection_says_so_and_subscribes_again(
    open_pg: Callable[..., PostgresStore], postgres_url: str
) -> None:
    listener, writer = open_pg(), open_pg()
    assert listener.listen(0) is True
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    started = time.monotonic()
    assert listener.listen(5) is True  # the lost connection: something may have been missed
    assert listener.listen(5) is True  # subscribed again
    assert time.monotonic() - started < 4
    assert listener.listen(0.05) is False
    insert(writer, execution("e1", ready_time=NOW))
    assert listener.listen(5) is True


def test_processes_leasing_checkpointing_firing_timers_and_completing_callbacks_at_once_never_deadlock(
    open_pg: Callable[..., PostgresStore],
) -> None:
    # A bounded mixed workload on three stores (three "processes"): any deadlock or lock
    # timeout shows up as a database error in one of the threads.
    clock = SteppingClock()
    services = [DurableService(open_pg(settings=PostgresSettings(pool_size=3)), clock=clock) for _ in range(3)]
    callbacks: queue.Queue[str] = queue.Queue()
    deadline = time.monotonic() + 1.5
    counts = {"leased": 0, "fired": 0, "completed": 0}

    def loop(step: Callable[[DurableService, random.Random], None]) -> Callable[[int], None]:
        def run(index: int) -> None:
            rng = random.Random(index)
            while time.monotonic() < deadline:
                try:
                    step(services[index % 3], rng)
                except PerdureError:
                    pass  # a stale token or a callback completed twice: the service's own refusals

        return run

    def work(service: DurableService, rng: random.Random) -> None:
        service.start_execution(StartRequest("orders", None, execution_name=f"o-{rng.randrange(60)}"))
        for invocation in service.lease(f"worker-{rng.randrange(3)}", ["orders"], 2, 30):
            counts["leased"] += 1
            kind = rng.randrange(3)
            n = rng.randrange(10**6)
            update = [
                {"Id": f"s{n}", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"},
                {"Id": f"w{n}", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}},
                {"Id": f"c{n}", "Type": "CALLBACK", "Action": "START",
                 "CallbackOptions": {"TimeoutSeconds": 4, "HeartbeatTimeoutSeconds": 2}},
            ][kind]  # fmt: skip
            reply = service.checkpoint(
                invocation.execution_arn, invocation.checkpoint_token, [OperationUpdate.from_wire(update)]
            )
            for op in reply.operations:
                if op.callback_id:
                    callbacks.put(op.callback_id)
            status = InvocationStatus.SUCCEEDED if kind == 0 else InvocationStatus.PENDING
            service.complete_invocation(invocation, InvocationOutput(status, result="1" if kind == 0 else None))

    def fire(service: DurableService, rng: random.Random) -> None:
        clock.advance(0.25)
        counts["fired"] += service.fire_due_timers()
        service.expire_leases(lambda owner: owner == "worker-2" and rng.random() < 0.1)

    def complete(service: DurableService, rng: random.Random) -> None:
        try:
            callback_id = callbacks.get(timeout=0.05)
        except queue.Empty:
            return
        if rng.random() < 0.5:
            service.heartbeat_callback(callback_id)
            callbacks.put(callback_id)
        else:
            service.succeed_callback(callback_id, "1")
            counts["completed"] += 1

    steps = [work, work, work, work, fire, fire, complete, complete]
    in_threads(len(steps), lambda i: loop(steps[i])(i), timeout=60)
    assert counts["leased"] > 0 and counts["fired"] > 0 and counts["completed"] > 0


class SteppingClock:
    """A clock the test moves forward from several threads."""

    def __init__(self) -> None:
        self.now = NOW
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def test_a_write_that_fails_in_a_pipelined_transaction_fails_the_transaction_and_keeps_none_of_it(
    pg_store: PostgresStore,
) -> None:
    # Writes are sent without waiting for their results: the error of one comes back with the
    # commit (or the next read), and the transaction still keeps nothing.
    insert(pg_store, execution("e1"))
    with pytest.raises(psycopg.errors.UniqueViolation), pg_store.transaction() as tx:
        tx.put_operations("e1", [operation("1", 1)])
        tx.insert_execution(execution("e1"))
    with pg_store.snapshot() as tx:
        assert tx.get_operations("e1", ["1"]) == {}
    with pytest.raises(psycopg.errors.UniqueViolation), pg_store.transaction() as tx:
        tx.insert_execution(execution("e1"))
        tx.put_operations("e1", [operation("1", 1)])
        tx.get_execution_by_id("e1")  # the read raises the write's error
        raise AssertionError("not reached")
    with pg_store.snapshot() as tx:
        assert tx.get_operations("e1", ["1"]) == {}
