"""``Store.wait_for_change``: PostgreSQL is told of commits elsewhere; SQLite polls."""

from __future__ import annotations

import threading
import time

from store_backends import NOW, StoreFactory, execution, insert

from perdure.store.postgres import PostgresStore


def test_a_commit_that_makes_work_ready_in_another_store_ends_the_wait(open_test_store: StoreFactory) -> None:
    waiter, writer = open_test_store(), open_test_store()
    assert waiter.wait_for_change(0) is True  # the first wait subscribes: anything may have been missed
    threading.Timer(0.2, insert, args=(writer, execution("e1", ready_time=NOW))).start()
    began = time.monotonic()
    assert waiter.wait_for_change(1.0) is True
    waited = time.monotonic() - began
    if isinstance(waiter, PostgresStore):
        assert 0.15 < waited < 0.6, waited  # woken by the commit's NOTIFY
    else:
        assert waited >= 1.0, waited  # cannot tell: sleeps the whole timeout, then says "maybe"


def test_a_quiet_wait_says_whether_the_store_can_tell(open_test_store: StoreFactory) -> None:
    store = open_test_store()
    store.wait_for_change(0)
    # PostgreSQL knows nothing was committed; SQLite cannot know, so it says something may have been.
    assert store.wait_for_change(0.3) is (not isinstance(store, PostgresStore))


def test_setting_stop_ends_a_wait_early_with_false(open_test_store: StoreFactory) -> None:
    store = open_test_store()
    store.wait_for_change(0)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    assert store.wait_for_change(10, stop) is False
    assert time.monotonic() - began < 1.0
