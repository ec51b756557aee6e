"""``async def`` durable functions: the context they await, and the event loop they share.

Every async durable function of a process runs on one event loop, in a thread of its own
(``shared_loop``), so that many invocations waiting on I/O cost one thread between them. An
operation of ``AsyncContext`` runs the same journal logic as ``Context`` (recording, replay,
retries, suspension) in a thread of ``_OPERATIONS``, so a database commit never blocks the
loop; a coroutine the operation runs (``await ctx.step(fetch, url)`` with ``async def
fetch``) goes back to the loop, and the operation's thread waits for it.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from perdure.sdk.context import Callback, Context, Duration, RetryPolicy

T = TypeVar("T")

# Operations of async functions in flight at once, per process: each holds a thread while its
# coroutine (an LLM or HTTP call, say) runs on the loop. Threads start only as they are needed.
OPERATION_THREADS = 1000

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_OPERATIONS = ThreadPoolExecutor(max_workers=OPERATION_THREADS, thread_name_prefix="perdure-async-operation")


def shared_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for async durable functions, started on first use in a daemon thread."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="perdure-event-loop", daemon=True).start()
            _loop = loop
        return _loop


def run_on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs ``coroutine`` on the shared loop and waits for it in the calling thread (never the loop's)."""
    return asyncio.run_coroutine_threadsafe(coroutine, shared_loop()).result()


def _in_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` made callable from an operation's thread: what it returns to await (``async def``, or
    ``lambda c: c.step(...)``) is awaited on the loop."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        return run_on_loop(_awaited(value)) if inspect.isawaitable(value) else value

    return call


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def off_loop(call: Callable[[], T]) -> T:
    """Runs ``call`` (journal work: it commits) in an operation thread, so the loop goes on meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_OPERATIONS, call)


class AsyncCallback:
    """A callback of an async function: ``await callback.result()`` waits for it."""

    def __init__(self, callback: Callback) -> None:
        self._callback = callback
        self.callback_id = callback.callback_id

    async def result(self) -> Any:
        return await off_loop(self._callback.result)


class AsyncContext:
    """What an ``async def`` durable function receives as ``ctx``: ``Context``'s operations, awaited.

    Callables given to an operation may be plain functions or coroutine functions; those of
    ``map``, ``parallel`` and ``run_in_child_context`` receive an ``AsyncContext`` too.
    """

    def __init__(self, context: Context) -> None:
        self._context = context

    @property
    def logger(self) -> Any:
        return self._context.logger

    @property
    def replaying(self) -> bool:
        return self._context.replaying

    def checkpoint(self) -> None:
        self._context.checkpoint()

    async def step(
        self,
        fn: Callable[..., T] | Callable[..., Awaitable[T]],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        at_most_once: bool = False,
        **kwargs: Any,
    ) -> T:
        """As ``Context.step``; ``fn`` may be ``async def``."""
        name = name or str(getattr(fn, "__name__", "step"))
        step: Callable[[], Any] = functools.partial(
            self._context.step, _in_thread(fn), *args, name=name, retry=retry, at_most_once=at_most_once, **kwargs
        )
        return cast(T, await off_loop(step))

    async def wait(self, duration: Duration | None = None, *, seconds: float | None = None, name: str | None = None) -> None:
        await off_loop(functools.partial(self._context.wait, duration, seconds=seconds, name=name))

    async def wait_for_condition(
        self,
        check: Callable[[Any], Any],
        initial_state: Any = None,
        *,
        until: Callable[[Any], bool],
        every: Duration = 5,
        max_attempts: int | None = None,
        name: str | None = None,
    ) -> Any:
        condition = functools.partial(
            self._context.wait_for_condition, _in_thread(check), initial_state,
            until=until, every=every, max_attempts=max_attempts, name=name or getattr(check, "__name__", None),
        )  # fmt: skip
        return await off_loop(condition)

    async def create_callback(
        self, name: str | None = None, *, timeout: Duration | None = None, heartbeat_timeout: Duration | None = None
    ) -> AsyncCallback:
        create = functools.partial(self._context.create_callback, name, timeout=timeout, heartbeat_timeout=heartbeat_timeout)
        return AsyncCallback(await off_loop(create))

    async def wait_for_callback(
        self,
        submitter: Callable[[str], Any],
        name: str | None = None,
        *,
        timeout: Duration | None = None,
        heartbeat_timeout: Duration | None = None,
    ) -> Any:
        """As ``Context.wait_for_callback``; ``submitter`` may be ``async def``."""
        waiting = functools.partial(
            self._context.wait_for_callback, _in_thread(submitter), name, timeout=timeout, heartbeat_timeout=heartbeat_timeout
        )
        return await off_loop(waiting)

    def callback_link(
        self, callback: AsyncCallback | str, *, summary: str = "", expires: Duration = datetime.timedelta(days=3)
    ) -> str:
        """As ``Context.callback_link``; not awaited (it signs a link, and records nothing)."""
        callback_id = callback.callback_id if isinstance(callback, AsyncCallback) else callback
        return self._context.callback_link(callback_id, summary=summary, expires=expires)

    async def invoke(self, function_name: str, payload: Any = None, *, name: str | None = None, tenant_id: str | None = None) -> Any:
        return await off_loop(functools.partial(self._context.invoke, function_name, payload, name=name, tenant_id=tenant_id))

    async def run_in_child_context(self, fn: Callable[[AsyncContext], Any], name: str | None = None) -> Any:
        return await off_loop(functools.partial(self._context.run_in_child_context, _with_async_context(fn), name))

    async def map(
        self, items: Sequence[Any], fn: Callable[[AsyncContext, Any, int], Any], name: str | None = None, *, max_concurrency: int | None = None
    ) -> list[Any]:
        mapping = functools.partial(self._context.map, items, _with_async_context(fn), name, max_concurrency=max_concurrency)
        return await off_loop(mapping)

    async def parallel(
        self, branches: Sequence[Callable[[AsyncContext], Any]], name: str | None = None, *, max_concurrency: int | None = None
    ) -> list[Any]:
        wrapped = [_with_async_context(b) for b in branches]
        return await off_loop(functools.partial(self._context.parallel, wrapped, name, max_concurrency=max_concurrency))


def _with_async_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A callable of ``(Context, ...)`` for the journal, calling ``fn`` with an ``AsyncContext`` instead."""
    called = _in_thread(fn)

    def call(context: Context, *args: Any) -> Any:
        return called(AsyncContext(context), *args)

    return call
