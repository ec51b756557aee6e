"""One process's runtime: its worker pool, scheduler and purger, started and stopped together."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from perdure.protocol.log_context import LogContext
from perdure.protocol.records import Execution, Invocation
from perdure.runtime.heap import freeze_startup_heap
from perdure.runtime.leases import lease_owner_id
from perdure.runtime.purger import Purger
from perdure.runtime.registry import Registry
from perdure.runtime.scheduler import LEASE_SECONDS, Scheduler
from perdure.runtime.workers import DEFAULT_SLOTS, WorkerPool, WorkerSettings
from perdure.service.executions import DurableService, StartRequest, StartResult

logger = logging.getLogger(__name__)

# How many executions ``Runtime.start_executions`` starts in one transaction: 1,000 one-step
# executions of a 1-s step ended 0.1 s sooner in chunks of 50-200 than in one (issue 14).
START_CHUNK = 100


class Runtime:
    """Runs registered functions for the executions in a store, on ``workers`` processes of ``slots`` invocations each."""

    def __init__(
        self, service: DurableService, registry: Registry, settings: WorkerSettings, workers: int, slots: int = DEFAULT_SLOTS
    ) -> None:
        self.service = service
        self.registry = registry
        self._listeners: list[Callable[[Invocation, Execution | None], None]] = []
        self._lock = threading.Lock()
        # Worker processes build their own service, which must know the same functions.
        settings = dataclasses.replace(settings, functions=registry.defaults())
        self.pool = WorkerPool(service, registry, settings, workers, self._finished, slots)
        self.scheduler = Scheduler(service, self.pool, lease_owner_id(locked=True))
        self.purger = Purger(service)

    def add_listener(self, listener: Callable[[Invocation, Execution | None], None]) -> None:
        """Calls ``listener`` (from a worker thread) each time an invocation ends, with the execution if it ended then.

        The execution is given only when it ended with that invocation and its result is small;
        None says nothing: read it from the store.
        """
        with self._lock:
            self._listeners.append(listener)

    def _finished(self, invocation: Invocation, execution: Execution | None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(invocation, execution)
            except Exception:
                # Called from the thread that reads a worker process's messages: a listener's
                # failure must not stop it.
                fields = LogContext.of_invocation(invocation).fields()
                message = "A listener of ended invocations failed on invocation %d of %s."
                logger.exception(message, invocation.invocation, invocation.execution_arn, extra=fields)
        self.scheduler.poke()

    def poke(self) -> None:
        self.scheduler.poke()

    def start_execution(self, request: StartRequest) -> StartResult:
        """Starts an execution and, while this process has a free place, hands it to a worker at once.

        The scheduler would lease it on its next pass; leasing it in the start's own transaction
        saves that pass's wake-up, its reads and its write transaction on the invoke path, and
        the worker is sent the new execution's journal, so it reads nothing before running it
        (issue 14). With no free place it waits, ready, for the scheduler, which shares the
        places fairly.
        """
        (result,) = self.start_executions([request])
        return result

    def start_executions(self, requests: Sequence[StartRequest]) -> list[StartResult]:
        """Starts executions, handing to workers as many as there are free places.

        They are started ``START_CHUNK`` at a time, each chunk in one transaction
        (``DurableService.start_many``) whose new executions go to workers as soon as it commits,
        while the next is written: a thousand in one transaction kept the first from running
        until the last was written (0.12 s), and the workers idle until then (issue 14). If one
        chunk fails, those before it are started, and the error is raised.
        """
        chunks = (requests[start : start + START_CHUNK] for start in range(0, len(requests), START_CHUNK))
        return [result for chunk in chunks for result in self._start_chunk(chunk)]

    def _start_chunk(self, requests: Sequence[StartRequest]) -> list[StartResult]:
        served = {spec.name for spec in self.registry}
        # Only what this process serves runs here; others are left to the servers that do.
        free = self.pool.free_slots() if all(request.function_name in served for request in requests) else 0
        started = self.service.start_many(requests, self.scheduler.owner, LEASE_SECONDS, max(0, free))
        self.pool.submit(*(invocation for _, invocation in started if invocation is not None))
        if any(result.created and invocation is None for result, invocation in started):
            self.scheduler.poke()
        return [result for result, _ in started]

    def start(self) -> None:
        """Starts the scheduler and purger, and returns at once.

        The API is served as soon as this returns, while the work found at start (executions
        that a server on this host left running when it died among it) goes to workers that
        start behind it: waiting for them to import their handlers kept the API down for
        seconds after every restart (issue 11, finding 14).
        """
        freeze_startup_heap()
        self.scheduler.start()
        self.purger.start()

    def stop(self) -> None:
        self.purger.stop()
        self.scheduler.stop()
        self.pool.close()


def wait_for_stop_signal(ready: Callable[[], None] | None = None) -> int:
    """Blocks until SIGTERM or SIGINT arrives, and returns it; call it from the main thread.

    ``ready`` is called once the handlers are in place: a "running" message printed there is
    a promise that a signal from then on stops the process gracefully. The handlers go back
    to the defaults when it returns, so a second signal ends the process at once, whatever
    it is doing then (an impatient Ctrl-C during a graceful stop).
    """
    received: list[int] = []
    arrived = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        arrived.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    if ready is not None:
        ready()
    try:
        # Timed, so that the signal is seen within a second on a platform whose blocked wait
        # a signal does not interrupt.
        while not arrived.wait(1.0):
            pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
    return received[0]
