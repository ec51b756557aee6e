"""The worker process's side of the pool: what it is sent, what it answers, and its main loop.

A worker process (``worker_main``) opens its own connection to the service, imports each
handler of its code folder once, as its first invocation comes, and runs each invocation it is
sent in a thread of its own, recording the invocation's end in the store itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import multiprocessing.connection
import os
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from perdure.errors import FunctionLoadError, StoreUnavailableError
from perdure.protocol.log_context import LogContext, about
from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.records import ErrorObject, Execution, Invocation
from perdure.protocol.secret import load_secret
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import sdk_tuning
from perdure.runtime.heap import freeze_startup_heap
from perdure.runtime.invoker import InvocationReport, record_report, run_invocation
from perdure.runtime.logcapture import LogCapture, capturing, keep_logs
from perdure.runtime.node_binary import is_node_runtime
from perdure.runtime.node_worker import NodeRuns
from perdure.runtime.registry import FunctionSpec, load_handler
from perdure.runtime.server_log import log_worker_runtime
from perdure.service.executions import DurableService, ServiceConfig
from perdure.service.functions import FunctionDefaults, lookup_of
from perdure.store import open_store
from perdure.store.blobs import BlobConfig
from perdure.telemetry import metrics, tracing
from perdure.telemetry.metrics import Observation


# An execution that ended is sent back to the pool with its invocation's end, so that a waiting
# synchronous invoke answers without reading it again; one with a larger result or input is read.
CARRIED_RESULT_CHARS = 64 * 1024


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
    # The server's --log-format is json: the worker's own lines on stderr are JSON lines too.
    json_log: bool = False
    # The server's public base URL, under which ``ctx.callback_link`` makes links; None: no links.
    public_url: str | None = None
    # The Node.js binary of Node functions (``--node``); None: PERDURE_NODE, else ``node`` on PATH.
    node: str | None = None


# What the pool sends a worker over its pipe (a list of ``Run``, all it places there at once), and
# what the worker sends back (lists of ``Ready`` and ``Ended``, see ``_Outbox``; spans go to a spool file).
# ``token`` names an invocation in flight between the two.
@dataclass(frozen=True)
class Run:
    """Run ``invocation`` of ``spec``'s function."""

    token: int
    spec: FunctionSpec
    invocation: Invocation


@dataclass(frozen=True)
class Ready:
    """The worker process is up and takes invocations."""


@dataclass(frozen=True)
class Ended:
    """An invocation ended: its end is in the store, unless ``unrecorded`` (a full disk) or ``load_failure``."""

    token: int
    # The report the pool must record, because a full disk kept the worker from recording it.
    unrecorded: InvocationReport | None = None
    # Why the handler could not be imported: the pool fails the invocation with it.
    load_failure: str | None = None
    # The process ran out of memory: it takes no more invocations.
    retire: bool = False
    # The execution as the invocation's end left it, if it ended then (see ``CARRIED_RESULT_CHARS``).
    execution: Execution | None = None
    # What this process recorded for metrics since its last Ended (``perdure.telemetry.metrics.forward``).
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True)
class ProcessKey:
    """What makes worker processes interchangeable: the same code folder and the same memory limit.

    One process imports every function of its code folder (the files of one version's bundle
    share ``sys.modules`` safely; two versions' files of the same name would not), and a
    memory limit is per process, so a function with ``memory_mb`` has processes of its own.
    """

    code_folder: Path
    memory_mb: int | None


def process_key(spec: FunctionSpec) -> ProcessKey:
    return ProcessKey(spec.code_folder, spec.memory_mb)


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: if the server is killed, its workers go too instead of lingering.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)
    except OSError:
        pass


def worker_main(
    conn: multiprocessing.connection.Connection,
    settings: WorkerSettings,
    key: ProcessKey,
    slots: int,
    spool_dir: str,
    span_spool: Path | None,
) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if span_spool is not None:
        # The server's export process reads and exports the spans recorded here from the spool,
        # also those recorded just before this process dies.
        tracing.spool_to(span_spool)
    log_worker_runtime(settings.json_log)
    if key.memory_mb:
        limit = key.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    sdk_tuning.apply()
    # Nobody scrapes this process: what it records goes to the server with each invocation's end.
    metrics.forward()
    # The service's own reads of snapshots (a restart's copies) use the key the server configured.
    secret = load_secret(settings.data_dir)
    codec = SnapshotCodec(secret)
    # Links are signed with the server secret, so that the server's approval page can check them.
    links = ApprovalLinks(secret, settings.public_url) if settings.public_url else None
    service = DurableService(
        open_store(settings.db_url, settings.blobs),
        settings.service_config,
        functions=lookup_of(settings.functions),
        snapshots=codec,
    )
    handlers = _Handlers()
    # Node functions of this code folder run in one Node child, started when the first is sent.
    node = NodeRuns(settings.node, service, key.memory_mb)
    outbox = _Outbox(conn)

    def run(job: Run) -> None:
        try:
            with about(LogContext.of_invocation(job.invocation)):
                outbox.send(_run_job(service, codec, links, handlers, node, job, os.path.join(spool_dir, f"{job.token}.log")))
        except BaseException as error:  # noqa: BLE001 - whatever happens, the pool hears of the invocation
            crash = ErrorObject(message=f"The worker failed: {error!r}", type="Runtime.WorkerError")
            outbox.send(Ended(job.token, unrecorded=InvocationReport(None, crash)))

    # Up to ``slots`` invocations at once, each in a thread of its own; the pool sends no more.
    threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="perdure-invocation")
    freeze_startup_heap()
    outbox.send(Ready())
    while True:
        try:
            jobs: list[Run] = conn.recv()
        except EOFError:
            # The pool closed the pipe: it kills this process next. Running threads are not
            # waited for: they could be stuck for good. The spans recorded so far are in the spool;
            # those of the handlers' own instrumentation are sent now.
            tracing.flush()
            os._exit(0)
        for job in jobs:
            threads.submit(run, job)


class _Outbox:
    """Sends the pool what the worker has to say, many messages in one when they come at once.

    The pipe carries lists of messages. A thread with a message to send sends every message
    waiting, unless another thread is sending, which then sends it next: a thousand
    invocations ending together each pickled and wrote its end alone, and the pool read and
    handled each alone too (issue 14).
    """

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self._conn = conn
        self._waiting: list[Ready | Ended] = []
        self._lock = threading.Lock()
        self._sending = threading.Lock()

    def send(self, message: Ready | Ended) -> None:
        with self._lock:
            self._waiting.append(message)
        # Whichever thread holds ``_sending`` looks for waiting messages once it lets it go.
        while self._sending.acquire(blocking=False):
            try:
                with self._lock:
                    messages, self._waiting = self._waiting, []
                if messages:
                    self._conn.send(_with_observations(messages))
            finally:
                self._sending.release()
            with self._lock:
                if not self._waiting:
                    return


def _with_observations(messages: list[Ready | Ended]) -> list[Ready | Ended]:
    """The messages, their last invocation end (if any) carrying what this process recorded for metrics since the last."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, Ended):
            messages[index] = dataclasses.replace(message, observations=tuple(metrics.take_forwarded()))
            break
    return messages


class _Handlers:
    """The handlers a worker process imported, each once, whichever thread asks first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[Path, str], Callable[..., object]] = {}

    def get(self, spec: FunctionSpec) -> Callable[..., object]:
        with self._lock:
            key = (spec.file, spec.attribute)
            if key not in self._loaded:
                self._loaded[key] = load_handler(spec)
            return self._loaded[key]


def _run_job(
    service: DurableService,
    codec: SnapshotCodec,
    links: ApprovalLinks | None,
    handlers: _Handlers,
    node: NodeRuns,
    job: Run,
    spool_path: str,
) -> Ended:
    """Runs one invocation in this thread, records its end and says how it went."""
    invocation = job.invocation
    # Each line is written to the spool file at once, so that the parent can keep the lines of an
    # invocation whose process died (see ``LogCapture``); removed once the invocation's end is recorded.
    captured = LogCapture(invocation.invocation, spool_path)
    try:
        if is_node_runtime(job.spec.runtime):
            report = node.run(job.spec, invocation, captured)
        else:
            handler = handlers.get(job.spec)
            with capturing(captured):
                report = run_invocation(service, job.spec, handler, invocation, codec, links)
    except FunctionLoadError as error:
        _remove_spool(captured, spool_path)
        return Ended(job.token, load_failure=error.message)
    finally:
        captured.close()
    keep_logs(service, invocation.execution_arn, captured)
    try:
        execution = record_report(service, invocation, report)
    except StoreUnavailableError:
        # The pool records it once the store can write again (its disk has room, its database is back). A worker that died here
        # failed every invocation sent to it while the disk was full (issue 11, finding 13).
        return Ended(job.token, unrecorded=report, retire=report.out_of_memory)
    finally:
        _remove_spool(captured, spool_path)
    ended = execution if execution is not None and execution.status.is_terminal else None
    if ended is not None and len(ended.result or "") + len(ended.input_payload or "") > CARRIED_RESULT_CHARS:
        ended = None
    return Ended(job.token, retire=report.out_of_memory, execution=ended)


def _remove_spool(captured: LogCapture, path: str) -> None:
    if captured.spooled:
        with contextlib.suppress(OSError):
            os.unlink(path)
