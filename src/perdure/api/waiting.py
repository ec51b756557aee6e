"""Waiting, in the event loop, for an execution to end (a RequestResponse invoke)."""

from __future__ import annotations

import asyncio
import time
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from perdure.protocol.records import Execution, Invocation
from perdure.service.executions import DurableService, StartRequest, StartResult

# Some endings reach no listener (an execution timeout fired by a timer, a stop sent to another
# server sharing the database), so a waiter also looks at the store this often.
POLL_SECONDS = 0.5
# How many executions that just ended, as the runtime reported them, are kept for waiters: one
# may ask only after its execution ended (it starts, is leased and runs before the request's
# coroutine waits), and then finds it here instead of reading the store.
RECENT_ENDINGS = 1000


class CompletionWaiter:
    """Wakes coroutines waiting on an execution when an invocation of it ends."""

    def __init__(
        self,
        service: DurableService,
        poke_runtime: Callable[[], None] | None = None,
        start_in_runtime: Callable[[StartRequest], StartResult] | None = None,
    ) -> None:
        self.service = service
        self._poke = poke_runtime
        self._start = start_in_runtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._recent: OrderedDict[str, Execution] = OrderedDict()
        self._recent_lock = threading.Lock()

    def start(self, request: StartRequest) -> StartResult:
        """Starts an execution (blocking: call it in a thread), through the runtime where it can run it at once."""
        if self._start is not None:
            return self._start(request)
        result = self.service.start_execution(request)
        self.started()
        return result

    def started(self) -> None:
        """Tells the runtime that an execution is ready to run."""
        if self._poke is not None:
            self._poke()

    def woke(self, execution: Execution) -> None:
        """Tells the runtime that a callback made an execution ready again."""
        self.started()
        self.notify(execution.arn)

    def invocation_finished(self, invocation: Invocation, execution: Execution | None) -> None:
        """Runtime listener; called from worker threads, with the execution if it ended."""
        if execution is not None:
            with self._recent_lock:
                self._recent[execution.arn] = execution
                if len(self._recent) > RECENT_ENDINGS:
                    self._recent.popitem(last=False)
        self.notify(invocation.execution_arn)

    def _ended(self, arn: str) -> Execution | None:
        with self._recent_lock:
            return self._recent.pop(arn, None)

    def notify(self, arn: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set, arn)

    def _set(self, arn: str) -> None:
        for event in self._waiting.get(arn, ()):
            event.set()

    async def wait(self, arn: str, timeout: float, started: Execution | None = None) -> Execution:
        """Returns the execution once it has ended, or as it is after ``timeout`` seconds.

        An execution suspended on what cannot come within ``timeout`` (a callback, a longer
        wait) is returned as it is, RUNNING, once its invocation has ended: a caller waiting for
        a person's approval is not held until the function's timeout (which boto3 gives up on
        at 60 s, and then retries). Waits that end sooner and chained invokes are waited for.
        ``started`` is the execution as the caller just started it: not read again first.
        """
        self._loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        self._waiting[arn].add(event)
        try:
            while True:
                event.clear()
                execution = self._ended(arn) or started
                if execution is None:
                    execution = await run_in_threadpool(self.service.get_execution, arn)
                started = None
                remaining = deadline - time.monotonic()
                if execution.status.is_terminal or remaining <= 0:
                    return execution
                if _suspended(execution) and await run_in_threadpool(self.service.waits_beyond, arn, time.time() + remaining):
                    return execution
                try:
                    await asyncio.wait_for(event.wait(), min(POLL_SECONDS, remaining))
                except TimeoutError:
                    pass
        finally:
            self._waiting[arn].discard(event)
            if not self._waiting[arn]:
                del self._waiting[arn]


def _suspended(execution: Execution) -> bool:
    """Whether the execution's last invocation has ended and nothing runs it until a timer or callback does."""
    return execution.invocation > 0 and execution.ready_time is None and execution.lease_owner is None
