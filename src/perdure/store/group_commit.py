"""Group commit: write transactions that threads run at the same time share one SQLite commit.

A SQLite connection commits one transaction at a time, and each commit costs a write of the
pages it changed to the WAL (and an fsync with ``synchronous=FULL``) whatever its size. When
several threads of one process write at once, as concurrent invocations checkpoint, the
writers queue for the connection anyway; here the one that holds it, when it is done and sees
others waiting, leaves the SQLite transaction open for them instead of committing it. The last
writer of the group (or the first thread that needs the connection for anything else) commits
once for all of them.

What each caller is promised does not change:

- A caller returns from its transaction only after the commit that holds its writes: an
  acknowledged write is as durable as if it had been committed alone.
- A caller whose block raises has its own writes undone (each joiner runs inside a
  ``SAVEPOINT``, rolled back on error) and sees its error at once; the others' writes stay
  and are committed.
- A commit that fails fails every caller of its group: none of them is acknowledged, and the
  whole group's writes are rolled back together. So does an error after which SQLite rolled
  the whole transaction back by itself (a full disk, SQLITE_FULL, may): a joiner's
  ``ROLLBACK TO`` then finds no savepoint, and the group is abandoned.
- Transactions of a group are serialized as before: each runs alone on the connection and
  sees the writes of those before it in the group, which commit with it or not at all.

Each SQLite transaction is begun under the store's ``WriterLock`` (``perdure.store.writer_lock``),
which queues the writers of every process using the file, and ends before it is let go.
Transactions given as functions rather than blocks (``perdure.store.combining``) begin and end
theirs with ``begin_batch`` and ``end_batch``, under the same lock over the connection.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType

from perdure.store.writer_lock import WriterLock
from perdure.telemetry.metrics import COMMIT_SECONDS, record

# More writers than this in one group would make the first wait too long for its commit.
GROUP_LIMIT = 64
# How often a writer waiting for its group's commit checks that someone will commit it.
_CHECK_SECONDS = 0.05


@dataclass(frozen=True)
class CommitCounts:
    """How many write transactions committed, and in how many SQLite commits."""

    transactions: int
    commits: int


class GroupCommitError(sqlite3.OperationalError):
    """The commit of a group of transactions failed: none of its writes was kept."""


class _Group:
    """The writers folded into one open SQLite transaction.

    ``waiters`` counts the writers that wait for its commit; each counts itself while holding
    the connection, so whoever commits sees them. Nothing is signalled for a group without
    waiters (a writer alone, as in a single thread).
    """

    __slots__ = ("members", "waiters", "done", "error")

    def __init__(self) -> None:
        self.members = 0
        self.waiters = 0
        self.done = False
        self.error: BaseException | None = None


@dataclass(frozen=True)
class Membership:
    """A write transaction's place in its group, from ``begin`` to ``finish``."""

    group: _Group
    joined: bool


class ConnectionLock:
    """The lock over one connection; taking it (``with lock:``) first commits an open group.

    Anything that uses the connection outside ``GroupCommitter.begin``/``finish`` (a read-only
    snapshot, a purge, a statement run on its own) takes this lock, and so never reads other
    callers' uncommitted writes nor has its own folded into their transaction.
    """

    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._depth = 0
        self.waiting = 0

    def acquire(self) -> None:
        """Takes the lock without ending an open group (for a writer about to join it)."""
        with self._count:
            self.waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count:
                self.waiting -= 1
        self._depth += 1

    def try_acquire(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        self._lock.release()

    def __enter__(self) -> None:
        self.acquire()
        if self._depth == 1:
            try:
                self._committer.end_group()
            except BaseException:
                self.release()
                raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


class GroupCommitter:
    """Runs write transactions on ``conn`` (in autocommit mode), folding concurrent ones into one commit."""

    def __init__(self, conn: sqlite3.Connection, limit: int = GROUP_LIMIT, writer: WriterLock | None = None) -> None:
        self._conn = conn
        self._limit = limit
        # None: SQLite's busy handler alone queues this connection's writes behind other processes'.
        self._writer = writer
        self._group: _Group | None = None
        self.lock = ConnectionLock(self)
        # Signalled when a group with waiters ends.
        self._ended = threading.Condition(threading.Lock())
        self._transactions = 0
        self._commits = 0

    def counts(self) -> CommitCounts:
        """The transactions committed so far and the SQLite commits that held them."""
        return CommitCounts(self._transactions, self._commits)

    def begin(self) -> Membership:
        """Starts a write transaction: joins the open group, or opens one. Pair it with ``finish``."""
        lock = self.lock
        lock.acquire()
        try:
            group = self._group
            if group is not None:
                # Only a joiner needs a savepoint: the first writer's failure rolls back the
                # whole transaction, which holds nothing else yet.
                self._conn.execute("SAVEPOINT joiner")
                return Membership(group, joined=True)
            self._begin_sqlite()
            group = self._group = _Group()
            return Membership(group, joined=False)
        except BaseException:
            lock.release()
            raise

    def finish(self, membership: Membership, failed: bool) -> None:
        """Ends a transaction that ``begin`` started: returns once it is committed, or, when
        ``failed``, undoes its writes (the caller then raises its own error)."""
        group, joined = membership.group, membership.joined
        if failed:
            self._undo(group, joined)
            return
        if joined:
            self._release_savepoint(group)
        group.members += 1
        lock = self.lock
        if lock.waiting and group.members < self._limit:
            group.waiters += 1
            lock.release()
            self._await(group)
        else:
            try:
                self._commit(group)
            finally:
                lock.release()

    def end_group(self) -> None:
        """Commits the open group, if any (the caller holds the lock)."""
        if self._group is not None:
            self._commit(self._group)

    def begin_batch(self) -> None:
        """Begins a SQLite transaction for a batch of transactions run by one thread; the caller holds the lock, and no group is open."""
        self._begin_sqlite()

    def end_batch(self, transactions: int) -> None:
        """Commits the batch's SQLite transaction, which holds ``transactions`` transactions (0: rolls it back).

        A failed commit is rolled back and raised. The caller holds the lock.
        """
        try:
            if transactions == 0:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                return
            try:
                committing = time.perf_counter()
                self._conn.execute("COMMIT")
                record(COMMIT_SECONDS, ("sqlite",), time.perf_counter() - committing)
            except BaseException:
                with suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                raise
            self._transactions += transactions
            self._commits += 1
        finally:
            self._release_writer()

    def _begin_sqlite(self) -> None:
        if self._writer is not None:
            self._writer.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def _undo(self, group: _Group, joined: bool) -> None:
        """Rolls back the failed writer's block (holding the lock), then ends or hands on the group."""
        try:
            if not joined:
                # SQLite rolls the whole transaction back by itself on some errors (SQLITE_FULL,
                # SQLITE_IOERR, SQLITE_NOMEM): then there is nothing left to undo, and a ROLLBACK
                # would fail and hide the writer's own error.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._end(group)
                return
            self._conn.execute("ROLLBACK TO joiner")
            self._conn.execute("RELEASE joiner")
        except BaseException as error:
            self._abandon(group, error)
            raise
        else:
            if not self.lock.waiting:
                # The others' writes are committed; should that fail, they hear of it, and
                # this writer raises its own error.
                with suppress(BaseException):
                    self._commit(group)
        finally:
            self.lock.release()

    def _release_savepoint(self, group: _Group) -> None:
        try:
            self._conn.execute("RELEASE joiner")
        except BaseException as error:
            self._abandon(group, error)
            self.lock.release()
            raise

    def _commit(self, group: _Group) -> None:
        """Commits the group's transaction and tells its writers (the caller holds the lock)."""
        if group.members == 0:
            self._conn.execute("ROLLBACK")
            self._end(group)
            return
        try:
            committing = time.perf_counter()
            self._conn.execute("COMMIT")
            record(COMMIT_SECONDS, ("sqlite",), time.perf_counter() - committing)
        except BaseException as error:
            self._abandon(group, error)
            raise
        self._transactions += group.members
        self._commits += 1
        self._end(group)

    def _abandon(self, group: _Group, error: BaseException) -> None:
        """Rolls the whole group back after ``error``; its waiting writers raise it."""
        group.error = error
        with suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        self._end(group)

    def _end(self, group: _Group) -> None:
        """Closes the group once its SQLite transaction ended (the caller holds the lock) and wakes the writers that wait for it."""
        if self._group is group:
            self._group = None
            self._release_writer()
        if group.waiters:
            with self._ended:
                group.done = True
                self._ended.notify_all()
        else:
            group.done = True

    def _await(self, group: _Group) -> None:
        """Waits (without the lock) until the group is committed; raises if its commit failed."""
        while True:
            with self._ended:
                if not group.done:
                    self._ended.wait(_CHECK_SECONDS)
                if group.done:
                    break
            # Whoever takes the lock next ends or joins the group. Should nobody come after
            # all, this writer commits it itself rather than wait for ever.
            if self.lock.try_acquire():
                try:
                    if self._group is group:
                        with suppress(BaseException):
                            self._commit(group)
                finally:
                    self.lock.release()
        if group.error is not None:
            raise GroupCommitError(
                f"The transaction was rolled back: the commit it shared with {group.members - 1} other "
                f"transaction(s) failed ({group.error})."
            ) from group.error
