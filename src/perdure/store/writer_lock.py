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

Unlike SQLite's busy timeout, a wait here has no end: a process stopped (SIGSTOP) during a
write transaction holds up the others' writes until it goes on or ends, where SQLite would have
failed them after the busy timeout. A process that dies lets the lock go at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not on this platform: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]


class WriterLock:
    """An exclusive lock between processes, on ``<database>-writer``; one holder per store object.

    Threads of one store take it one at a time (each under the store's connection lock): a
    ``flock`` is held by the open file, which they share.
    """

    def __init__(self, database: Path) -> None:
        self._fd: int | None = None
        self._held = False
        if fcntl is None:
            return
        try:
            # Private like the database (see perdure.store.sqlite._create_private); empty for ever.
            self._fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self._fd = None

    def acquire(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
