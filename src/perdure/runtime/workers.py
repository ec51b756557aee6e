"""The pool of warm worker processes that run handlers, many invocations at once in each.

A worker process (``perdure.runtime.worker_process``) is started for one code folder (a
version's bundle) and runs the invocations sent over its pipe each in a thread of its own.
The pool places invocations on processes, ends an invocation that runs past its function's
timeout for the execution at once, then retires its process once the others it runs have
ended (a thread cannot be stopped); it records the invocations of a process that dies as
crashed, or lost if it was killed.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Final

from perdure.errors import PerdureError, StoreUnavailableError
from perdure.protocol.log_context import LogContext, about
from perdure.protocol.records import DEFAULT_MEMORY_MB, ErrorObject, Execution, Invocation, Usage
from perdure.runtime.invoker import record_report
from perdure.runtime.logcapture import read_spool
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.worker_process import Ended, ProcessKey, Ready, Run, WorkerSettings, process_key, worker_main
from perdure.service.executions import DurableService
from perdure.service.invocations import LOST_INVOCATION
from perdure.telemetry import metrics, tracing

__all__ = ["DEFAULT_SLOTS", "PoolLoad", "WorkerPool", "WorkerSettings"]

# How long a new worker process may take to start before it counts as crashed.
STARTUP_TIMEOUT_SECONDS = 60.0
# How often the end of an invocation that a full disk kept from the store is tried again.
STORE_RETRY_SECONDS = 1.0

logger = logging.getLogger(__name__)


class _Silence(enum.Enum):
    """Not a message: what the pool hears when a worker sends nothing in the time allowed."""

    TIMED_OUT = enum.auto()


_TIMED_OUT: Final = _Silence.TIMED_OUT


class _Process:
    """A worker process of the pool, and the invocations it runs."""

    def __init__(self, settings: WorkerSettings, key: ProcessKey, slots: int) -> None:
        self.key = key
        self.slots = slots
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self._sending = threading.Lock()
        # Where the worker's captures write each invocation's lines at once (read back if it dies).
        self.spool_dir = tempfile.mkdtemp(prefix="perdure-worker-")
        # Where it writes the spans it records (if tracing is on), read by this process's export process.
        self.span_spool = tracing.new_spool()
        try:
            self.process: BaseProcess = context.Process(
                target=worker_main,
                args=(child, settings, key, slots, self.spool_dir, self.span_spool),
                name=f"perdure-worker-{key.code_folder.name}",
                daemon=True,
            )
            self.process.start()
        except BaseException:
            self._end_span_spool()
            raise
        child.close()
        self.ready = False
        # Takes no more invocations: one of them timed out (its thread may never end) or it
        # ran out of memory. Killed once the others end.
        self.draining = False
        # What it runs (under the pool's lock), and how many of each function.
        self.running: dict[int, _Running] = {}
        self._by_function: collections.Counter[str] = collections.Counter()
        self.last_used = time.monotonic()
        self._killing = threading.Lock()

    def count(self, function_name: str) -> int:
        return self._by_function[function_name]

    def add(self, running: _Running) -> None:
        self.running[running.token] = running
        self._by_function[running.spec.name] += 1
        self.last_used = time.monotonic()

    def remove(self, token: int) -> None:
        running = self.running.pop(token, None)
        if running is not None:
            self._by_function[running.spec.name] -= 1

    def send(self, jobs: list[Run]) -> None:
        with self._sending:
            self.conn.send(jobs)

    def spool(self, token: int) -> str:
        return os.path.join(self.spool_dir, f"{token}.log")

    def kill(self) -> None:
        """Kills the process and removes its files; the pool's close and the process's reader may both ask."""
        with self._killing:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            if not self.conn.closed:
                self.conn.close()
            shutil.rmtree(self.spool_dir, ignore_errors=True)
            self._end_span_spool()

    def _end_span_spool(self) -> None:
        """Has the spans the process spooled read to the end (it has ended: none is lost) and its spool removed."""
        if self.span_spool is not None:
            tracing.spool_ended(self.span_spool)
            self.span_spool = None

    def killed(self) -> bool:
        """Whether the process ended by SIGKILL."""
        self.process.join(5)
        return self.process.exitcode == -signal.SIGKILL

    def describe_exit(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"the worker process was killed by signal {signal.Signals(-code).name}"
        return f"the worker process exited with status {code}"


@dataclass
class _Running:
    token: int
    invocation: Invocation
    spec: FunctionSpec
    process: _Process
    deadline: float


# Invocations one worker process runs at once, by default: sized for I/O-bound handlers (an LLM
# or HTTP call per step), which wait far more than they compute. A function with CPU-bound
# steps sets its own ``max_concurrency``; one with ``memory_mb`` runs one at a time per
# process unless it sets one, as its limit is per process.
DEFAULT_SLOTS = 1000
# How many processes the pool keeps, as a multiple of ``processes``: processes of other code
# folders than the busy ones wait idle until this many exist, rather than being stopped and
# started again for each invocation.
PROCESS_HEADROOM = 4
# How often the pool looks for invocations past their timeout.
DEADLINE_CHECK_SECONDS = 0.05


@dataclass(frozen=True)
class PoolLoad:
    """Worker processes running an invocation or idle; invocations running, or leased and waiting for a place."""

    busy_processes: int
    idle_processes: int
    running: int
    waiting: int


class WorkerPool:
    """Runs invocations on warm worker processes, many at once in each.

    Up to ``processes`` processes serve one code folder, so CPU-bound handlers use as many
    cores; each runs up to ``slots`` invocations at once, in threads, and a function's
    ``max_concurrency`` bounds its own in each process. An invocation the pool cannot place
    yet waits, leased, in order, without holding up the others.
    """

    def __init__(
        self,
        service: DurableService,
        registry: Registry,
        settings: WorkerSettings,
        processes: int,
        on_finished: Callable[[Invocation, Execution | None], None],
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        self.service = service
        self.registry = registry
        self.settings = settings
        self.processes = processes
        self.slots = slots
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._workers: list[_Process] = []
        self._running: dict[int, _Running] = {}
        self._waiting: collections.deque[tuple[Invocation, FunctionSpec]] = collections.deque()
        self._tokens = itertools.count(1)
        # Processes being started, by code.
        self._starting: collections.Counter[ProcessKey] = collections.Counter()
        self._closed = False
        self._stopped = threading.Event()
        # Worker processes are started from this one thread, which lives until ``close``: the
        # death signal of _die_with_parent fires when the *thread* that started a process
        # ends, so a worker started from the scheduler's thread would be killed as soon as
        # the scheduler stopped, before ``close`` let its invocation finish.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perdure-spawner")
        self._watchdog = threading.Thread(target=self._watch_deadlines, name="perdure-deadlines", daemon=True)
        self._watchdog.start()

    def free_slots(self) -> int:
        with self._lock:
            return self.processes * self.slots - len(self._running) - len(self._waiting)

    def load(self) -> PoolLoad:
        """How busy the pool is now."""
        with self._lock:
            busy = sum(1 for worker in self._workers if worker.running)
            return PoolLoad(busy, len(self._workers) - busy, len(self._running), len(self._waiting))

    def running(self) -> list[Invocation]:
        """The invocations the pool holds: running, or leased and waiting for a place."""
        with self._lock:
            return [r.invocation for r in self._running.values()] + [invocation for invocation, _ in self._waiting]

    def submit(self, *invocations: Invocation) -> None:
        """Runs the invocations on worker processes of their code (starting them if needed), now or once there is room."""
        placed: list[tuple[Invocation, FunctionSpec]] = []
        for invocation in invocations:
            try:
                placed.append((invocation, self.registry.spec_for(invocation.function_name, invocation.function_version)))
            except PerdureError as error:
                failure = ErrorObject(message=error.message, type=error.code)
                self._record(invocation, functools.partial(self.service.fail_invocation, invocation, failure))
                self.on_finished(invocation, None)
        with self._lock:
            self._waiting.extend(placed)
        self._place()

    def _place(self) -> None:
        """Sends waiting invocations to processes with room, in order, and starts the processes wanted."""
        # What each process is sent, in one message: a thousand starting at once, each sent
        # alone, held up the first ones' threads behind the reading of the rest (issue 14).
        sends: dict[_Process, list[Run]] = collections.defaultdict(list)
        starts: list[ProcessKey] = []
        stops: list[_Process] = []
        with self._lock:
            if self._closed:
                return
            kept: collections.deque[tuple[Invocation, FunctionSpec]] = collections.deque()
            # Functions no process had room for in this pass: the invocations of theirs behind
            # are kept without looking again (thousands may wait).
            full: set[tuple[ProcessKey, str]] = set()
            for invocation, spec in self._waiting:
                if (process_key(spec), spec.name) in full:
                    kept.append((invocation, spec))
                    continue
                worker, wanted = self._choose(spec)
                if wanted:
                    room, stop = self._room_for(process_key(spec))
                    if room:
                        self._starting[process_key(spec)] += 1
                        starts.append(process_key(spec))
                    if stop is not None:
                        stops.append(stop)
                if worker is None:
                    full.add((process_key(spec), spec.name))
                    kept.append((invocation, spec))
                    continue
                token = next(self._tokens)
                running = _Running(token, invocation, spec, worker, time.monotonic() + spec.timeout_seconds)
                worker.add(running)
                self._running[token] = running
                sends[worker].append(Run(token, spec, invocation))
            self._waiting = kept
        # Killing and starting processes take tens of milliseconds, or much more on a loaded
        # machine: done outside the lock, so the scheduler and the API asking what runs never wait.
        for worker in stops:
            worker.kill()
        for key in starts:
            self._spawner.submit(self._start, key)
        for worker, jobs in sends.items():
            try:
                worker.send(jobs)
            except (OSError, ValueError):
                # The process died: its reader fails what it ran, this one included.
                pass

    def _choose(self, spec: FunctionSpec) -> tuple[_Process | None, bool]:
        """(The ready process with room for ``spec`` that runs fewest, if any; whether another is wanted for its code)."""
        key = process_key(spec)
        mine = [w for w in self._workers if w.key == key and not w.draining]
        limit = spec.max_concurrency or (1 if spec.memory_mb else self.slots)
        free = [w for w in mine if w.ready and len(w.running) < self.slots and w.count(spec.name) < limit]
        best = min(free, key=lambda w: len(w.running), default=None)
        # One more process, one at a time, while each has work: CPU-bound handlers then use
        # up to ``processes`` cores, and I/O-bound ones fill the first process's threads.
        wanted = self._starting[key] == 0 and len(mine) < self.processes and (best is None or bool(best.running))
        return best, wanted

    def _room_for(self, key: ProcessKey) -> tuple[bool, _Process | None]:
        """(Whether a process of ``key`` may start; an idle process of other code to stop for it, if any)."""
        if len(self._workers) + sum(self._starting.values()) < self.processes * PROCESS_HEADROOM:
            return True, None
        idle = [w for w in self._workers if w.key != key and w.ready and not w.running]
        if idle:
            stop = min(idle, key=lambda w: w.last_used)
            self._workers.remove(stop)
            return True, stop
        # Code with no process at all gets one past the limit, rather than wait for others' work.
        return not any(w.key == key for w in self._workers), None

    def _start(self, key: ProcessKey) -> None:
        """Starts a process for ``key`` (on the spawner's thread) and reads from it until it ends."""
        try:
            worker = _Process(self.settings, key, self.slots)
        except Exception:
            logger.exception("Starting a worker process failed; the pool tries again with the next invocation.")
            with self._lock:
                self._starting[key] -= 1
            return
        with self._lock:
            self._starting[key] -= 1
            closed = self._closed
            if not closed:
                self._workers.append(worker)
        if closed:
            worker.kill()
            return
        threading.Thread(target=self._read, args=(worker,), name="perdure-worker-reader", daemon=True).start()

    def _read(self, worker: _Process) -> None:
        """Waits for the process to be ready, then hands on each invocation's end until it dies."""
        messages = self._receive(worker, STARTUP_TIMEOUT_SECONDS)
        if not isinstance(messages, list) or not isinstance(messages[0], Ready):
            self._start_failed(worker, messages)
            return
        with self._lock:
            worker.ready = True
        self._place()
        while isinstance(messages, list):
            ended = [message for message in messages if isinstance(message, Ended)]
            if ended:
                self._ended(worker, ended)
            messages = self._receive(worker, None)
        self._died(worker)

    def _start_failed(self, worker: _Process, message: object) -> None:
        """Ends the waiting invocations of a process's code when the process could not start.

        A process that exits while starting fails them, charging an attempt. One that is only
        slow (a loaded machine) or stopped by the pool's close is not the handler's doing: they
        are lost, keep their attempts, and run again from their last checkpoint.
        """
        worker.kill()
        with self._lock:
            self._workers.remove(worker)
            closed = self._closed
            failed = [invocation for invocation, spec in self._waiting if process_key(spec) == worker.key]
            self._waiting = collections.deque((i, s) for i, s in self._waiting if process_key(s) != worker.key)
        if closed:
            error = ErrorObject(
                message="The invocation was lost: the server stopped while its worker process started.",
                type=LOST_INVOCATION.type,
            )
        elif message is _TIMED_OUT:
            error = ErrorObject(
                message=f"The invocation was lost: its worker process took more than {STARTUP_TIMEOUT_SECONDS:g} seconds to start.",
                type=LOST_INVOCATION.type,
            )
        else:
            error = ErrorObject(
                message=f"The worker process could not start: {worker.describe_exit()}.", type="Runtime.ImportModuleError"
            )
        lost = error.type == LOST_INVOCATION.type
        for invocation in failed:
            self._record(invocation, functools.partial(self.service.fail_invocation, invocation, error, lost=lost))
            self.on_finished(invocation, None)

    def _ended(self, worker: _Process, messages: list[Ended]) -> None:
        """Hands on the ends of invocations the process sent together, then places what waits for their room."""
        with self._lock:
            ends = [(message, self._running.pop(message.token, None)) for message in messages]
            for message in messages:
                worker.remove(message.token)
                worker.draining = worker.draining or message.retire
            drained = worker.draining and not worker.running
        for message, running in ends:
            metrics.replay(message.observations)
            if running is None:
                continue  # it timed out and was recorded so; its thread ended after all
            invocation = running.invocation
            if message.load_failure is not None:
                error = ErrorObject(message=message.load_failure, type="Runtime.ImportModuleError")
                self._record(invocation, functools.partial(self.service.fail_invocation, invocation, error))
            elif message.unrecorded is not None:
                self._record(invocation, functools.partial(record_report, self.service, invocation, message.unrecorded))
            self.on_finished(invocation, message.execution)
        if drained:
            self._retire(worker)
        self._place()

    def _died(self, worker: _Process) -> None:
        """Records the end of every invocation a process ran when it died or was killed."""
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            lost = [self._running.pop(token) for token in list(worker.running) if token in self._running]
            for token in list(worker.running):
                worker.remove(token)
            closed = self._closed
        if lost:
            # SIGKILL comes from outside the handler as a rule (an operator, a chaos test, this
            # pool's own close, the system's out-of-memory killer), so it does not count against
            # the handler's attempts; a handler that kills itself so is bounded as a lost one.
            # While the pool closes, its exit code may not be known yet (close's thread reaps it).
            killed = closed or worker.killed()
            # A process that exits on its own (os._exit, a segfault, an abort) does so by a
            # handler's doing: its invocation crashed. With several running, which one is not
            # known, so none is charged an attempt: each is lost, and resumes.
            shared = not killed and len(lost) > 1
            for running in lost:
                if killed or shared:
                    cause = f"{worker.describe_exit()} while running {len(lost)} invocations" if shared else worker.describe_exit()
                    error = ErrorObject(message=f"The invocation was lost: {cause}.", type=LOST_INVOCATION.type)
                else:
                    error = ErrorObject(message=f"The invocation crashed: {worker.describe_exit()}.", type="Runtime.ExitError")
                self._fail_with_logs(running, error, lost=killed or shared)
        worker.kill()
        self._place()

    def _fail_with_logs(self, running: _Running, error: ErrorObject, lost: bool = False) -> None:
        """Records an invocation's end that its worker could not, keeping the lines it wrote first."""
        invocation = running.invocation
        # Kept before its end is recorded (and lost if the disk is full, rather than hold up the end).
        with contextlib.suppress(StoreUnavailableError):
            self.service.append_logs(invocation.execution_arn, read_spool(running.process.spool(running.token), invocation.invocation))
        fields = LogContext.of_invocation(invocation).fields()
        logger.warning("Invocation %d of %s: %s", invocation.invocation, invocation.execution_arn, error.message, extra=fields)
        # Its CPU time went with its process; its time counts at its function's memory.
        usage = Usage(memory_mb=running.spec.memory_mb or DEFAULT_MEMORY_MB)
        self._record(invocation, lambda: self.service.fail_invocation(invocation, error, lost=lost, usage=usage))
        self.on_finished(invocation, None)

    def _retire(self, worker: _Process) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.kill()

    def _watch_deadlines(self) -> None:
        """Ends each invocation at its timeout, for the execution, whether or not its thread can be stopped.

        Its retry or failure goes on at once; its process takes no more work and is replaced,
        and is killed once the other invocations it runs have ended.
        """
        while not self._stopped.wait(DEADLINE_CHECK_SECONDS):
            now = time.monotonic()
            with self._lock:
                late = [r for r in self._running.values() if r.deadline <= now]
                for running in late:
                    del self._running[running.token]
                    running.process.remove(running.token)
                    running.process.draining = True
                drained = {r.process for r in late if not r.process.running}
            for running in late:
                timeout = running.spec.timeout_seconds
                error = ErrorObject(
                    message=f"Task timed out after {timeout} seconds; it resumes from its last checkpoint.",
                    type="Sandbox.Timedout",
                )
                self._fail_with_logs(running, error)
            for worker in drained:
                self._retire(worker)
            if late:
                self._place()

    def _record(self, invocation: Invocation, write: Callable[[], object]) -> None:
        """Runs ``write``, which records the end of ``invocation``, again while the store cannot be used (its disk is full, its database cannot be reached).

        Tried every STORE_RETRY_SECONDS until it works or the pool closes; the invocation's
        lease then lapses, and it resumes from its last checkpoint when a server runs again.
        """
        reported = False
        context = LogContext.of_invocation(invocation)
        with about(context):
            while True:
                try:
                    write()
                    return
                except StoreUnavailableError as error:
                    if self._closed:
                        return
                    if not reported:
                        message = "%s The end of invocation %d of %s is recorded once it can be."
                        logger.warning(message, error.message, invocation.invocation, invocation.execution_arn, extra=context.fields())
                        reported = True
                    time.sleep(STORE_RETRY_SECONDS)

    @staticmethod
    def _receive(worker: _Process, timeout: float | None) -> list[Ready | Ended] | _Silence | None:
        """Returns the worker's next messages (sent together), None if it died, or _TIMED_OUT."""
        try:
            if timeout is not None and not worker.conn.poll(timeout):
                return _TIMED_OUT
            messages: list[Ready | Ended] = worker.conn.recv()
        except (EOFError, OSError):
            return None
        return messages

    def close(self, grace_seconds: float = 10.0) -> None:
        """Lets running invocations finish for up to ``grace_seconds``, then kills every worker.

        An invocation still running then, or still waiting for a place, is recorded as lost and
        resumes from its last checkpoint when a server runs again.
        """
        deadline = time.monotonic() + grace_seconds
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            idle = [w for w in self._workers if not w.running]
        for invocation, _ in waiting:
            error = ErrorObject(message="The invocation was lost: the server stopped before it ran.", type=LOST_INVOCATION.type)
            self._record(invocation, functools.partial(self.service.fail_invocation, invocation, error, lost=True))
            self.on_finished(invocation, None)
        for worker in idle:
            worker.kill()
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stopped.set()
        self._spawner.shutdown()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.kill()
