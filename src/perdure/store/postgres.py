"""The shared store: one PostgreSQL database for many servers and workers, plus a blob store.

How the contract's "a read followed by a write inside one transaction never races" holds here.
Read-write transactions run at READ COMMITTED, and the execution row is the lock that guards
an execution and everything under it (operations, events, timers, checkpoint replies):

- Every read of an execution inside ``transaction()`` (``get_execution``, ``get_execution_by_id``,
  ``find_execution``) takes ``FOR NO KEY UPDATE``: the lock an ``UPDATE`` of non-key columns
  takes, so it waits for any other writer of that execution and then reads its latest commit.
  ``get_operations`` locks the operation rows it reads in the same way.
- ``ready_executions`` and ``due_timers`` lock with ``SKIP LOCKED``: several processes leasing
  or firing timers at once each get different executions, and none waits behind a checkpoint.
  ``due_timers`` locks the executions first and only then reads their timers, so that a timer
  is never fired from a stale read and locks are always taken execution first (no deadlock
  with a checkpoint that holds the execution and moves its timers).
- Two starts of the same execution name: ``find_execution`` first takes a transaction-scoped
  advisory lock on (function, name), so the second start waits for the first to commit and
  then finds its execution, exactly as on SQLite. An ``insert_execution`` without that lookup
  that collides raises ``psycopg.errors.UniqueViolation`` and its transaction writes nothing.
- ``expire_leases`` locks the owner's executions in ID order, so two servers expiring the same
  owner cannot deadlock.

So a write is serialized with the others when its transaction read the execution first, as
every path of the service does; a write to an execution's operations, events or timers with no
such read before it would not wait for a concurrent writer of that execution.

Blobs and purges: a transaction that stores a payload in a blob holds a shared advisory lock
on the blob's key (``_BLOB_LOCK``) from before it writes the blob until it commits. A purge
takes that lock exclusively, without waiting, before it checks whether a blob is still
referenced: a key some writer holds is being stored again right now, so the purge keeps the
blob; a writer that comes later waits for the purge to commit, then stores the blob anew.

``snapshot()`` is REPEATABLE READ READ ONLY: every statement in it sees the same snapshot, it
takes no row locks and never waits for writers (nor fails: read-only transactions are never
serialization victims).

Transactions that make work ready or move a timer send ``NOTIFY perdure_ready`` on commit,
naming the functions whose work they made ready (a moved timer names none: anyone may fire
it); ``listen`` waits for one that concerns the functions it is given, so idle schedulers
sleep until there is something for them to do (``perdure.store.pg_listener``).
(PostgreSQL commits notifying transactions one at a time. A checkpoint notifies only when it
sets a timer: it runs with its execution leased and the execution's ready time cleared.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.pq import TransactionStatus
from psycopg import Pipeline
from psycopg_pool import ConnectionPool

from perdure.errors import PerdureError, StorageFullError, StoreUnavailableError
from perdure.protocol.queries import PurgeBatch
from perdure.protocol.records import Execution, ExecutionStatus, Operation, OperationStatus
from perdure.protocol.timers import DueWait, FiredWait, Timer, TimerKind, WaitedExecution
from perdure.store import purging
from perdure.store import rows as rowmap
from perdure.store.base import CheckpointReads, Store, Transaction, readiness
from perdure.store.blobs import BlobStore, FileBlobStore, blob_key
from perdure.store.dialect import POSTGRES
from perdure.store.pg_connections import (
    aborted_in_pipeline,
    check_committed,
    commit,
    describe,
    disk_full,
    hung_up,
    rollback,
)
from perdure.store.pg_listener import NOTIFY_CHANNEL, OWNER_LOCK, Listener
from perdure.store.pg_settings import PostgresSettings, connection_parameters, unavailable
from perdure.store.pg_writes import HoldingTransaction
from perdure.store.sql import Cursor, Execute, Statements
from perdure.store.sql_keys import KeyStatements, SQLKeyStore
from perdure.telemetry.metrics import COMMIT_SECONDS, record

# Where blobs go unless ``blobs`` says otherwise: beside the default SQLite database. Several
# machines sharing one PostgreSQL database must share one blob store: an S3 bucket, or a folder
# they all mount.
DEFAULT_BLOB_DIR = Path(".perdure/blobs")
# How often a ``wait_for_change`` with a ``stop`` event looks at it.
_STOP_CHECK_SECONDS = 0.2
# How long after its own listener (re)connected a store starts judging other lease owners
# by their liveness locks: after a database restart, each owner takes its lock again within
# about a second of the database accepting connections (``Listener.listen``'s retry).
_RECONNECT_GRACE_SECONDS = 3.0
# While the database seems away (a transaction found it unreachable, or a pooled connection hung
# up, in the last ``_AWAY_SECONDS``), a transaction waits this long for a connection rather than
# ``PostgresSettings.connect_timeout``: the API answers 503 in seconds, not half a minute, while
# a server restarts or fails over. A pool that is merely busy still waits the whole timeout.
_AWAY_WAIT_SECONDS = 2.0
_AWAY_SECONDS = 10.0

# The key of the advisory lock that serializes migrations (the bytes of "perdure" as a bigint).
# Per-name locks of find_execution use the two-int form, which PostgreSQL keeps in another space.
_MIGRATION_LOCK = 0x70657264757265
# The advisory lock of a blob, from its key (a SHA-256 in hex): its first 64 bits as a bigint.
_BLOB_LOCK = "('x' || substr({key}, 1, 16))::bit(64)::bigint"

# What firing waits reads and writes: a few columns of their operations and executions, the
# writes as one statement each over arrays (executemany would send a statement a row). Arrays
# go in binary (%b): psycopg escapes each element of a text array with a regular expression.
_DUE_WAITS = (
    "SELECT o.execution_id, o.id, o.status, o.parent_id, o.name, o.sub_type, o.start_time, o.scheduled_end_time,"
    " e.status, e.version, e.event_count, e.ready_time, e.lease_owner, e.woken_during_invocation,"
    " e.arn, e.function_name, e.trace_parent"
    " FROM operations AS o JOIN executions AS e ON e.id = o.execution_id"
    " WHERE (o.execution_id, o.id) IN (SELECT * FROM unnest(%b::text[], %b::text[])) ORDER BY o.execution_id, o.id"
)
_WAITS_SUCCEEDED = (
    "UPDATE operations AS o SET status = %s, end_time = f.end_time, version = f.version"
    " FROM unnest(%b::text[], %b::text[], %b::float8[], %b::bigint[]) AS f (execution_id, id, end_time, version)"
    " WHERE o.execution_id = f.execution_id AND o.id = f.id"
)
# Events in bulk: those of fired waits.
_EVENTS_INSERT = (
    "INSERT INTO events (execution_id, event_id, body) SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[])"
)
_WAITED_EXECUTIONS = (
    "UPDATE executions AS e SET version = f.version, event_count = f.event_count, ready_time = f.ready_time,"
    " woken_during_invocation = f.woken"
    " FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::float8[], %b::boolean[])"
    " AS f (id, version, event_count, ready_time, woken) WHERE e.id = f.id"
)


# What a checkpoint reads besides its execution (``checkpoint_reads``), found by the execution's ARN.
_REPLY_BY_ARN = (
    "SELECT reply FROM checkpoint_replies"
    " WHERE execution_id = (SELECT id FROM executions WHERE arn = %s) AND client_token = %s"
)
_OPERATIONS_BY_ARN = (
    "SELECT * FROM operations WHERE execution_id = (SELECT id FROM executions WHERE arn = %s)"
    " AND id = ANY(%s) ORDER BY id"
)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Brings the schema up to date in one transaction; returns the version it is at.

    The advisory lock makes processes that start at once against a new database take turns:
    the first applies the scripts, the others then find nothing left to do.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS perdure_schema_version ("
            " version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM perdure_schema_version").fetchone()
        current = int(row[0]) if row else 0
        for number, script in POSTGRES.schema_scripts():
            if number > current:
                # No parameters: psycopg sends the script as is, several statements at once.
                conn.execute(script)
                conn.execute(
                    "INSERT INTO perdure_schema_version (version, applied_at) VALUES (%s, %s)",
                    (number, time.time()),
                )
                current = number
    return current


class PostgresStore(SQLKeyStore, Store):
    """A store in a PostgreSQL database, shared by any number of processes and machines.

    ``url`` is a libpq URL (``postgresql://user:password@host:5432/dbname``). Each transaction
    takes a connection from a pool of at most ``settings.pool_size``. Payloads over ``inline_limit``
    characters go to ``blobs`` (default: the folder ``.perdure/blobs`` under the current
    directory), which every process using the database must share.
    """

    _key_sql = KeyStatements(POSTGRES)

    def __init__(
        self,
        url: str,
        *,
        blobs: BlobStore | None = None,
        inline_limit: int = rowmap.DEFAULT_INLINE_LIMIT,
        settings: PostgresSettings = PostgresSettings(),
    ) -> None:
        self.url = url
        self.settings = settings
        self.blobs = blobs or FileBlobStore(DEFAULT_BLOB_DIR.absolute())
        self.inline_limit = inline_limit
        connect_timeout = settings.connect_timeout
        # A direct connection first: it fails at once with libpq's own reason (wrong host,
        # password, database), where the pool would retry quietly until its timeout. It has
        # no time limits: a migration may build an index on a large table.
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(connect_timeout)))
        except psycopg.OperationalError as error:
            reason = str(error).strip().replace("\n", " ")
            raise PerdureError(
                f"Cannot connect to the PostgreSQL database {describe(url)}: {reason} "
                "Check that the server is running and that the URL's host, port, user, password "
                "and database name are right (postgresql://user:password@host:5432/dbname)."
            ) from error
        with conn:
            migrate(conn)
        # autocommit: transactions are begun explicitly, with the isolation each kind needs.
        # The pool opens a connection again in the background when one is found broken (a
        # restart, a failover); a transaction waits up to ``connect_timeout`` for one.
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "options": settings.session_options(url),
                **connection_parameters(url, connect_timeout),
            },
            connection_class=psycopg.Connection[DictRow],
            timeout=connect_timeout,
            name="perdure",
            open=False,
        )
        self._pool.open(wait=True, timeout=connect_timeout)
        self._listener = Listener(url, connection_parameters(url, connect_timeout))
        # When the database last seemed away (``time.monotonic``): see ``_AWAY_WAIT_SECONDS``.
        self._away_at = -_AWAY_SECONDS

    @contextmanager
    def _full_as_unavailable(self) -> Iterator[None]:
        """Raises ``StoreUnavailableError`` for an error that says the database cannot be used now, ``StorageFullError`` for a full disk.

        A table or index that cannot grow fails its statement with SQLSTATE 53100 and aborts the
        transaction, which rolls back as any other: nothing of it was recorded, and the
        connection stays usable. The API answers 503 with Retry-After for it, and workers
        record what they could not once space returns, as on SQLite. A connection lost to a
        restart or failover, or a time limit of ``PostgresSettings`` reached, is a
        ``StoreUnavailableError``: the same 503, and a worker's invocation is run again.
        """
        try:
            yield
        except StoreUnavailableError:
            raise
        except Exception as error:
            full = disk_full(error)
            if full is None:
                reason = unavailable(error)
                if reason is None:
                    raise
                self._away_at = time.monotonic()
                raise StoreUnavailableError(f"the PostgreSQL database {describe(self.url)}", reason) from error
            if isinstance(full, OSError):
                raise StorageFullError(self.blobs.location, str(full)) from error
            # Its first line: the rest is the HINT "Check free disk space."
            detail = str(full).strip().splitlines()[0]
            raise StorageFullError(f"the PostgreSQL database {describe(self.url)}", detail) from error

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        # In pipeline mode: BEGIN goes with the first read, and the writes, the NOTIFY and the
        # COMMIT go together at the end; a transaction costs a round trip per read it waits
        # for, plus one (see ``_PostgresTransaction``).
        with self._full_as_unavailable():
            conn = self._take()
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                    tx = _PostgresTransaction(conn, self, writable=True, pipeline=pipeline)
                    yield tx
                    tx.send_held()
                    # Delivered only if the transaction commits; repeats within it are folded. An
                    # empty payload is for every listener (a timer moved: anyone may fire it), a
                    # function's name for those that serve it (see ``perdure.store.pg_listener``).
                    if tx.wakes_scheduler:
                        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
                    elif ready := tx.ready_functions():
                        conn.execute(
                            f"SELECT pg_notify('{NOTIFY_CHANNEL}', f) FROM unnest(%s::text[]) AS f", (sorted(ready),)
                        )
                    committing = time.perf_counter()
                    committed = conn.execute("COMMIT")
                # Leaving the pipeline sent the writes and the COMMIT, and waited for them.
                check_committed(committed)
                record(COMMIT_SECONDS, ("postgresql",), time.perf_counter() - committing)
            except psycopg.errors.PipelineAborted as error:
                rollback(conn)
                raise aborted_in_pipeline() from error
            except BaseException:
                rollback(conn)
                raise
            finally:
                self._pool.putconn(conn)

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # Reads can need the disk too: a sort or hash too big for work_mem spills to temporary
        # files, in the database's tablespace unless temp_tablespaces says otherwise.
        with self._full_as_unavailable():
            conn = self._take()
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    yield _PostgresTransaction(conn, self, writable=False, pipeline=pipeline)
                    conn.execute("ROLLBACK")
            finally:
                rollback(conn)
                self._pool.putconn(conn)

    def _take(self) -> psycopg.Connection[DictRow]:
        """Takes a pooled connection that the server has not dropped, without a round trip.

        An idle connection has nothing to read: one whose socket is readable was closed by the
        server (a restart, a failover, an idle timeout, ``pg_terminate_backend``), which sent its
        reason and hung up. It is closed and handed back, so that the pool replaces it, and the
        next one is tried. (``_begin`` learns the same from a failed BEGIN, which costs a round
        trip that a pipelined transaction does not wait for.)
        """
        for _ in range(self._pool.max_size):
            conn = self._pool.getconn(self._connection_wait())
            if not hung_up(conn):
                return conn
            self._away_at = time.monotonic()
            conn.close()
            self._pool.putconn(conn)
        return self._pool.getconn(self._connection_wait())

    def _connection_wait(self) -> float | None:
        """How long to wait for a pooled connection: the pool's own timeout, unless the database seems away."""
        if time.monotonic() - self._away_at < _AWAY_SECONDS:
            return min(_AWAY_WAIT_SECONDS, self.settings.connect_timeout)
        return None

    def _begin(self, begin: str) -> psycopg.Connection[DictRow]:
        """Takes a pooled connection and begins a transaction on it.

        A pooled connection the server dropped (a restart, a failover, an idle timeout) fails
        on BEGIN, before anything was done: it goes back to the pool, which replaces it, and
        the next one is tried. Cheaper than checking every connection as it leaves the pool,
        which costs a round trip per transaction.
        """
        retries = self._pool.max_size
        while True:
            conn = self._pool.getconn(self._connection_wait())
            try:
                conn.execute(begin)
                return conn
            except psycopg.OperationalError:
                self._away_at = time.monotonic()
                self._pool.putconn(conn)
                if retries == 0:
                    raise
                retries -= 1
            except BaseException:
                self._pool.putconn(conn)
                raise

    def listen(self, timeout: float, functions: Collection[str] | None = None) -> bool:
        """Waits up to ``timeout`` seconds for a transaction to make work of ``functions`` ready or move a timer.

        See ``perdure.store.pg_listener.Listener.listen``: spurious True returns are possible, so re-check.
        """
        return self._listener.listen(timeout, functions)

    def wait_for_change(
        self, timeout: float, stop: threading.Event | None = None, functions: Collection[str] | None = None
    ) -> bool:
        # Listened in short slices so that ``stop`` is seen soon; a slice with no notification
        # is a wait on the socket, with no query.
        deadline = time.monotonic() + timeout
        while True:
            if self.listen(max(0.0, min(deadline - time.monotonic(), _STOP_CHECK_SECONDS)), functions):
                return True
            if (stop is not None and stop.is_set()) or time.monotonic() >= deadline:
                return False

    def hold_owner_lock(self, owner: str) -> None:
        """Takes ``owner``'s liveness lock on this store's listening connection, and keeps it while the store is open.

        See ``perdure.store.pg_listener``. A database that cannot be reached now is not an
        error: the lock is taken when the listener connects again.
        """
        try:
            self._listener.hold(owner)
        except psycopg.OperationalError:
            self._listener.close()

    def vanished_owners(self, owners: Collection[str]) -> set[str]:
        """Of these lease owners, those whose liveness lock no session holds: their processes are gone.

        Judges no one until this store's own listener has held its connection for
        ``_RECONNECT_GRACE_SECONDS``: a database restart drops every session at once, and the
        other owners need a moment to take their locks again, as this one did. The loss of its
        own connection is known once a ``listen`` has seen it: call this after one, from the
        thread that listens, as the scheduler's watcher does.
        """
        since = self._listener.connected_since()
        if not owners or since is None or time.monotonic() - since < _RECONNECT_GRACE_SECONDS:
            return set()
        with self._committed() as conn:
            # Taken for this transaction only: free means no session holds it, and the owner,
            # should it be alive and reconnecting, waits a moment for it.
            rows = conn.execute(
                f"SELECT owner FROM unnest(%s::text[]) AS owner WHERE pg_try_advisory_xact_lock({OWNER_LOCK % 'owner'})",
                (sorted(owners),),
            ).fetchall()
        return {row["owner"] for row in rows}

    @contextmanager
    def _committed(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A read-committed transaction on a pooled connection (retried if dropped), committed at the end.

        Store transactions and the API key statements run in it; a full disk raises ``StorageFullError``.
        A block that ends the transaction itself (a ``ROLLBACK``: nothing to keep) is not committed.
        """
        with self._full_as_unavailable():
            conn = self._begin("BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                yield conn
                if conn.info.transaction_status is not TransactionStatus.IDLE:
                    committing = time.perf_counter()
                    commit(conn)
                    record(COMMIT_SECONDS, ("postgresql",), time.perf_counter() - committing)
            except BaseException:
                rollback(conn)
                raise
            finally:
                self._pool.putconn(conn)

    @contextmanager
    def _key_transaction(self) -> Iterator[Execute]:
        with self._committed() as conn:
            yield conn.execute

    def _name_taken(self, error: Exception) -> bool:
        return (
            isinstance(error, psycopg.errors.UniqueViolation)
            and error.diag.constraint_name == "api_keys_active_name"
        )

    def close(self) -> None:
        self._listener.close()
        self._pool.close()

    def keeps_inline(self, text: str) -> bool:
        """Whether a payload stays in its row rather than going to a blob.

        Text with a NUL character goes to a blob whatever its size: PostgreSQL text cannot hold
        one, and SQLite (the other backend) keeps it.
        """
        return len(text) <= self.inline_limit and "\x00" not in text

    def purge_expired(
        self, now: float, default_retention_days: int, limit: int | None, dry_run: bool = False
    ) -> PurgeBatch:
        with self._committed() as conn:
            cur = conn.cursor()
            # SKIP LOCKED: an execution another transaction holds waits for the next purge.
            expired = purging.select_expired(
                lambda query, params: cur.execute(query + " FOR UPDATE SKIP LOCKED", params).fetchall(),
                lambda name: f"%({name})s",
                now,
                default_retention_days,
                limit,
                no_limit=None,  # LIMIT NULL is no limit.
            )
            batch = PurgeBatch(expired, self._delete_rows(cur, [e.id for e in expired], dry_run))
            if dry_run:
                conn.execute("ROLLBACK")
            else:
                self.blobs.delete_expired(batch.blobs)
            return batch

    @staticmethod
    def _delete_rows(cur: psycopg.Cursor[DictRow], execution_ids: list[str], dry_run: bool) -> list[str]:
        """Deletes executions' rows; returns the keys of the blobs no remaining row references, sorted."""
        ids = {"ids": execution_ids}
        keys = {row["blob"] for row in cur.execute(purging.blobs_of_sql("= ANY(%(ids)s)"), ids)}
        for statement in purging.delete_sqls("= ANY(%(ids)s)"):
            cur.execute(statement, ids)
        candidates = sorted(keys)
        if not dry_run and candidates:
            # A key whose lock a writer holds is being stored again: keep that blob.
            lock = _BLOB_LOCK.format(key="key")
            rows = cur.execute(
                f"SELECT key FROM unnest(%s::text[]) AS key WHERE pg_try_advisory_xact_lock({lock})",
                (candidates,),
            ).fetchall()
            candidates = [row["key"] for row in rows]
        referenced = {
            row["blob"] for row in cur.execute(purging.referenced_sql("= ANY(%(keys)s)"), {"keys": candidates})
        }
        return sorted(set(candidates) - referenced)

    def delete_execution(self, execution_id: str) -> list[str] | None:
        with self._committed() as conn:
            cur = conn.cursor()
            row = cur.execute("SELECT status FROM executions WHERE id = %s FOR UPDATE", (execution_id,)).fetchone()
            if row is None or not ExecutionStatus(row["status"]).is_terminal:
                conn.execute("ROLLBACK")
                return None
            blobs = self._delete_rows(cur, [execution_id], dry_run=False)
            self.blobs.delete_many(blobs)
            return blobs

    def delete_unreferenced_blobs(self, keys: Collection[str]) -> list[str]:
        with self._committed() as conn:
            cur = conn.cursor()
            # As in a purge: a key whose lock a writer holds is being stored again, so it stays.
            lock = _BLOB_LOCK.format(key="key")
            rows = cur.execute(
                f"SELECT key FROM unnest(%s::text[]) AS key WHERE pg_try_advisory_xact_lock({lock})",
                (sorted(set(keys)),),
            ).fetchall()
            candidates = {row["key"] for row in rows}
            referenced = purging.referenced_sql("= ANY(%(keys)s)")
            unreferenced = sorted(candidates - {row["blob"] for row in cur.execute(referenced, {"keys": list(candidates)})})
            self.blobs.delete_many(unreferenced)
            return unreferenced

    def load_payload(self, inline: str | None, blob_key: str | None) -> str | None:
        if blob_key:
            return self.blobs.get(blob_key).decode("utf-8")
        return inline


# Reads inside a read-write transaction lock what they read (see the module's docstring); a
# READ ONLY one may not take row locks.
_WRITE_STATEMENTS = Statements(POSTGRES, locking=True)
_READ_STATEMENTS = Statements(POSTGRES, locking=False)


class _PostgresTransaction(HoldingTransaction):
    """A transaction on a pooled connection: the shared SQL, with PostgreSQL's locks, leasing and timer firing.

    The connection is in pipeline mode: a statement is sent without waiting for its result,
    and the first fetch of a result waits for every statement sent before it. So writes cost
    no round trip of their own, and an error of a write is raised by the next read or by the
    commit (which then rolls everything back, as before). What must know a write's outcome
    before going on syncs: ``_synced_rowcount``, and the blob lock taken before a blob is written.

    Writes of operations, events and execution rows are held back and sent as one statement
    before the next statement that names their tables, or the commit (``HoldingTransaction``).
    """

    def __init__(
        self, conn: psycopg.Connection[DictRow], store: PostgresStore, writable: bool, pipeline: Pipeline
    ) -> None:
        sql = _WRITE_STATEMENTS if writable else _READ_STATEMENTS
        super().__init__(sql, conn.cursor(), self._locked_payload, store.load_payload, self._synced_rowcount)
        self._conn = conn
        self._pipeline = pipeline
        self._store = store
        self._writable = writable
        self._lock = POSTGRES.row_lock if writable else ""
        self._locked_blobs: set[str] = set()

    def _locked_payload(self, text: str | None) -> tuple[str | None, str | None]:
        """Returns ``(inline, blob_key)`` for a payload column pair, storing the blob if there is one."""
        if text is None or self._store.keeps_inline(text):
            return text, None
        data = text.encode("utf-8")
        key = blob_key(data)
        if key not in self._locked_blobs:
            # Held until commit, so that a purge cannot delete the blob before this row refers to it.
            self._cur.execute(f"SELECT pg_advisory_xact_lock_shared({_BLOB_LOCK.format(key='%s')})", (key,))
            self._pipeline.sync()  # The lock must be held before the blob is written.
            self._locked_blobs.add(key)
            self._store.blobs.put(data)
        return None, key

    def _synced_rowcount(self, cursor: Cursor) -> int:
        self._pipeline.sync()
        return cursor.rowcount

    def checkpoint_reads(self, arn: str, operation_ids: Iterable[str], client_token: str | None) -> CheckpointReads:
        # Sent together, run in order: the execution's lock is taken before its operations'.
        # The later two find the execution by ARN themselves, so none waits for another's result.
        # (One statement would read the operations in the snapshot taken before the execution's
        # lock was granted, and miss those that the writer it waited for had just inserted.)
        self.send_held()
        execution = self._conn.cursor()
        execution.execute(self._sql.execution_by_arn, (arn,))
        reply = None
        if client_token:
            reply = self._conn.cursor()
            reply.execute(_REPLY_BY_ARN, (arn, client_token))
        operations = self._conn.cursor()
        operations.execute(_OPERATIONS_BY_ARN + self._lock, (arn, sorted(set(operation_ids))))
        row = execution.fetchone()
        if row is None:
            return CheckpointReads(None)
        reply_row = reply.fetchone() if reply is not None else None
        return CheckpointReads(
            self._execution(row),
            {op["id"]: self._operation(op) for op in operations.fetchall()},
            reply_row["reply"] if reply_row else None,
        )

    def _one(self, sql: str, params: Any) -> DictRow | None:
        return self._run(sql, params).fetchone()

    def _all(self, sql: str, params: Any) -> list[DictRow]:
        return self._run(sql, params).fetchall()

    def find_execution(self, function_name: str, name: str) -> Execution | None:
        if self._writable:
            # Held to commit: a concurrent start of the same name waits here, then finds ours.
            self._cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (function_name, name))
        return super().find_execution(function_name, name)

    def get_operations(self, execution_id: str, ids: Iterable[str]) -> dict[str, Operation]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self._all(
            f"SELECT * FROM operations WHERE execution_id = %s AND id = ANY(%s) ORDER BY id{self._lock}",
            (execution_id, wanted),
        )
        return {row["id"]: self._operation(row) for row in rows}

    # -- leasing and timers ---------------------------------------------------------------

    def expire_leases(self, owner: str, now: float) -> None:
        # Locked in ID order first: two servers expiring one owner's leases at once would
        # otherwise update the same rows in scan order, which may differ, and deadlock.
        self._run(
            "UPDATE executions SET lease_expiry = %(now)s WHERE id IN ("
            " SELECT id FROM executions WHERE lease_owner = %(owner)s AND lease_expiry > %(now)s"
            " ORDER BY id FOR NO KEY UPDATE) RETURNING function_name",
            {"owner": owner, "now": now},
        )
        # The servers of these functions may lease them again now.
        self.made_ready.update(row["function_name"] for row in self._cur.fetchall())

    def ready_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        if not functions:
            return []
        # Two cases: ready and unleased, or leased by an invocation whose lease ran out
        # (``lapsed_executions``). Each is read in the order of its own partial index and stops
        # at ``limit`` (one query ordered by COALESCE would fetch and sort every ready row on
        # each lease). SKIP LOCKED hands rows that another transaction holds to nobody here, so
        # concurrent leasers never share one; a row that changed after this statement's snapshot
        # is re-checked before it is locked. Rows locked here but not leased are let go at commit.
        skip = " FOR NO KEY UPDATE SKIP LOCKED" if self._writable else ""
        params = {"functions": sorted(functions), "now": now, "limit": limit}
        self.send_held()
        ready = self._conn.cursor()
        ready.execute(
            "SELECT * FROM executions WHERE ready_time IS NOT NULL AND ready_time <= %(now)s"
            " AND lease_owner IS NULL AND status = 'RUNNING' AND function_name = ANY(%(functions)s)"
            f" ORDER BY ready_time LIMIT %(limit)s{skip}",
            params,
        )
        # Sent with the first: one round trip for both.
        lapsed = self._conn.cursor()
        lapsed.execute(*self._lapsed_query(now, limit, functions))
        found = [self._execution(r) for r in [*ready.fetchall(), *lapsed.fetchall()]]
        return sorted(found, key=readiness)[:limit]

    def next_wakeup(self, functions: Collection[str] | None = None) -> float | None:
        served = "" if functions is None else " AND function_name = ANY(%(functions)s)"
        # Index-ordered with LIMIT 1, so a filter on functions stops at the first match.
        row = self._one(
            "SELECT LEAST("
            " (SELECT MIN(due_time) FROM timers),"
            f" (SELECT ready_time FROM executions WHERE ready_time IS NOT NULL{served} ORDER BY ready_time LIMIT 1),"
            f" (SELECT lease_expiry FROM executions WHERE lease_owner IS NOT NULL{served}"
            " ORDER BY lease_expiry LIMIT 1)) AS t",
            {"functions": sorted(functions or ())},
        )
        return float(row["t"]) if row and row["t"] is not None else None

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        if self._writable:
            # Lock the executions first, skipping those another transaction holds (their
            # timers fire on a later pass), then read their timers afresh: a timer moved or
            # deleted by the holder before it let go is seen as it is now.
            locked = self._all(
                "SELECT id FROM executions WHERE id IN ("
                " SELECT execution_id FROM timers WHERE due_time <= %s ORDER BY due_time LIMIT %s)"
                " FOR NO KEY UPDATE SKIP LOCKED",
                (now, limit),
            )
            if not locked:
                return []
            rows = self._all(
                "SELECT * FROM timers WHERE due_time <= %s AND execution_id = ANY(%s) ORDER BY due_time LIMIT %s",
                (now, [r["id"] for r in locked], limit),
            )
        else:
            rows = self._all("SELECT * FROM timers WHERE due_time <= %s ORDER BY due_time LIMIT %s", (now, limit))
        return [Timer(r["execution_id"], r["operation_id"], TimerKind(r["kind"]), r["due_time"]) for r in rows]

    def get_executions_by_ids(self, execution_ids: Iterable[str]) -> dict[str, Execution]:
        wanted = sorted(set(execution_ids))
        if not wanted:
            return {}
        # Locked in ID order, as expire_leases locks, so two bulk readers cannot deadlock.
        rows = self._all(f"SELECT * FROM executions WHERE id = ANY(%s) ORDER BY id{self._lock}", (wanted,))
        return {row["id"]: self._execution(row) for row in rows}

    def get_operations_by_keys(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Operation]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = self._all(
            "SELECT * FROM operations WHERE (execution_id, id) IN (SELECT * FROM unnest(%b::text[], %b::text[]))"
            f" ORDER BY execution_id, id{self._lock}",
            ([key[0] for key in wanted], [key[1] for key in wanted]),
        )
        return {(row["execution_id"], row["id"]): self._operation(row) for row in rows}

    def delete_fired_timers(self, timers: Iterable[Timer]) -> None:
        fired = list(timers)
        if fired:
            # One statement over arrays: executemany sent one per timer.
            self._cur.execute(
                "DELETE FROM timers AS t"
                " USING unnest(%b::text[], %b::text[], %b::text[]) AS f (execution_id, operation_id, kind)"
                " WHERE t.execution_id = f.execution_id AND t.operation_id = f.operation_id AND t.kind = f.kind",
                ([t.execution_id for t in fired], [t.operation_id for t in fired], [t.kind.value for t in fired]),
            )

    def due_waits(self, keys: Iterable[tuple[str, str]]) -> list[DueWait]:
        wanted = sorted(set(keys))
        if not wanted:
            return []
        # Locked in key order, as get_operations_by_keys locks (due_timers locked the executions).
        # Plain tuples: a dict per row costs more than the rest of reading it.
        self.send_held()
        cursor = self._cur.connection.cursor(row_factory=tuple_row)
        rows = cursor.execute(
            _DUE_WAITS + self._lock, ([key[0] for key in wanted], [key[1] for key in wanted])
        ).fetchall()
        return [
            DueWait(
                r[0], r[1], OperationStatus(r[2]), r[3], r[4], r[5], r[6], r[7],
                ExecutionStatus(r[8]), r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16],
            )
            for r in rows
        ]

    def record_fired_waits(self, waits: Iterable[FiredWait], executions: Iterable[WaitedExecution]) -> None:
        self.send_held()  # Its rows may be among those held: written in order.
        fired = list(waits)
        if fired:
            ids = [w.execution_id for w in fired]
            self._cur.execute(
                _WAITS_SUCCEEDED,
                (
                    OperationStatus.SUCCEEDED.value,
                    ids,
                    [w.operation_id for w in fired],
                    [w.event.timestamp for w in fired],
                    [w.version for w in fired],
                ),
            )
            bodies = [rowmap.event_row(w.execution_id, w.event)["body"] for w in fired]
            self._cur.execute(_EVENTS_INSERT, (ids, [w.event.event_id for w in fired], bodies))
        woken = list(executions)
        if woken:
            self._cur.execute(
                _WAITED_EXECUTIONS,
                (
                    [e.id for e in woken],
                    [e.version for e in woken],
                    [e.event_count for e in woken],
                    [e.ready_time for e in woken],
                    [e.woken_during_invocation for e in woken],
                ),
            )
            self.wakes_scheduler = self.wakes_scheduler or any(e.ready_time is not None for e in woken)
