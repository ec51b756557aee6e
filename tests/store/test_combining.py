"""Combined writes on SQLite: transactions handed over as functions at once run together, safely.

Every test runs on a real database file and checks what is durable by reading it back through a
connection of its own, as another process would.
"""

from __future__ import annotations

import contextvars
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from servers import wait_for
from store_backends import execution, operation

from perdure.store.base import Transaction
from perdure.store.group_commit import GroupCommitError
from perdure.store.sqlite import SQLiteStore
from perdure.telemetry import metrics
from perdure.telemetry.metrics import REGISTRY, record

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


class Boom(Exception):
    pass


def stored_ids(path: Path) -> set[str]:
    """The execution IDs committed to the database, read through a bare read-only connection."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM executions")}
    finally:
        conn.close()


class Queued:
    """Runs a first function that holds the connection until the others are queued behind it, in order.

    The queue is the store's combiner's, which it does not expose: its length is read from
    ``SQLiteStore._combiner._queue``, as ``test_group_commit`` reads the connection lock.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._holding = threading.Event()
        self._behind = 0

    def hold(self) -> None:
        """Called inside the first function: returns once the others wait behind it."""
        self._holding.set()
        wait_for(lambda: len(self._store._combiner._queue) >= self._behind, timeout=10, interval=0.001)

    def run(self, first: Callable[[], object], *others: Callable[[], object]) -> tuple[dict[int, object], dict[int, BaseException]]:
        """Runs each in a thread of its own, ``others`` once ``first`` holds; returns (results, errors) by index."""
        self._behind = len(others)
        results: dict[int, object] = {}
        errors: dict[int, BaseException] = {}

        def guarded(index: int, target: Callable[[], object]) -> None:
            if index > 0:
                assert self._holding.wait(10), "the first function never called hold()"
                # Queued in the order given: each once those before it wait behind the first.
                wait_for(lambda: len(self._store._combiner._queue) >= index - 1, timeout=10, interval=0.001)
            try:
                results[index] = target()
            except BaseException as error:  # noqa: BLE001 - reported to the test
                errors[index] = error

        threads = [threading.Thread(target=guarded, args=(i, t)) for i, t in enumerate([first, *others])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive()
        return results, errors


def inserting(store: SQLiteStore, execution_id: str, then: Callable[[Transaction], None] | None = None) -> Callable[[], object]:
    """A caller that inserts an execution with one operation in a combined transaction, and says what it saw."""

    def body(tx: Transaction) -> tuple[str, str, str]:
        tx.insert_execution(execution(execution_id))
        tx.put_operations(execution_id, [operation("1", 1)])
        if then is not None:
            then(tx)
        return execution_id, threading.current_thread().name, CALLER.get()

    def call() -> object:
        CALLER.set(f"caller of {execution_id}")
        return store.run_transaction(body)

    return call


def test_functions_handed_over_at_once_share_a_commit_and_each_returns_its_own_result_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = Queued(store)
    committed_at_return: dict[str, bool] = {}

    def acknowledged(execution_id: str, hold: bool = False) -> Callable[[], object]:
        call = inserting(store, execution_id, (lambda tx: queue.hold()) if hold else None)

        def run() -> object:
            result = call()
            committed_at_return[execution_id] = execution_id in stored_ids(path)
            return result

        return run

    before = store.commit_counts()
    results, errors = queue.run(*(acknowledged(name, hold=name == "a") for name in ("a", "b", "c", "d", "e")))
    after = store.commit_counts()
    store.close()

    assert errors == {}
    assert committed_at_return == dict.fromkeys("abcde", True)
    assert stored_ids(path) == set("abcde")
    # Each caller got its own function's result, run in a copy of its own context.
    for index, name in enumerate("abcde"):
        returned_id, _, caller = results[index]  # type: ignore[misc]
        assert (returned_id, caller) == (name, f"caller of {name}")
    # b to e queued behind a: they ran together, on one thread, in one commit after a's.
    threads = {results[index][1] for index in range(1, 5)}  # type: ignore[index]
    assert len(threads) == 1
    assert after.transactions - before.transactions == 5
    assert after.commits - before.commits == 2


def test_a_function_that_raises_keeps_nothing_while_the_others_of_its_transaction_commit(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = Queued(store)

    def boom(tx: Transaction) -> None:
        raise Boom("bad")

    def boom_before_writing(tx: Transaction) -> None:
        raise Boom("before writing")

    _, errors = queue.run(
        inserting(store, "a", lambda tx: queue.hold()),
        inserting(store, "b"),
        inserting(store, "bad", boom),
        lambda: store.run_transaction(boom_before_writing),
        inserting(store, "d"),
    )
    store.close()

    assert set(errors) == {2, 3} and all(isinstance(errors[n], Boom) for n in (2, 3))
    assert stored_ids(path) == {"a", "b", "d"}
    with SQLiteStore(path).snapshot() as tx:
        assert tx.get_operations("bad", ["1"]) == {}
        assert set(tx.get_operations("d", ["1"])) == {"1"}


def retries(function: str) -> float:
    return REGISTRY.get_sample_value("perdure_retries_total", {"function": function, "kind": "step"}) or 0.0


def test_a_function_that_fails_after_writing_is_undone_and_those_before_it_run_again_recording_once(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = Queued(store)
    ran: list[str] = []

    def counted(name: str, then: Callable[[Transaction], None] | None = None) -> Callable[[], object]:
        def body(tx: Transaction) -> None:
            ran.append(name)
            # Telemetry a transaction records: held back until its writes are committed.
            record(metrics.RETRIES, (f"combined-{tmp_path.name}-{name}", "step"))
            if then is not None:
                then(tx)

        return inserting(store, name, body)

    def writes_then_fails(tx: Transaction) -> None:
        raise Boom("after writing")

    _, errors = queue.run(
        counted("a", lambda tx: queue.hold()),
        counted("b"),
        counted("c"),
        counted("failing", writes_then_fails),
        counted("e"),
    )
    store.close()

    assert set(errors) == {3} and isinstance(errors[3], Boom)
    assert stored_ids(path) == {"a", "b", "c", "e"}
    # b and c ran before the failing one in its transaction, were undone with its writes and
    # ran again; e, after it, ran once.
    assert ran == ["a", "b", "c", "failing", "b", "c", "e"]
    # Each committed function's telemetry is recorded once; the failing one's, whose writes
    # were undone, not at all.
    assert [retries(f"combined-{tmp_path.name}-{name}") for name in ("a", "b", "c", "failing", "e")] == [1, 1, 1, 0, 1]


def test_when_sqlite_rolls_back_a_whole_transaction_the_others_run_again(tmp_path: Path) -> None:
    # SQLite rolls a whole transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR).
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = Queued(store)

    def rolled_back(tx: Transaction) -> None:
        store._conn.execute("ROLLBACK")  # what SQLite did on the error raised next
        raise Boom("disk I/O error")

    _, errors = queue.run(
        inserting(store, "a", lambda tx: queue.hold()),
        inserting(store, "b"),
        inserting(store, "failing", rolled_back),
        inserting(store, "d"),
    )
    store.close()

    assert set(errors) == {2} and isinstance(errors[2], Boom)
    assert stored_ids(path) == {"a", "b", "d"}


def test_a_commit_that_fails_fails_every_function_whose_writes_it_held(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)
    queue = Queued(store)

    def orphan(tx: Transaction) -> None:
        # An operation of no execution: with foreign keys checked at commit, the commit fails.
        store._conn.execute("PRAGMA defer_foreign_keys = ON")
        tx.put_operations("no-such-execution", [operation("1", 1)])

    _, errors = queue.run(
        inserting(store, "a", lambda tx: queue.hold()),
        inserting(store, "b"),
        inserting(store, "c", orphan),
        inserting(store, "d"),
    )
    store.close()

    assert set(errors) == {1, 2, 3}
    assert all(isinstance(error, GroupCommitError) for error in errors.values())
    assert "FOREIGN KEY" in str(errors[1])
    assert stored_ids(path) == {"a"}


def test_a_function_alone_commits_by_itself_and_its_error_leaves_the_next_unharmed(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    store = SQLiteStore(path)

    def boom(tx: Transaction) -> None:
        raise Boom("bad")

    try:
        inserting(store, "bad", boom)()
    except Boom:
        pass
    else:
        raise AssertionError("the function's error was not raised")
    assert inserting(store, "good")()[0] == "good"  # type: ignore[index]
    store.close()
    assert stored_ids(path) == {"good"}
