"""Group commit on SQLite: write transactions that threads run at once share a commit, safely.

Every test runs on a real database file and checks what is durable by reading it back through
a second store (its own connection), as another process would.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import wait_for
from store_backends import execution, operation

from perdure.errors import CheckpointRejectedError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import Invocation, OperationAction, OperationType, OperationUpdate
from perdure.service.executions import DurableService, StartRequest
from perdure.store.base import Transaction
from perdure.store.group_commit import ConnectionLock, GroupCommitter
from perdure.store.sqlite import SQLiteStore


class Boom(Exception):
    pass


def stored_ids(path: Path) -> set[str]:
    """The execution IDs committed to the database, read through a connection of its own.

    A bare read-only connection: opening a store would wait for the write lock (to migrate),
    and so for whatever commit is pending.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM executions")}
    finally:
        conn.close()


def _ids(tx: Transaction) -> set[str]:
    return {e.id for e in tx.list_executions(ExecutionQuery(limit=1000)).executions}


def run_threads(*targets: Callable[[], None]) -> dict[int, BaseException]:
    """Runs each target in its own thread; returns the errors they raised, by index."""
    errors: dict[int, BaseException] = {}

    def guarded(index: int, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors[index] = error

    threads = [threading.Thread(target=guarded, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    return errors


class QueuedWriters:
    """Runs a first writer and others queued behind it: the others start once the first holds the
    connection, and the first lets go of it only once they all wait for it.

    They wait on the store's ``ConnectionLock``, whose ``waiting`` count is what group commit
    itself reads to leave a transaction open for those queued behind it. The store does not
    expose its lock, so it is read from ``SQLiteStore._lock``.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._lock: ConnectionLock = store._lock
        self._holding = threading.Event()
        self._behind = 0

    def hold(self) -> None:
        """Called inside the first writer's transaction: returns once the others wait for the connection."""
        self._holding.set()
        wait_for(lambda: self._lock.waiting >= self._behind, timeout=10, interval=0.001)

    def run(self, first: Callable[[], None], *others: Callable[[], None]) -> dict[int, BaseException]:
        """Runs ``first``, which calls ``hold()`` in its transaction, and ``others`` queued behind it."""
        self._behind = len(others)

        def later(target: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                assert self._holding.wait(10), "the first writer never called hold()"
                target()

            return run

        return run_threads(first, *(later(t) for t in others))


def test_concurrent_writers_share_commits_and_each_returns_committed(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = QueuedWriters(store)
    seen_at_return: dict[str, bool] = {}

    def writer(execution_id: str, hold: bool = False) -> Callable[[], None]:
        def run() -> None:
            with store.transaction() as tx:
                tx.insert_execution(execution(execution_id))
                tx.put_operations(execution_id, [operation("1", 1)])
                if hold:
                    queue.hold()
            # Acknowledged: another connection must see it now.
            seen_at_return[execution_id] = execution_id in stored_ids(path)

        return run

    before = store.commit_counts()
    errors = queue.run(writer("a", hold=True), writer("b"), writer("c"), writer("d"))
    after = store.commit_counts()
    store.close()

    assert errors == {}
    assert seen_at_return == {"a": True, "b": True, "c": True, "d": True}
    assert stored_ids(path) == {"a", "b", "c", "d"}
    assert after.transactions - before.transactions == 4
    # b, c and d queued behind a, so at least two of the four shared a commit.
    assert after.commits - before.commits < 4


def test_a_failing_writer_keeps_nothing_while_the_rest_of_its_group_commits(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = QueuedWriters(store)

    def writer(execution_id: str, hold: bool = False, fail: bool = False) -> Callable[[], None]:
        def run() -> None:
            with store.transaction() as tx:
                tx.insert_execution(execution(execution_id))
                tx.put_operations(execution_id, [operation("1", 1)])
                if hold:
                    queue.hold()
                if fail:
                    raise Boom(execution_id)

        return run

    errors = queue.run(writer("a", hold=True), writer("bad", fail=True), writer("c"), writer("d"))
    counts = store.commit_counts()
    store.close()

    assert set(errors) == {1} and isinstance(errors[1], Boom)
    assert stored_ids(path) == {"a", "c", "d"}
    assert counts.commits < counts.transactions + 1  # the three good ones did not each commit alone
    with SQLiteStore(path).snapshot() as tx:
        assert tx.get_operations("bad", ["1"]) == {}
        assert set(tx.get_operations("c", ["1"])) == {"1"}


def test_a_failing_first_writer_does_not_hold_up_those_queued_behind_it(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = QueuedWriters(store)

    def writer(execution_id: str, hold: bool = False, fail: bool = False) -> Callable[[], None]:
        def run() -> None:
            with store.transaction() as tx:
                tx.insert_execution(execution(execution_id))
                if hold:
                    queue.hold()
                if fail:
                    raise Boom(execution_id)

        return run

    errors = queue.run(writer("first", hold=True, fail=True), writer("b"), writer("c"))
    store.close()

    assert set(errors) == {0}
    assert stored_ids(path) == {"b", "c"}


def test_a_snapshot_never_sees_writes_that_are_not_committed(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = QueuedWriters(store)
    read: list[set[str]] = []

    def first() -> None:
        with store.transaction() as tx:
            tx.insert_execution(execution("a"))
            queue.hold()

    def reader() -> None:
        with store.snapshot() as tx:
            read.append(_ids(tx))
        # What the snapshot saw is durable: it was committed before the snapshot began.
        assert read[-1] <= stored_ids(path)

    errors = queue.run(first, reader)
    store.close()
    assert errors == {}
    assert read == [{"a"}]


def test_concurrent_checkpoints_are_all_durable_and_a_rejected_batch_leaves_the_others_whole(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(path))
    executions = 8
    steps = 25
    arns = [service.start_execution(StartRequest("fn", "{}")).execution.arn for _ in range(executions)]
    invocations = {i.execution_arn: i for i in service.lease("owner", ["fn"], executions, 600)}
    assert set(invocations) == set(arns)
    rejected: list[str] = []
    barrier = threading.Barrier(executions)

    def run(invocation: Invocation, bad_at: int | None) -> Callable[[], None]:
        def steps_in_turn() -> None:
            token = invocation.checkpoint_token
            barrier.wait(5)
            for n in range(1, steps + 1):
                step = str(n)
                updates = [
                    OperationUpdate(step, OperationType.STEP, OperationAction.START, name=f"step {n}"),
                    OperationUpdate(step, OperationType.STEP, OperationAction.SUCCEED, payload=str(n)),
                ]
                if n == bad_at:
                    # Succeeding step 1 again breaks a rule: the batch is refused, nothing of it kept.
                    updates.append(OperationUpdate("1", OperationType.STEP, OperationAction.SUCCEED, payload="again"))
                    with pytest.raises(CheckpointRejectedError):
                        service.checkpoint(invocation.execution_arn, token, updates)
                    rejected.append(invocation.execution_arn)
                    continue
                result = service.checkpoint(invocation.execution_arn, token, updates)
                assert result.checkpoint_token is not None
                token = result.checkpoint_token

        return steps_in_turn

    bad = arns[3]
    before = service.store.commit_counts()  # type: ignore[attr-defined]
    errors = run_threads(*(run(invocations[arn], 10 if arn == bad else None) for arn in arns))
    after = service.store.commit_counts()  # type: ignore[attr-defined]
    service.store.close()

    assert errors == {}
    assert rejected == [bad]
    reopened = DurableService(SQLiteStore(path))
    for arn in arns:
        execution_record = reopened.get_execution(arn)
        with reopened.store.snapshot() as tx:
            ops = tx.list_operations(execution_record.id, 0, 1000)
            events = tx.list_events(execution_record.id, 0, 1000, False)
        recorded = [op for op in ops if op.type is OperationType.STEP]
        expected = [n for n in range(1, steps + 1) if not (arn == bad and n == 10)]
        assert [op.result for op in recorded] == [str(n) for n in expected]
        assert all(op.status.value == "SUCCEEDED" for op in recorded)
        # Positions and event IDs run on without a gap: no batch was half kept.
        assert [op.position for op in ops] == list(range(1, len(ops) + 1))
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        assert len(events) == 1 + 2 * len(expected)
        assert execution_record.operation_count == len(ops)
    reopened.store.close()
    checkpoints = executions * steps
    assert after.transactions - before.transactions == checkpoints - 1
    assert after.commits - before.commits < checkpoints - 1


def test_a_failed_writer_whose_transaction_sqlite_already_rolled_back_sees_its_own_error(tmp_path: Path) -> None:
    # SQLite rolls a whole transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR):
    # the writer then raises its own error, not the ROLLBACK that finds nothing to undo.
    conn = sqlite3.connect(tmp_path / "plain.db", isolation_level=None, check_same_thread=False)
    groups = GroupCommitter(conn)
    membership = groups.begin()
    conn.execute("CREATE TABLE t (x)")
    conn.execute("ROLLBACK")  # what SQLite did on the error the writer is about to raise
    groups.finish(membership, failed=True)
    membership = groups.begin()
    conn.execute("CREATE TABLE t (x)")
    groups.finish(membership, failed=False)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    conn.close()
