"""The writers of a SQLite file, in every process that uses it, queue for its one write lock in the kernel.

SQLite lets one connection write at a time. Another that wants to (``BEGIN IMMEDIATE``) waits in
its busy handler, which sleeps between tries for longer and longer (1, 2, 5, 10, 15, 20, 25, 25,
25, 50, 50, then 100 ms: ``sqliteDefaultBusyCallback`` in sqlite3.c), so a process whose writers
find the lock taken over and over sleeps on while the lock goes free and is taken again. With
1,000 invocations ending at once on two worker processes, one process waited 0.64 s in all and
the lock was free for 0.3 s of the 1.1 s they took to record (issue 14).

So each store takes an exclusive ``flock`` on a file beside the database (``<database>-writer``)
before it begins a write transaction, and lets it go when the transaction ends: the kernel wakes
a waiting process as soon as the lock is free. SQLite's own locks still decide who writes: a
process that does not take this lock (an older Perdure, the ``sqlite3`` shell) waits for the
write lock in its busy handler as before, and is waited for. Where the file cannot be made (a
read-only folder) or ``flock`` does not exist, the lock does nothing and SQLite alone queues.

A wait ends as SQLite's busy timeout does: after ``wait_seconds`` it raises ``WriterLockTimeout``
(which the store answers as unavailable, and a worker as an invocation lost to the store), so a
process stopped (SIGSTOP) in a write transaction holds up the others' writes for that long, not
for as long as it stays stopped. ``flock`` has no timeout of its own: a lock found taken is
waited for by a thread of the lock's (a blocking ``flock``, woken by the kernel the moment the
lock is let go), which the writer waits for with a timeout. A process that dies lets the lock
go at once.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not on this platform: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]


class WriterLockTimeout(sqlite3.OperationalError):
    """Another process held the writers' lock for the whole wait."""


class WriterLock:
    """An exclusive lock between processes, on ``<database>-writer``; one holder per store object.

    Threads of one store take it one at a time (each under the store's connection lock): a
    ``flock`` is held by the open file, which they share.
    """

    def __init__(self, database: Path, wait_seconds: float) -> None:
        self._fd: int | None = None
        self._held = False
        self._wait_seconds = wait_seconds
        self._waiter: _Waiter | None = None
        if fcntl is None:
            return
        try:
            # Private like the database (see perdure.store.sqlite._create_private); empty for ever.
            self._fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self._fd = None

    def acquire(self) -> None:
        """Takes the lock; raises ``WriterLockTimeout`` if another process held it for ``wait_seconds``."""
        if self._fd is None:
            return
        # Not while the waiter is still in a ``flock`` for a writer that gave up: that call, on this
        # same open file, would succeed at once once this one held the lock, and then let it go.
        if self._waiter is None or not self._waiter.busy:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._held = True
                return
            except BlockingIOError:
                pass
        if self._waiter is None:
            self._waiter = _Waiter(self._fd)
        if not self._waiter.wait(self._wait_seconds):
            raise WriterLockTimeout(
                f"database is locked: another process has held its writers' lock for {self._wait_seconds:g} s"
            )
        self._held = True

    def release(self) -> None:
        """Lets the lock go, if this store holds it."""
        if self._fd is not None and self._held:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

    def close(self) -> None:
        # A waiter still in ``flock`` keeps the file open: closed under it, its number could be
        # another file's by the time it returns. It is closed with the process.
        if self._fd is not None and not (self._waiter is not None and self._waiter.busy):
            os.close(self._fd)
        self._fd = None


class _Ticket:
    """One wait for the lock: granted, or given up by the writer that waited."""

    __slots__ = ("granted", "abandoned")

    def __init__(self) -> None:
        self.granted = threading.Event()
        self.abandoned = False


class _Waiter:
    """A thread that takes the lock for a writer waiting with a timeout (see the module's docstring).

    A lock it takes for a writer that gave up is let go at once. While the lock stays taken, the
    thread stays in ``flock``; a daemon, it ends with its process.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        # Whether the thread is taking the lock (or has taken it for a writer that gave up, and
        # not yet let it go). Only writers give it tickets, one at a time, so it turns true only
        # in ``wait``.
        self.busy = False
        self._settle = threading.Lock()
        self._tickets: queue.SimpleQueue[_Ticket] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="perdure-writer-lock", daemon=True).start()

    def wait(self, seconds: float) -> bool:
        """Whether the lock was taken for the caller within ``seconds``."""
        ticket = _Ticket()
        with self._settle:
            self.busy = True
            self._tickets.put(ticket)
        if ticket.granted.wait(seconds):
            return True
        with self._settle:
            # Granted between the timeout and now: taken after all.
            ticket.abandoned = not ticket.granted.is_set()
        return not ticket.abandoned

    def _run(self) -> None:
        while True:
            ticket = self._tickets.get()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            with self._settle:
                if ticket.abandoned:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                else:
                    ticket.granted.set()
                self.busy = not self._tickets.empty()
