"""``Store.wait_for_change``: PostgreSQL is told of commits elsewhere; SQLite polls its data version."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from store_backends import NOW, StoreFactory, execution, insert

from perdure.store.sqlite import SQLiteStore


def test_a_commit_that_makes_work_ready_in_another_store_ends_the_wait(open_test_store: StoreFactory) -> None:
    waiter, writer = open_test_store(), open_test_store()
    assert waiter.wait_for_change(0) is True  # the first wait subscribes: anything may have been missed
    threading.Timer(0.2, insert, args=(writer, execution("e1", ready_time=NOW))).start()
    began = time.monotonic()
    assert waiter.wait_for_change(1.0) is True
    waited = time.monotonic() - began
    # Woken by the commit (PostgreSQL's NOTIFY, SQLite's data_version), not by the timeout.
    assert 0.15 < waited < 0.6, waited


def test_sqlite_commits_of_the_store_itself_do_not_end_its_wait(tmp_path: Path) -> None:
    # Whoever commits through a store pokes its scheduler itself. (PostgreSQL's listener hears
    # its own store's NOTIFY too.)
    store = SQLiteStore(tmp_path / "perdure.db")
    try:
        store.wait_for_change(0)
        insert(store, execution("e1", ready_time=NOW))
        assert store.wait_for_change(0.2) is False
    finally:
        store.close()


def test_a_quiet_wait_ends_with_false(open_test_store: StoreFactory) -> None:
    store = open_test_store()
    store.wait_for_change(0)
    assert store.wait_for_change(0.3) is False


def test_setting_stop_ends_a_wait_early_with_false(open_test_store: StoreFactory) -> None:
    store = open_test_store()
    store.wait_for_change(0)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    assert store.wait_for_change(10, stop) is False
    assert time.monotonic() - began < 1.0
