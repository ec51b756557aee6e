"""The writers of one SQLite file queue for its write lock in the kernel, across processes (``perdure.store.writer_lock``)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from store_backends import execution

from perdure.errors import StoreUnavailableError
from perdure.store import sqlite
from perdure.store.sqlite import SQLiteStore


def _held_elsewhere(database: Path) -> int:
    """Takes the writers' lock as another process would: through an open file of its own."""
    fd = os.open(f"{database}-writer", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _assert_free(database: Path) -> None:
    """Takes the writers' lock without waiting, as another process would, and lets it go: raises if it is held."""
    fd = os.open(f"{database}-writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def _in_thread(write: Callable[[], None]) -> threading.Event:
    done = threading.Event()

    def run() -> None:
        write()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_a_write_waits_for_the_lock_held_elsewhere_and_goes_on_once_it_is_let_go(tmp_path: Path) -> None:
    database = tmp_path / "perdure.db"
    store = SQLiteStore(database)
    try:
        fd = _held_elsewhere(database)

        def combined() -> None:
            store.run_transaction(lambda tx: tx.insert_execution(execution("combined")))

        waiting = [_in_thread(combined)]
        # The connection is held by the first write, waiting for the lock: the second waits behind it.
        waiting.append(_in_thread(lambda: _in_block(store, "block")))
        time.sleep(0.3)
        assert not any(done.is_set() for done in waiting), "a write did not wait for the writers' lock"
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        assert all(done.wait(10) for done in waiting)
        with store.snapshot() as tx:
            assert tx.get_execution(execution("block").arn) is not None
            assert tx.get_execution(execution("combined").arn) is not None
    finally:
        store.close()


def test_the_lock_is_let_go_when_a_transaction_ends_in_any_way(tmp_path: Path) -> None:
    database = tmp_path / "perdure.db"
    store = SQLiteStore(database)
    try:
        with store.transaction() as tx:
            tx.insert_execution(execution("a"))
        try:
            store.run_transaction(lambda tx: (tx.insert_execution(execution("b")), 1 / 0))
        except ZeroDivisionError:
            pass
        try:
            with store.transaction() as tx:
                tx.insert_execution(execution("a"))  # already there: the insert fails
        except Exception:  # noqa: BLE001 - any refusal will do
            pass
        # Free after each: another process takes it at once.
        _assert_free(database)
    finally:
        store.close()


def test_a_lock_held_elsewhere_past_the_busy_timeout_makes_the_store_unavailable_not_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a process stopped (SIGSTOP) in a write transaction would hold it; the wait is SQLite's
    # busy timeout, shortened here from its 30 s.
    monkeypatch.setattr(sqlite, "_BUSY_TIMEOUT_MS", 300)
    database = tmp_path / "perdure.db"
    store = SQLiteStore(database)
    try:
        fd = _held_elsewhere(database)
        for write in (
            lambda: store.run_transaction(lambda tx: tx.insert_execution(execution("combined"))),
            lambda: _in_block(store, "block"),
        ):
            began = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="held its write lock"):
                write()
            assert time.monotonic() - began < 10
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        # Let go: the writes that gave up left nothing behind, and the next ones go through (the
        # wait back at its own length, so that a loaded machine's slow thread switch fails nothing).
        monkeypatch.setattr(store._writer, "_wait_seconds", 30.0)
        _in_block(store, "after")
        store.run_transaction(lambda tx: tx.insert_execution(execution("combined")))
        with store.snapshot() as tx:
            assert tx.get_execution(execution("block").arn) is None
            assert tx.get_execution(execution("after").arn) is not None
        # And no lock is left held: another process takes it at once.
        _assert_free(database)
    finally:
        store.close()


def _in_block(store: SQLiteStore, execution_id: str) -> None:
    with store.transaction() as tx:
        tx.insert_execution(execution(execution_id))
