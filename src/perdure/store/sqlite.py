"""The embedded store: one SQLite database file in WAL mode, plus a blob store (a folder by default)."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from perdure.errors import StorageFullError, StoreUnavailableError
from perdure.protocol.queries import PurgeBatch
from perdure.protocol.records import Execution, ExecutionStatus, Operation, OperationStatus
from perdure.protocol.timers import DueWait, FiredWait, Timer, TimerKind, WaitedExecution
from perdure.store import make_data_dir, purging
from perdure.store import rows as rowmap
from perdure.store.base import Store, Transaction, chunks, readiness
from perdure.store.blobs import BlobStore, FileBlobStore
from perdure.store.combining import WriteCombiner
from perdure.store.dialect import SQLITE
from perdure.store.group_commit import GROUP_LIMIT, CommitCounts, GroupCommitter, Membership
from perdure.store.sql import Execute, SQLTransaction, Statements
from perdure.store.sql_keys import KeyStatements, SQLKeyStore
from perdure.store.writer_lock import WriterLock, WriterLockTimeout

T = TypeVar("T")

# What firing a wait reads and writes: its operation and execution, a few columns of each. The
# keys are joined from (CROSS JOIN keeps that order): a row-value IN list made SQLite scan every operation.
_DUE_WAITS = (
    "SELECT o.execution_id, o.id, o.status, o.parent_id, o.name, o.sub_type, o.start_time, o.scheduled_end_time,"
    " e.status, e.version, e.event_count, e.ready_time, e.lease_owner, e.woken_during_invocation,"
    " e.arn, e.function_name, e.trace_parent"
    " FROM (VALUES {}) AS k CROSS JOIN operations AS o ON o.execution_id = k.column1 AND o.id = k.column2"
    " CROSS JOIN executions AS e ON e.id = o.execution_id"
)
_WAIT_SUCCEEDED = "UPDATE operations SET status = ?, end_time = ?, version = ? WHERE execution_id = ? AND id = ?"
_WAITED_EXECUTION = (
    "UPDATE executions SET version = ?, event_count = ?, ready_time = ?, woken_during_invocation = ? WHERE id = ?"
)


def _operations_by_id(count: int) -> str:
    return f"SELECT * FROM operations WHERE execution_id = ? AND id IN ({', '.join('?' for _ in range(count))})"


# See SQLiteStore.__init__.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# The size SQLite cuts the WAL file back to when a checkpoint lets it start over
# (journal_size_limit): otherwise the file keeps the largest size it ever had.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
# A WAL past this size (beyond what the auto-checkpoint lets it reach: readers kept checkpoints
# from finishing) is checkpointed and truncated before the next write. Looked at every
# WAL_SIZE_CHECK_WRITES write transactions: a stat of the file takes about 4 µs, 10% of a commit.
WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
WAL_SIZE_CHECK_WRITES = 256
# See SQLiteStore.__init__.
_BUSY_TIMEOUT_MS = 30_000
# How often a wait for a commit elsewhere reads ``PRAGMA data_version``: a counter in the WAL's
# shared memory, read without touching the database file, so a `perdure worker` sharing the
# file with `perdure serve` sees an execution started there within this, not within a second.
_CHANGE_POLL_SECONDS = 0.02
# How long a checkpoint that truncates the WAL waits for other processes' readers and writers.
_TRUNCATE_BUSY_MS = 1000

_OPERATIONS_BY_ID = [_operations_by_id(n) for n in range(17)]


def _create_private(path: Path) -> None:
    """Creates an empty database file readable by its owner alone, unless it exists.

    SQLite gives the WAL and its index (-shm) the mode of the database file, so these are
    private too; made by SQLite itself, all three would follow the umask (0644 as a rule).
    """
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process made it first, the same way


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    """``error`` and what caused it, in turn."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _sqlite_code(error: BaseException) -> int | None:
    """The primary SQLite result code, without the extended bits; None for errors made in Python (GroupCommitError)."""
    code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
    return None if code is None else code & 0xFF


def _locked(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) says the write lock stayed taken: SQLITE_BUSY after the busy timeout, or the writers' lock's own wait."""
    return any(isinstance(e, WriterLockTimeout) or _sqlite_code(e) == sqlite3.SQLITE_BUSY for e in _causes(error))


def _disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) says the disk is full: SQLITE_FULL, or ENOSPC from a blob write."""
    return any(
        _sqlite_code(e) == sqlite3.SQLITE_FULL or (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
        for e in _causes(error)
    )


class SQLiteStore(SQLKeyStore, Store):
    """A store in one SQLite file; safe to share between threads and processes.

    ``synchronous=NORMAL`` in WAL mode loses no committed transaction when a process crashes
    (only on power loss); pass ``synchronous="FULL"`` to survive that too. Payloads over
    ``inline_limit`` characters go to ``blobs``, by default the folder ``blobs`` beside the file.
    Up to ``group_limit`` write transactions that this process's threads run at once share a
    commit (``perdure.store.group_commit``); 1 commits each alone.
    """

    _key_sql = KeyStatements(SQLITE)

    def __init__(
        self,
        path: Path,
        *,
        blobs: BlobStore | None = None,
        inline_limit: int = rowmap.DEFAULT_INLINE_LIMIT,
        synchronous: str = "NORMAL",
        group_limit: int = GROUP_LIMIT,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}.")
        if group_limit < 1:
            raise ValueError(f"group_limit must be at least 1 (1 commits every transaction alone), not {group_limit}.")
        make_data_dir(path.parent)
        _create_private(path)
        self.path = path
        self.blobs = blobs or FileBlobStore(path.parent / "blobs")
        self.inline_limit = inline_limit
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        # Taken around every write transaction: the writers of all processes queue in the kernel.
        self._writer = WriterLock(path, _BUSY_TIMEOUT_MS / 1000)
        # Write transactions of this process's threads that run at once share a commit; the
        # lock over the connection commits such a group before anything else uses it.
        self._groups = GroupCommitter(self._conn, group_limit, self._writer)
        self._lock = self._groups.lock
        self._combiner = WriteCombiner(self._conn, self._groups)
        self._conn.row_factory = sqlite3.Row
        # A generous busy timeout rides out other processes' write transactions rather than
        # failing fast: workers and the server share this file.
        self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        # SQLite copies the WAL back into the database (and syncs both) inside whichever commit
        # takes the WAL past this many pages. At its default of 1000, a checkpoint's commit (9-10
        # pages) paid that every ~100 commits, 35-40 µs a commit on average; each copy costs
        # about the same whatever the WAL's length (the same hot pages are written over and
        # over), so a longer WAL (at most ~40 MB) pays it ten times less often.
        self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        self._conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        # Whether the next write first checkpoints and truncates the WAL (see ``_truncate_wal``).
        self._truncate_due = False
        self._writes = 0
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        # Every transaction and snapshot of this store runs on its one connection, under its
        # lock, and keeps no state of its own: one object serves them all, rather than one
        # made for each checkpoint. (Its ``wakes_scheduler`` is for PostgreSQL's listeners.)
        self._tx = _SQLiteTransaction(self._conn, self)
        self._seen_data_version: int | None = None

    def _migrate(self) -> None:
        with self._lock, self._writer:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                current = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for number, script in SQLITE.schema_scripts():
                    if number > current:
                        for statement in script.split(";\n"):
                            if statement.strip():
                                self._conn.execute(statement)
                        self._conn.execute(f"PRAGMA user_version = {number}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Opens a write transaction; it returns once committed (see ``perdure.store.group_commit``).

        Transactions that threads of this process run at the same time may share one commit:
        none returns before the commit that holds it, and one that raises keeps nothing while
        the others of its group are committed.
        """
        return _WriteTransaction(self, self._groups)

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        """Runs ``body`` in a write transaction; those that threads of this process give at once run together (``perdure.store.combining``)."""
        if self._truncate_due:
            self._truncate_wal()
        tx = self._tx
        try:
            result = self._combiner.run(lambda: body(tx))
        except BaseException as error:
            refused = self._unavailable(error)
            if refused is None:
                raise
            raise refused from error
        self._wrote()
        return result

    def _unavailable(self, error: BaseException) -> StoreUnavailableError | None:
        """The error to raise for ``error`` if it says the disk is full (and a WAL truncation is then
        due), or that another process held the write lock for the whole busy timeout."""
        if _locked(error):
            return StoreUnavailableError(
                str(self.path),
                f"another process has held its write lock for {_BUSY_TIMEOUT_MS // 1000} s: it may be stopped, "
                "or in a very long transaction",
            )
        if not _disk_full(error):
            return None
        # On a full disk, SQLite's auto-checkpoint fails like any write, and on a volume smaller
        # than the WAL it lets grow, none is ever due again: the WAL, never reset, kept the disk
        # full after space was freed (issue 11, finding 13). Each write truncates it first until one can.
        self._truncate_due = True
        return StorageFullError(str(self.path.parent), str(error))

    @contextmanager
    def _full_as_unavailable(self) -> Iterator[None]:
        """Raises ``StorageFullError`` for a SQLite error that says the disk is full, ``StoreUnavailableError`` for a write lock that stayed taken."""
        try:
            yield
        except sqlite3.Error as error:
            refused = self._unavailable(error)
            if refused is None:
                raise
            raise refused from error

    def _truncate_wal(self) -> None:
        """Copies the WAL into the database and empties it, if it is due and other processes let it.

        ``wal_checkpoint(TRUNCATE)`` waits (here for ``_TRUNCATE_BUSY_MS``) for other processes'
        readers and writers; it fails with SQLITE_FULL while the database cannot grow, and is
        then tried again by the next write.
        """
        with self._lock:
            if not self._truncate_due:
                return
            self._conn.execute(f"PRAGMA busy_timeout = {_TRUNCATE_BUSY_MS}")
            try:
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError:
                return
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._truncate_due = bool(busy)

    def _wrote(self) -> None:
        """Counts a committed write; every WAL_SIZE_CHECK_WRITES, sees whether the WAL is past its bound."""
        self._writes += 1
        if self._writes % WAL_SIZE_CHECK_WRITES == 0:
            with suppress(OSError):
                if os.stat(f"{self.path}-wal").st_size > WAL_TRUNCATE_BYTES:
                    self._truncate_due = True

    def commit_counts(self) -> CommitCounts:
        """How many write transactions this store committed, in how many SQLite commits."""
        return self._groups.counts()

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # A deferred transaction takes no write lock: writers in other processes go on (WAL).
        # Within this process it holds the connection's lock, as a transaction does; taking
        # it commits the open group, which can find the disk full.
        with self._full_as_unavailable(), self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._tx
            finally:
                self._conn.execute("ROLLBACK")

    def purge_expired(
        self, now: float, default_retention_days: int, limit: int | None, dry_run: bool = False
    ) -> PurgeBatch:
        # Blobs are deleted inside the write transaction: every writer stores its blobs inside
        # one too, so none can store a blob between the reference check and its deletion.
        with self._full_as_unavailable(), self._lock, self._writer:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                batch = self._purge(now, default_retention_days, limit)
                if not dry_run:
                    self.blobs.delete_expired(batch.blobs)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("ROLLBACK" if dry_run else "COMMIT")
            return batch

    def _purge(self, now: float, default_retention_days: int, limit: int | None) -> PurgeBatch:
        """Deletes the expired executions' rows and returns them with the blobs left unreferenced."""
        expired = purging.select_expired(
            lambda query, params: self._conn.execute(query, params).fetchall(),
            lambda name: f":{name}",
            now,
            default_retention_days,
            limit,
            no_limit=-1,  # SQLite reads a negative LIMIT as none.
        )
        return PurgeBatch(expired, self._delete_rows([e.id for e in expired]))

    def _delete_rows(self, execution_ids: list[str]) -> list[str]:
        """Deletes executions' rows; returns the keys of the blobs no remaining row references, sorted."""
        keys: set[str] = set()
        for ids in chunks(execution_ids, 200):
            member, params = _member(ids)
            keys.update(row["blob"] for row in self._conn.execute(purging.blobs_of_sql(member), params))
            for statement in purging.delete_sqls(member):
                self._conn.execute(statement, params)
        unreferenced = set(keys)
        for batch in chunks(sorted(keys), 200):
            member, params = _member(batch)
            unreferenced.difference_update(
                row["blob"] for row in self._conn.execute(purging.referenced_sql(member), params)
            )
        return sorted(unreferenced)

    def delete_execution(self, execution_id: str) -> list[str] | None:
        with self._full_as_unavailable(), self._lock, self._writer:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,)).fetchone()
                if row is None or not ExecutionStatus(row["status"]).is_terminal:
                    self._conn.execute("ROLLBACK")
                    return None
                blobs = self._delete_rows([execution_id])
                self.blobs.delete_many(blobs)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return blobs

    def delete_unreferenced_blobs(self, keys: Collection[str]) -> list[str]:
        # The write lock, held from the check to the deletion, keeps every other writer out.
        with self._full_as_unavailable(), self._lock, self._writer:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                unreferenced = set(keys)
                for batch in chunks(sorted(unreferenced), 200):
                    member, params = _member(batch)
                    referenced = self._conn.execute(purging.referenced_sql(member), params)
                    unreferenced.difference_update(row["blob"] for row in referenced)
                self.blobs.delete_many(unreferenced)
            finally:
                self._conn.execute("ROLLBACK")  # it wrote no row
            return sorted(unreferenced)

    @contextmanager
    def _key_transaction(self) -> Iterator[Execute]:
        # A statement alone on the connection commits by itself; the lock keeps it out of an open group.
        with self._lock:
            yield self._conn.execute

    def _name_taken(self, error: Exception) -> bool:
        # The unique index on active names names its column.
        return isinstance(error, sqlite3.IntegrityError) and "api_keys.name" in str(error)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._writer.close()

    def wait_for_change(
        self, timeout: float, stop: threading.Event | None = None, functions: Collection[str] | None = None
    ) -> bool:
        """Waits up to ``timeout`` seconds for a commit by another connection to this file; True if one came.

        SQLite tells no one of commits, so this polls ``PRAGMA data_version``, which moves when
        any other connection (in this process or another) commits. Commits of this store's own
        connection do not move it: whoever makes them pokes the scheduler. The first wait
        returns True at once, as anything may have been committed before it. ``functions`` is
        not used: the data version does not say what a commit changed.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._seen_data_version:
                self._seen_data_version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if stop is None:
                time.sleep(min(left, _CHANGE_POLL_SECONDS))
            elif stop.wait(min(left, _CHANGE_POLL_SECONDS)):
                return False

    def store_payload(self, text: str | None) -> tuple[str | None, str | None]:
        """Returns ``(inline, blob_key)`` for a payload column pair."""
        if text is None or len(text) <= self.inline_limit:
            return text, None
        return None, self.blobs.put(text.encode("utf-8"))

    def load_payload(self, inline: str | None, blob_key: str | None) -> str | None:
        if blob_key:
            return self.blobs.get(blob_key).decode("utf-8")
        return inline


def _member(values: list[str]) -> tuple[str, dict[str, str]]:
    """``IN (:v0, :v1, ...)`` and its parameters: named, so one list serves a whole UNION."""
    params = {f"v{i}": value for i, value in enumerate(values)}
    return f"IN ({', '.join(f':{name}' for name in params)})", params


class _WriteTransaction(AbstractContextManager[Transaction]):
    """``SQLiteStore.transaction()``: a class rather than a generator, as every checkpoint opens one."""

    def __init__(self, store: SQLiteStore, groups: GroupCommitter) -> None:
        self._store = store
        self._groups = groups
        self._membership: Membership | None = None

    def __enter__(self) -> Transaction:
        store = self._store
        try:
            if store._truncate_due:
                store._truncate_wal()
            self._membership = self._groups.begin()
        except sqlite3.Error as error:
            # Taking the lock commits the group open before: its failure is seen here.
            refused = store._unavailable(error)
            if refused is None:
                raise
            raise refused from error
        return store._tx

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._membership is not None, "entered before it exits"
        try:
            self._groups.finish(self._membership, failed=kind is not None)
        except sqlite3.Error as failure:
            refused = self._store._unavailable(failure)
            if refused is None:
                raise
            raise refused from failure
        if error is not None:
            # A statement that found the disk full, or a blob that could not be written.
            refused = self._store._unavailable(error)
            if refused is not None:
                raise refused from error
        else:
            self._store._wrote()


_STATEMENTS = Statements(SQLITE, locking=False)


class _SQLiteTransaction(SQLTransaction):
    """A transaction on the store's one connection: the shared SQL, with SQLite's leasing and timer firing."""

    def __init__(self, conn: sqlite3.Connection, store: SQLiteStore) -> None:
        super().__init__(_STATEMENTS, conn.execute, conn.executemany, store.store_payload, store.load_payload)
        self._conn = conn

    # A sqlite3.Row finds a column by comparing names one by one: reading the 35 columns of an
    # execution that way took 9 µs, against about 2 µs for making a dict of the row first.
    def _execution(self, row: sqlite3.Row) -> Execution:
        return rowmap.execution_from_row(dict(zip(row.keys(), row)), self._load_payload)

    def _operation(self, row: sqlite3.Row) -> Operation:
        return rowmap.operation_from_row(dict(zip(row.keys(), row)), self._load_payload)

    def get_operations(self, execution_id: str, ids: Iterable[str]) -> dict[str, Operation]:
        found: dict[str, Operation] = {}
        for batch in chunks(sorted(set(ids)), 500):
            sql = _OPERATIONS_BY_ID[len(batch)] if len(batch) < len(_OPERATIONS_BY_ID) else _operations_by_id(len(batch))
            rows = self._conn.execute(sql, [execution_id, *batch]).fetchall()
            for row in rows:
                found[row["id"]] = self._operation(row)
        return found

    # -- leasing and timers ---------------------------------------------------------------

    def expire_leases(self, owner: str, now: float) -> None:
        self._conn.execute(
            "UPDATE executions SET lease_expiry = ? WHERE lease_owner = ? AND lease_expiry > ?",
            (now, owner, now),
        )

    def ready_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        if not functions:
            return []
        names = sorted(functions)
        served = f"function_name IN ({', '.join('?' for _ in names)})"
        # Two cases: ready and unleased, or leased by an invocation whose lease ran out
        # (``lapsed_executions``). Each is read in the order of its own partial index and stops
        # at ``limit``, so neither suspended executions nor a backlog of ready ones is read in
        # full (a single query ordered by COALESCE would sort every ready row on each lease).
        # INDEXED BY, because SQLite's planner prefers an index on (function_name, status) and
        # then sorts every match: with 10,000 executions ready, each lease read them all.
        ready = self._conn.execute(
            "SELECT * FROM executions INDEXED BY executions_ready WHERE ready_time IS NOT NULL AND ready_time <= ?"
            f" AND lease_owner IS NULL AND status = 'RUNNING' AND {served} ORDER BY ready_time LIMIT ?",
            [now, *names, limit],
        ).fetchall()
        found = [*(self._execution(r) for r in ready), *self.lapsed_executions(now, limit, names)]
        return sorted(found, key=readiness)[:limit]

    def next_wakeup(self, functions: Collection[str] | None = None) -> float | None:
        timer = self.next_timer_due()
        if functions is None:
            served, names = "", []
        else:
            names = sorted(functions)
            served = f" AND function_name IN ({', '.join('?' for _ in names)})"
        # Index-ordered with LIMIT 1, so a filter on functions stops at the first match
        # (INDEXED BY, as in ready_executions).
        ready = self._conn.execute(
            "SELECT ready_time FROM executions INDEXED BY executions_ready"
            f" WHERE ready_time IS NOT NULL{served} ORDER BY ready_time LIMIT 1",
            names,
        ).fetchone()
        lease = self._conn.execute(
            "SELECT lease_expiry FROM executions INDEXED BY executions_leased"
            f" WHERE lease_owner IS NOT NULL{served} ORDER BY lease_expiry LIMIT 1",
            names,
        ).fetchone()
        times = [t for t in (timer, ready and ready[0], lease and lease[0]) if t is not None]
        return float(min(times)) if times else None

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        # Plain tuples, as in due_waits: a batch of timers is a thousand rows.
        cursor = self._conn.cursor()
        cursor.row_factory = None
        cursor.execute(
            "SELECT execution_id, operation_id, kind, due_time FROM timers"
            " WHERE due_time <= ? ORDER BY due_time LIMIT ?",
            (now, limit),
        )
        return [Timer(execution_id, op_id, TimerKind(kind), due_time) for execution_id, op_id, kind, due_time in cursor]

    def get_executions_by_ids(self, execution_ids: Iterable[str]) -> dict[str, Execution]:
        found: dict[str, Execution] = {}
        for batch in chunks(sorted(set(execution_ids)), 500):
            rows = self._conn.execute(
                f"SELECT * FROM executions WHERE id IN ({', '.join('?' for _ in batch)})", batch
            ).fetchall()
            for row in rows:
                execution = self._execution(row)
                found[execution.id] = execution
        return found

    def get_operations_by_keys(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Operation]:
        found: dict[tuple[str, str], Operation] = {}
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 400):
            batch = wanted[start : start + 400]
            rows = self._conn.execute(
                # From the keys (see _DUE_WAITS): a row-value IN list made SQLite scan every operation.
                f"SELECT o.* FROM (VALUES {', '.join('(?, ?)' for _ in batch)}) AS k"
                " CROSS JOIN operations AS o ON o.execution_id = k.column1 AND o.id = k.column2",
                [part for key in batch for part in key],
            ).fetchall()
            for row in rows:
                found[(row["execution_id"], row["id"])] = self._operation(row)
        return found

    def delete_fired_timers(self, timers: Iterable[Timer]) -> None:
        self._conn.executemany(
            "DELETE FROM timers WHERE execution_id = ? AND operation_id = ? AND kind = ?",
            sorted((t.execution_id, t.operation_id, t.kind.value) for t in timers),  # key order, as record_fired_waits
        )

    def due_waits(self, keys: Iterable[tuple[str, str]]) -> list[DueWait]:
        found: list[DueWait] = []
        wanted = sorted(set(keys))
        # Plain tuples: a sqlite3.Row finds each column by name, and there are thousands of rows.
        cursor = self._conn.cursor()
        cursor.row_factory = None
        for start in range(0, len(wanted), 400):
            batch = wanted[start : start + 400]
            params = [part for key in batch for part in key]
            cursor.execute(_DUE_WAITS.format(", ".join("(?, ?)" for _ in batch)), params)
            found.extend(
                DueWait(
                    r[0], r[1], OperationStatus(r[2]), r[3], r[4], r[5], r[6], r[7],
                    ExecutionStatus(r[8]), r[9], r[10], r[11], r[12], bool(r[13]), r[14], r[15], r[16],
                )
                for r in cursor
            )
        return found

    def record_fired_waits(self, waits: Iterable[FiredWait], executions: Iterable[WaitedExecution]) -> None:
        fired = list(waits)
        # Updates in key order: each statement then walks its table's primary key index from one
        # end to the other, rather than to a page anywhere in it for each row. Events go in the
        # order given (the order the waits fell due), the order their rows keep.
        succeeded = OperationStatus.SUCCEEDED.value
        self._conn.executemany(
            _WAIT_SUCCEEDED,
            [
                (succeeded, w.event.timestamp, w.version, w.execution_id, w.operation_id)
                for w in sorted(fired, key=lambda w: (w.execution_id, w.operation_id))
            ],
        )
        self._conn.executemany(self._sql.event_insert, [rowmap.event_row(w.execution_id, w.event) for w in fired])
        self._conn.executemany(
            _WAITED_EXECUTION,
            [(e.version, e.event_count, e.ready_time, e.woken_during_invocation, e.id) for e in sorted(executions)],
        )
