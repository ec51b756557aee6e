"""The PostgreSQL store's connection discipline: sessions' time limits, lost connections, liveness locks, targeted wake-ups."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer
from store_backends import INLINE_LIMIT, NOW, execution, insert

from perdure.errors import InvalidParameterError, PerdureError, StoreUnavailableError
from perdure.protocol.timers import Timer, TimerKind
from perdure.store.blobs import FileBlobStore
from perdure.store.pg_settings import PostgresSettings
from perdure.store.postgres import PostgresStore


@pytest.fixture
def open_pg(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., PostgresStore]]:
    """Opens stores on the test database (each with its own pool and listener, like another process)."""
    opened: list[PostgresStore] = []

    def open_one(**options: Any) -> PostgresStore:
        store = PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=INLINE_LIMIT, **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _end_sessions(url: str, where: str = "true") -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({where})"
        )


# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment_and_bad_values_are_named() -> None:
    assert PostgresSettings.from_environment({}) == PostgresSettings()
    settings = PostgresSettings.from_environment({"PERDURE_PG_POOL_SIZE": "4", "PERDURE_PG_STATEMENT_TIMEOUT": "2.5"})
    assert (settings.pool_size, settings.statement_timeout) == (4, 2.5)
    with pytest.raises(InvalidParameterError, match="PERDURE_PG_POOL_SIZE='0' is not a whole number of at least 1"):
        PostgresSettings.from_environment({"PERDURE_PG_POOL_SIZE": "0"})
    with pytest.raises(InvalidParameterError, match="PERDURE_PG_LOCK_TIMEOUT='soon' is not a number of seconds"):
        PostgresSettings.from_environment({"PERDURE_PG_LOCK_TIMEOUT": "soon"})


def test_pooled_sessions_run_under_the_time_limits_and_the_urls_own_options_win(
    open_pg: Callable[..., PostgresStore], postgres_url: str, tmp_path: Path
) -> None:
    store = open_pg(settings=PostgresSettings(statement_timeout=7, lock_timeout=3, idle_in_transaction_timeout=0))
    with store._committed() as conn:  # noqa: SLF001 - the session a transaction runs in
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[name] for name in ("statement_timeout", "lock_timeout")}
        idle = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert shown == {"statement_timeout": "7s", "lock_timeout": "3s"}
    assert idle is not None and idle["idle_in_transaction_session_timeout"] == "0"

    url = postgres_url + "?options=-c%20lock_timeout%3D1500"
    own = PostgresStore(url, blobs=FileBlobStore(tmp_path / "blobs"), settings=PostgresSettings(lock_timeout=3))
    try:
        with own._committed() as conn:  # noqa: SLF001
            assert conn.execute("SHOW lock_timeout").fetchone()["lock_timeout"] == "1500ms"
    finally:
        own.close()


def test_a_statement_over_its_time_limit_is_a_store_unavailable_error(open_pg: Callable[..., PostgresStore]) -> None:
    store = open_pg(settings=PostgresSettings(statement_timeout=0.2))
    with pytest.raises(StoreUnavailableError, match="canceling statement due to statement timeout"), store.transaction() as tx:
        tx._one("SELECT pg_sleep(2)", ())  # type: ignore[attr-defined]  # noqa: SLF001


# -- lost connections -------------------------------------------------------------------------


def test_a_transaction_whose_connection_is_lost_is_a_store_unavailable_error_and_the_next_one_works(
    open_pg: Callable[..., PostgresStore], postgres_url: str
) -> None:
    store = open_pg()
    insert(store, execution("e1"))
    with pytest.raises(StoreUnavailableError) as caught, store.transaction() as tx:
        tx.get_execution_by_id("e1")
        _end_sessions(postgres_url)
        tx.get_execution_by_id("e1")
    assert caught.value.status == 503 and caught.value.retry_after_seconds
    assert "may or may not have been recorded" in caught.value.message
    with store.transaction() as tx:
        assert tx.get_execution_by_id("e1") == execution("e1")


def test_while_the_database_is_away_a_transaction_fails_in_seconds_not_after_the_pools_whole_wait(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # A database of its own, which the test closes to every new session: as during a restart or
    # a failover, each pooled session is ended and no new one can be opened.
    name = f"away_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    admin_url = postgres_server.url("postgres")
    store = PostgresStore(url, blobs=FileBlobStore(tmp_path / "blobs"), settings=PostgresSettings(connect_timeout=30))
    try:
        insert(store, execution("e1"))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        for _ in range(2):
            began = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="retry it in"), store.transaction() as tx:
                tx.get_execution_by_id("e1")
            # Not the 30 s the pool waits for a connection when it is merely busy.
            assert time.monotonic() - began < 10
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 60
        while True:
            try:
                with store.transaction() as tx:
                    assert tx.get_execution_by_id("e1") == execution("e1")
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "the store did not reconnect within 60 s"
                time.sleep(0.5)
    finally:
        store.close()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_commit_that_postgresql_answers_with_rollback_is_not_taken_for_one(open_pg: Callable[..., PostgresStore]) -> None:
    store = open_pg()
    with pytest.raises(PerdureError, match="not committed"), store.transaction() as tx:
        insert_ok = execution("kept-out")
        tx.insert_execution(insert_ok)
        # A failed statement aborts the transaction; one who swallowed its error must not be told it committed.
        with pytest.raises(psycopg.errors.DivisionByZero):
            tx._one("SELECT 1 / 0", ())  # type: ignore[attr-defined]  # noqa: SLF001
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("kept-out") is None


# -- liveness locks ---------------------------------------------------------------------------


def test_an_owners_lock_is_free_once_its_session_ends_and_taken_again_when_it_reconnects(
    open_pg: Callable[..., PostgresStore], postgres_url: str
) -> None:
    worker, watcher = open_pg(), open_pg()
    worker.hold_owner_lock("worker-1")
    assert watcher.vanished_owners(["worker-1", "never-started"]) == set()  # its own listener is new: no judging yet
    watcher.listen(0)
    time.sleep(3.1)  # past the grace a store gives others after it (re)connects
    assert watcher.vanished_owners(["worker-1", "never-started"]) == {"never-started"}

    _end_sessions(postgres_url, "query LIKE 'LISTEN%'")  # the listeners' sessions
    # The worker's lock went with its session; the watcher, whose listener sees it lost its
    # own too, judges no one until that is back for a while (all may be reconnecting).
    assert watcher.listen(5) is True
    assert watcher.vanished_owners(["worker-1"]) == set()
    watcher.listen(0)
    assert watcher.vanished_owners(["worker-1"]) == set()
    time.sleep(3.1)
    assert watcher.vanished_owners(["worker-1"]) == {"worker-1"}
    deadline = time.monotonic() + 5
    while not worker.listen(0.1):  # until it notices the lost connection
        assert time.monotonic() < deadline
    worker.listen(0)  # connects again, and takes its lock again
    assert watcher.vanished_owners(["worker-1"]) == set()


# -- wake-ups ---------------------------------------------------------------------------------


def test_a_listener_wakes_for_its_functions_work_and_for_timers_only(open_pg: Callable[..., PostgresStore]) -> None:
    listener, writer = open_pg(), open_pg()
    assert listener.listen(0, ["mine"]) is True  # subscribing
    insert(writer, execution("t1", function="theirs", ready_time=NOW))
    assert listener.listen(0.3, ["mine"]) is False
    insert(writer, execution("m1", function="mine", ready_time=NOW))
    assert listener.listen(5, ["mine"]) is True
    # A moved timer is anyone's to fire.
    with writer.transaction() as tx:
        tx.set_timer(Timer("t1", "w", TimerKind.WAIT, NOW))
    assert listener.listen(5, ["mine"]) is True
    # Without functions, every notification wakes.
    insert(writer, execution("t2", function="theirs", ready_time=NOW))
    assert listener.listen(5) is True
    # Started and leased in one transaction (an Invoke handed straight to a worker): the work is
    # taken, so no server of the function is woken to look for it.
    with writer.transaction() as tx:
        started = execution("m2", function="mine", ready_time=NOW)
        tx.insert_execution(started)
        tx.update_execution(started.evolve(ready_time=None, lease_owner="me", lease_expiry=NOW + 60), before=started)
    assert listener.listen(0.3, ["mine"]) is False
