"""Combined writes: transactions that threads hand over as functions at the same time run on one thread, in one SQLite transaction.

Group commit (``perdure.store.group_commit``) lets the write transactions of concurrent threads
share a commit, but each still runs its own block on its own thread, and the connection passes
from thread to thread between them: with hundreds of invocations checkpointing at once in a
worker process, each hand-over waited for the interpreter lock and a thread switch, and the
SQLite write lock, which every process shares, was held through those waits. Here a transaction
is a function of the transaction (``run``): the first thread to hand one over while none is
running runs it, and then every function handed over meanwhile, one after another, up to
``COMBINE_LIMIT`` in one SQLite transaction; then it commits once, wakes their threads, and
hands the running on to the oldest thread still waiting, if any. Run so, 1,000 threads'
checkpoints and invocation ends took 0.68-1.00 s, against 1.07-1.58 s as group-committed
blocks, on the same machine and load (issue 14).

What each caller is promised is that of a transaction of its own, as with group commit:

- ``run`` returns only after the commit that holds the function's writes.
- A function that raises has its own writes undone and its error raised in its caller's
  thread; the others' writes are committed. (When it had written, the whole transaction is
  rolled back, and those that ran before it in it run again in the next: see ``_run_bodies``.)
- A commit that fails fails every caller whose writes it held; none of them is acknowledged.
- Functions run one at a time, each seeing the writes of those before it in its transaction.

A function may run on another thread than its caller's, in a copy of the caller's context
variables (so logging context and the like follow it), and may run more than once (what it
records for telemetry is kept until its writes are committed: ``perdure.telemetry.held``); it
must use only the transaction it is given, and do nothing else that cannot be done again.
"""

from __future__ import annotations

import collections
import contextvars
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Generic, TypeVar

from perdure.store.group_commit import GroupCommitError, GroupCommitter
from perdure.telemetry.held import Held

T = TypeVar("T")

# How many functions one SQLite transaction runs at most: the write lock is held for all of them
# (each about 0.1-0.3 ms), and other processes' writers wait that long. With 1,000 invocations
# ending at once on two worker processes, 256 ended them sooner than 64 (1.74 against 1.79-1.82 s).
COMBINE_LIMIT = 256


class _Request(Generic[T]):
    """A function handed to ``run``, and what became of it."""

    __slots__ = ("body", "context", "wake", "result", "error", "done")

    def __init__(self, body: Callable[[], T]) -> None:
        self.body = body
        self.context = contextvars.copy_context()
        # Taken here and let go by the thread that ran it (or that hands the running on to it):
        # the cheapest way to wake one thread.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class WriteCombiner:
    """Runs functions of a transaction that threads hand over at once, together (see the module's docstring)."""

    def __init__(self, conn: sqlite3.Connection, groups: GroupCommitter, limit: int = COMBINE_LIMIT) -> None:
        self._conn = conn
        self._groups = groups
        self._limit = limit
        self._mutex = threading.Lock()
        self._queue: collections.deque[_Request[object]] = collections.deque()
        # Whether a thread is running the queue's functions (it takes each that comes meanwhile).
        self._running = False

    def run(self, body: Callable[[], T]) -> T:
        """Runs ``body`` in a write transaction and returns what it returned, once committed; raises what it raised."""
        request: _Request[T] = _Request(body)
        with self._mutex:
            self._queue.append(request)  # type: ignore[arg-type]
            waits = self._running
            self._running = True
        if waits:
            request.wake.acquire()
        if not request.done:
            # Woken to run the queue (or the first to come): this thread runs it now.
            self._run_queue(request)
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    def _run_queue(self, own: _Request[T]) -> None:
        """Runs the queued functions in batches until ``own`` has run, then hands the running on to the oldest waiting."""
        finished: list[_Request[object]] = []
        while not own.done:
            with self._mutex:
                batch = [self._queue.popleft() for _ in range(min(self._limit, len(self._queue)))]
            left = self._run_batch(batch)
            with self._mutex:
                # Those a SQLite rollback kept from running go first in the next batch.
                self._queue.extendleft(reversed(left))
            finished += [request for request in batch if request.done and request is not own]
        with self._mutex:
            following = self._queue[0] if self._queue else None
            self._running = following is not None
        # The next runner first, so that it begins its batch before the threads woken here
        # take the interpreter.
        if following is not None:
            following.wake.release()
        for request in finished:
            request.wake.release()

    def _run_batch(self, batch: list[_Request[object]]) -> list[_Request[object]]:
        """Runs the batch's functions in one SQLite transaction; returns those left to run in the next."""
        groups = self._groups
        with groups.lock:  # commits the group of transaction blocks open, if any
            try:
                groups.begin_batch()
            except BaseException as error:
                for request in batch:
                    request.error, request.done = error, True
                return []
            ran: list[tuple[_Request[object], Held]] = []
            try:
                left = self._run_bodies(batch, ran)
                groups.end_batch(0 if left else len(ran))
            except BaseException as error:
                # The commit failed (or the connection did): all is rolled back, none acknowledged.
                with suppress(BaseException):
                    groups.end_batch(0)
                _fail([request for request, _ in ran], error)
                for request in batch:
                    if not request.done:
                        request.error, request.done = error, True
                return []
        if left:
            return left
        for request, held in ran:
            held.release()
            request.done = True
        return []

    def _run_bodies(self, batch: list[_Request[object]], ran: list[tuple[_Request[object], Held]]) -> list[_Request[object]]:
        """Runs the functions one after another, adding each that returned to ``ran``.

        Returns those to run again in another transaction (none, as a rule): when a function
        fails after writing, its writes are undone with the whole transaction, and those that
        ran before it, whose writes went too, run again. No savepoint is taken for each: with
        hundreds of threads of a worker waiting for the interpreter, each statement lets it go,
        and two more statements for each function cost 0.06-0.1 s of 1,000 invocations' ends
        (issue 14). What a function records (metrics, spans) is held back until its writes are
        committed (``perdure.telemetry.held``), so one that runs again records nothing twice.
        """
        conn = self._conn
        for position, request in enumerate(batch):
            held = Held()
            before = conn.total_changes
            try:
                request.result = request.context.run(held.run, request.body)
            except BaseException as error:
                request.error, request.done = error, True
                # No row written, and the transaction still open (SQLite rolls it back by itself
                # on some errors: SQLITE_FULL, say): nothing to undo. Otherwise all is undone.
                if conn.in_transaction and conn.total_changes == before:
                    continue
                rerun = [done for done, _ in ran] + batch[position + 1 :]
                ran.clear()
                return rerun
            ran.append((request, held))
        return []


def _fail(requests: list[_Request[object]], error: BaseException) -> None:
    """Fails the requests whose writes ``error`` undid."""
    for request in requests:
        failure = GroupCommitError(
            f"The transaction was rolled back: the commit it shared with {len(requests) - 1} other "
            f"transaction(s) failed ({error})."
        )
        failure.__cause__ = error
        request.result, request.error, request.done = None, failure, True
