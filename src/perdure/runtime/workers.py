"""Warm worker processes that run handlers, one invocation at a time each.

A worker is started for one function (like a Lambda execution environment), imports its
handler once, applies the function's memory limit to itself, and then serves invocations
sent over a pipe, recording each outcome in the store itself. The parent kills a worker
whose invocation runs past the function's timeout, and records the crash of one that dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import resource
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final, TypeAlias

from perdure.errors import FunctionLoadError, PerdureError, StorageFullError
from perdure.protocol.records import ErrorObject, Invocation
from perdure.protocol.secret import load_secret
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import sdk_tuning
from perdure.runtime.heap import freeze_startup_heap
from perdure.runtime.invoker import InvocationReport, record_report, run_invocation
from perdure.runtime.logcapture import capture_logs, keep_logs, read_spool
from perdure.runtime.registry import FunctionSpec, Registry, load_handler
from perdure.service.executions import DurableService, ServiceConfig
from perdure.service.functions import FunctionDefaults, lookup_of
from perdure.service.invocations import LOST_INVOCATION
from perdure.store import open_store
from perdure.store.blobs import BlobConfig

# How long a new worker may take to import its handler before it counts as crashed.
STARTUP_TIMEOUT_SECONDS = 60.0
# How often the end of an invocation that a full disk kept from the store is tried again.
STORE_RETRY_SECONDS = 1.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs to open its own connection to the service."""

    db_url: str
    # Where payloads over the inline limit go: the same for every process using the database.
    blobs: BlobConfig = BlobConfig()
    service_config: ServiceConfig = ServiceConfig()
    # Where the snapshot signing key lives (see perdure.protocol.snapshots.load_secret).
    data_dir: Path = Path(".perdure")
    # The functions a chained invoke may start (``DurableService``'s ``functions``); the
    # runtime fills them in from its registry.
    functions: tuple[FunctionDefaults, ...] = ()


# What a worker sends the pool over its pipe (the pool sends it one Invocation at a time).
@dataclass(frozen=True)
class _Ready:
    """The worker imported its handler and waits for invocations."""


@dataclass(frozen=True)
class _LoadFailed:
    """The handler could not be imported; the worker then exits."""

    message: str


@dataclass(frozen=True)
class _Recorded:
    """The invocation ran and its end is in the store."""


@dataclass(frozen=True)
class _Unrecorded:
    """The invocation ran, but a full disk kept its end from the store: the pool records ``report``."""

    report: InvocationReport


_FromWorker: TypeAlias = _Ready | _LoadFailed | _Recorded | _Unrecorded


class _Silence(enum.Enum):
    """Not a message: what the pool hears when a worker sends nothing in the time allowed."""

    TIMED_OUT = enum.auto()


_TIMED_OUT: Final = _Silence.TIMED_OUT


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: if the server is killed, its workers go too instead of lingering.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)
    except OSError:
        pass


def _worker_main(
    conn: multiprocessing.connection.Connection, settings: WorkerSettings, spec: FunctionSpec, spool_path: str
) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.memory_mb:
        limit = spec.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    sdk_tuning.apply()
    # The service's own reads of snapshots (a restart's copies) use the key the server configured.
    codec = SnapshotCodec(load_secret(settings.data_dir))
    service = DurableService(
        open_store(settings.db_url, settings.blobs),
        settings.service_config,
        functions=lookup_of(settings.functions),
        snapshots=codec,
    )
    try:
        handler = load_handler(spec)
    except FunctionLoadError as error:
        conn.send(_LoadFailed(error.message))
        return
    spool = os.open(spool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    # Its imports and the handler's module live as long as the worker does.
    freeze_startup_heap()
    conn.send(_Ready())
    while True:
        try:
            invocation: Invocation = conn.recv()
        except EOFError:
            return
        os.ftruncate(spool, 0)
        with capture_logs(invocation.invocation, spool) as captured:
            report = run_invocation(service, spec, handler, invocation, codec)
        keep_logs(service, invocation.execution_arn, captured)
        os.ftruncate(spool, 0)
        try:
            record_report(service, invocation, report)
        except StorageFullError:
            # The pool records it once the store can write again. A worker that died here
            # failed every invocation sent to it while the disk was full (issue 11, finding 13).
            conn.send(_Unrecorded(report))
        else:
            conn.send(_Recorded())
        if report.out_of_memory:
            return


class _Worker:
    def __init__(self, settings: WorkerSettings, spec: FunctionSpec) -> None:
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        # Where the worker's capture writes each log line at once (read back if it dies).
        descriptor, self.spool_path = tempfile.mkstemp(prefix="perdure-worker-", suffix=".log")
        os.close(descriptor)
        self.process: BaseProcess = context.Process(
            target=_worker_main,
            args=(child, settings, spec, self.spool_path),
            name=f"perdure-worker-{spec.name}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.ready = False

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()
        with contextlib.suppress(OSError):
            os.unlink(self.spool_path)

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


class WorkerPool:
    """Runs invocations on at most ``size`` warm worker processes."""

    def __init__(
        self,
        service: DurableService,
        registry: Registry,
        settings: WorkerSettings,
        size: int,
        on_finished: Callable[[Invocation], None],
    ) -> None:
        self.service = service
        self.registry = registry
        self.settings = settings
        self.size = size
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        # A worker of None: its process is starting.
        self._busy: dict[str, tuple[_Worker | None, Invocation]] = {}
        self._closed = False
        # Worker processes are started from this one thread, which lives until ``close``: the
        # death signal of _die_with_parent fires when the *thread* that started a process
        # ends, so a worker started from the scheduler's thread would be killed as soon as
        # the scheduler stopped, before ``close`` let its invocation finish.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perdure-spawner")
        # Threads that wait for running invocations to end, kept between invocations: starting
        # a thread for each one cost about 0.2 ms of every invocation. Daemons, as a running
        # handler must not hold up the interpreter's exit. ``_spare_waiters`` (under ``_lock``)
        # counts those idle in ``_jobs.get``.
        self._jobs: queue.SimpleQueue[tuple[_Worker, Invocation, bool] | None] = queue.SimpleQueue()
        self._spare_waiters = 0

    def free_slots(self) -> int:
        with self._lock:
            return self.size - len(self._busy)

    def running(self) -> list[Invocation]:
        with self._lock:
            return [invocation for _, invocation in self._busy.values()]

    def submit(self, invocation: Invocation) -> None:
        """Starts the invocation on a warm worker of its function (starting one if needed)."""
        try:
            spec = self.registry.spec_for(invocation.function_name, invocation.function_version)
        except PerdureError as error:
            failure = ErrorObject(message=error.message, type=error.code)
            self._record(lambda: self.service.fail_invocation(invocation, failure))
            self.on_finished(invocation)
            return
        with self._lock:
            worker, evicted = self._take_idle(spec)
            self._busy[invocation.execution_arn] = (worker, invocation)
            spare = self._spare_waiters > 0
            if spare:
                self._spare_waiters -= 1
        # Killing a process and starting one take tens of milliseconds, or much more on a loaded
        # machine: done outside the lock, so the scheduler and the API asking what runs never wait.
        if evicted is not None:
            evicted.kill()
        if worker is None:
            worker = self._spawner.submit(_Worker, self.settings, spec).result()
            with self._lock:
                self._busy[invocation.execution_arn] = (worker, invocation)
                closing = self._closed
            if closing:
                self._drop_started(worker, invocation, spare)
                return
        # A warm worker gets the invocation from this thread at once; the waiting thread only
        # waits for its end. (A failed send is retried there, and recorded if it fails again.)
        sent = False
        if worker.ready:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(invocation)
                sent = True
        if not spare:
            threading.Thread(target=self._wait_for_jobs, name="perdure-invoke", daemon=True).start()
        self._jobs.put((worker, invocation, sent))

    def _drop_started(self, worker: _Worker, invocation: Invocation, spare: bool) -> None:
        """Ends an invocation whose worker finished starting after ``close`` killed the others.

        It is recorded as lost, as theirs are, and resumes from its last checkpoint when a
        server runs again.
        """
        worker.kill()
        if spare:
            self._jobs.put(None)  # the waiting thread it took was not among those close released
        error = ErrorObject(
            message="The invocation was lost: the server stopped while its worker process started.",
            type=LOST_INVOCATION.type,
        )
        self._record(lambda: self.service.fail_invocation(invocation, error, lost=True))
        with self._lock:
            self._busy.pop(invocation.execution_arn, None)
        self.on_finished(invocation)

    def _wait_for_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._run(*job)
            with self._lock:
                if self._closed:
                    return
                self._spare_waiters += 1

    def _take_idle(self, spec: FunctionSpec) -> tuple[_Worker | None, _Worker | None]:
        """(An idle worker of ``spec``, or None if one must start; an idle worker to kill to make room, if any)."""
        for worker in self._idle:
            if worker.spec == spec:
                self._idle.remove(worker)
                return worker, None
        if len(self._idle) + len(self._busy) >= self.size and self._idle:
            return None, self._idle.pop(0)
        return None, None

    def _run(self, worker: _Worker, invocation: Invocation, sent: bool) -> None:
        keep = False
        try:
            keep = self._invoke(worker, invocation, sent)
        except Exception as error:  # noqa: BLE001 - a broken pipe or similar must not lose the invocation
            failure = ErrorObject(message=f"The worker failed: {error}", type="Runtime.WorkerError")
            self._record(lambda: self.service.fail_invocation(invocation, failure))
        finally:
            with self._lock:
                self._busy.pop(invocation.execution_arn, None)
                if keep and not self._closed:
                    self._idle.append(worker)
                else:
                    worker.kill()
            self.on_finished(invocation)

    def _invoke(self, worker: _Worker, invocation: Invocation, sent: bool) -> bool:
        """Runs one invocation (already sent to the worker, if ``sent``); returns whether the worker is fit to be reused."""
        if not worker.ready:
            failure = self._start_failure(worker)
            if failure is not None and self._closed:
                # ``close`` killed it while it imported: lost, as when it kills one mid-run. (Its
                # exit code cannot tell: close's thread may be reaping the process at this moment.)
                error = ErrorObject(
                    message="The invocation was lost: the server stopped while its worker process imported the handler.",
                    type=LOST_INVOCATION.type,
                )
                self._record(lambda: self.service.fail_invocation(invocation, error, lost=True))
                return False
            if failure is not None:
                error = ErrorObject(message=failure, type="Runtime.ImportModuleError")
                self._record(lambda: self.service.fail_invocation(invocation, error))
                return False
            worker.ready = True
        if not sent:
            worker.conn.send(invocation)
        timeout = worker.spec.timeout_seconds
        message = self._receive(worker, timeout)
        lost = False
        if message is _TIMED_OUT:
            # Killed now, its spool file kept until the lines are read (worker.kill, later, removes it).
            worker.process.kill()
            worker.process.join(5)
            error = ErrorObject(
                message=f"Task timed out after {timeout} seconds; it resumes from its last checkpoint.",
                type="Sandbox.Timedout",
            )
        elif message is None and (self._closed or worker.killed()):
            # SIGKILL comes from outside the handler as a rule (an operator, a chaos test, this
            # pool's own close, the system's out-of-memory killer), so it does not count against
            # the handler's attempts; a handler that kills itself so is bounded as a lost one.
            # While the pool closes, its exit code may not be known yet (close's thread reaps it).
            lost = True
            error = ErrorObject(
                message=f"The invocation was lost: {worker.describe_exit()}.", type=LOST_INVOCATION.type
            )
        elif message is None:
            # It exited or crashed on its own (os._exit, a segfault, an abort): the handler's doing.
            error = ErrorObject(
                message=f"The invocation crashed: {worker.describe_exit()}.", type="Runtime.ExitError"
            )
        else:
            if isinstance(message, _Unrecorded):
                report = message.report
                self._record(lambda: record_report(self.service, invocation, report))
            return worker.process.is_alive()
        # The lines it wrote before it died or was killed: kept before its end is recorded
        # (and lost if the disk is full, rather than hold up the end).
        with contextlib.suppress(StorageFullError):
            self.service.append_logs(invocation.execution_arn, read_spool(worker.spool_path, invocation.invocation))
        self._record(lambda: self.service.fail_invocation(invocation, error, lost=lost))
        return False

    def _record(self, write: Callable[[], object]) -> None:
        """Runs ``write``, which records an invocation's end, again while the store's disk is full.

        Tried every STORE_RETRY_SECONDS until it works or the pool closes; the invocation's
        lease then lapses, and it resumes from its last checkpoint when a server runs again.
        """
        reported = False
        while True:
            try:
                write()
                return
            except StorageFullError as error:
                if self._closed:
                    return
                if not reported:
                    logger.warning("%s The end of an invocation is recorded once it can be.", error.message)
                    reported = True
                time.sleep(STORE_RETRY_SECONDS)

    def _start_failure(self, worker: _Worker) -> str | None:
        """Waits for a new worker to import its handler; returns why it could not, if so."""
        message = self._receive(worker, STARTUP_TIMEOUT_SECONDS)
        if message is _TIMED_OUT:
            worker.kill()
            return f"Importing the handler took more than {STARTUP_TIMEOUT_SECONDS:.0f} seconds."
        if message is None:
            return f"The handler could not be imported: {worker.describe_exit()}."
        return message.message if isinstance(message, _LoadFailed) else None

    @staticmethod
    def _receive(worker: _Worker, timeout: float) -> _FromWorker | _Silence | None:
        """Returns the worker's next message, None if it died, or _TIMED_OUT."""
        try:
            if not worker.conn.poll(timeout):
                return _TIMED_OUT
            message: _FromWorker = worker.conn.recv()
        except (EOFError, OSError):
            return None
        return message

    def close(self, grace_seconds: float = 10.0) -> None:
        """Lets running invocations finish for up to ``grace_seconds``, then kills every worker.

        An invocation still running then is recorded as crashed and resumes from its last
        checkpoint when a server runs again.
        """
        deadline = time.monotonic() + grace_seconds
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            spare, self._spare_waiters = self._spare_waiters, 0
        for _ in range(spare):
            self._jobs.put(None)
        for worker in idle:
            worker.kill()
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            busy = [worker for worker, _ in self._busy.values() if worker is not None]
        for worker in busy:
            worker.kill()
        self._spawner.shutdown()
