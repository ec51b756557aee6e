"""``Context``: the operations a seed-style durable function calls on ``ctx``.

They keep the AWS SDK's names and meanings and record the same operation types, so a
history reads alike whichever style wrote it. Each operation gets an ID from its position in
the function's run (``"3"``, or ``"3-2"`` inside child context ``3``); when a run is resumed,
operations already recorded at their position return their recorded outcome instead of
running again.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from perdure.errors import CallbackTimedOutError, DurableFunctionError, InvalidParameterError
from perdure.protocol.records import ErrorObject, OperationAction, OperationStatus, OperationType, OperationUpdate
from perdure.protocol.trace_context import operation_span
from perdure.sdk.journal import Journal, Suspend, failure
from perdure.telemetry import tracing

T = TypeVar("T")
# The most branches of one ``map`` or ``parallel`` that run at once.
MAX_BRANCH_THREADS = 1000
Duration = datetime.timedelta | float | int


def seconds_of(duration: Duration | None, seconds: float | None = None) -> int:
    """Whole seconds of a ``timedelta`` or a number (at least 1)."""
    value = seconds if seconds is not None else duration
    if value is None:
        raise InvalidParameterError("Give a duration: ctx.wait(seconds=30) or ctx.wait(timedelta(minutes=5)).")
    total = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if total < 1:
        raise InvalidParameterError(f"A wait lasts at least 1 second, not {total:g}.")
    return int(round(total))


def error_object(error: BaseException) -> ErrorObject:
    """The protocol's ErrorObject for an exception: its qualified type and its message."""
    if isinstance(error, DurableFunctionError) and getattr(error, "error_type", None):
        return ErrorObject(message=str(error), type=getattr(error, "error_type"))
    cls = type(error)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return ErrorObject(message=str(error), type=f"{module}{cls.__qualname__}")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(
            f"The result of {what} cannot be saved as JSON ({error}). Return data made of dicts, "
            "lists, strings, numbers, booleans and None."
        ) from None


def _invoke_input(value: Any, function_name: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(
            f"The input of ctx.invoke({function_name!r}, ...) cannot be sent as JSON ({error}). Pass data "
            "made of dicts, lists, strings, numbers, booleans and None."
        ) from None


def _loads(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed step is tried again: exponential backoff with full jitter by default."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: bool = True

    def delay(self, attempt: int) -> int:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1))
        return max(1, round(random.uniform(0, ceiling) if self.jitter else ceiling))


NO_RETRY = RetryPolicy(max_attempts=1)
DEFAULT_RETRY = RetryPolicy()


class _ReplayAwareLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that stays quiet while a resumed run replays what already happened."""

    def __init__(self, logger: logging.Logger, context: Context) -> None:
        super().__init__(logger, {})
        self._context = context

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self._context.replaying:
            super().log(level, msg, *args, **kwargs)


class Callback:
    """A callback an external system completes with its ID; ``result()`` waits for it."""

    def __init__(self, context: Context, op_id: str, callback_id: str) -> None:
        self._context = context
        self._op_id = op_id
        self.callback_id = callback_id

    def result(self) -> Any:
        """The callback's result; suspends the execution until it arrives."""
        op = self._context.journal.operations[self._op_id]
        if op.status is OperationStatus.SUCCEEDED:
            return _loads(op.result)
        if op.status is OperationStatus.TIMED_OUT:
            error = op.error or ErrorObject()
            raise CallbackTimedOutError(error.message or "The callback timed out.", error.type)
        if op.status.is_terminal:
            raise failure(op, "Callback")
        raise Suspend(f"waiting for callback {self.callback_id}")


class Context:
    """What a durable function receives as ``ctx``."""

    def __init__(self, journal: Journal, function_name: str, parent_id: str | None = None, counter: int = 0) -> None:
        self.journal = journal
        self.parent_id = parent_id
        self.counter = counter
        self.replaying = False
        self.function_name = function_name
        self.logger = _ReplayAwareLogger(logging.getLogger(f"perdure.functions.{function_name}"), self)

    def checkpoint(self) -> None:
        """Saves the function's state; the run resumes right after it.

        The decorator turns ``ctx.checkpoint()`` statements into resumable points; calling it
        any other way (from a helper function, say) reaches this method, which refuses.
        """
        raise DurableFunctionError(
            "ctx.checkpoint() was called from a helper function or an operation's callable, where "
            "it cannot be resumed. Call it as a statement in the @durable.function itself."
        )

    def _next_id(self) -> str:
        self.counter += 1
        return f"{self.parent_id}-{self.counter}" if self.parent_id else str(self.counter)

    def _recorded(self, op_id: str, type_: OperationType, name: str | None, sub_type: str) -> Any:
        op = self.journal.recorded(op_id, type_, name, sub_type)
        if op is None or not op.status.is_terminal or self._peek_id() not in self.journal.operations:
            # What runs from here on is new (this was the last operation recorded in this
            # context): the replay-aware logger speaks again.
            self.replaying = False
        return op

    def _peek_id(self) -> str:
        following = self.counter + 1
        return f"{self.parent_id}-{following}" if self.parent_id else str(following)

    def _write(self, *updates: OperationUpdate) -> None:
        self.journal.write(list(updates))

    def _update(self, op_id: str, type_: OperationType, action: OperationAction, name: str | None, sub_type: str, **fields: Any) -> OperationUpdate:
        return OperationUpdate(id=op_id, type=type_, action=action, parent_id=self.parent_id, name=name, sub_type=sub_type, **fields)

    # -- steps --------------------------------------------------------------------------------

    def step(
        self,
        fn: Callable[..., T],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        at_most_once: bool = False,
        **kwargs: Any,
    ) -> T:
        """Runs ``fn(*args, **kwargs)`` once and records its result; replays return the record.

        A failure is retried by ``retry`` (by default 3 attempts with backoff and jitter),
        each retry after a durable wait. ``at_most_once`` records the start before running, so
        an attempt interrupted by a crash counts as failed instead of running again.
        """
        name = name or str(getattr(fn, "__name__", "step"))
        policy = retry or DEFAULT_RETRY
        op_id = self._next_id()
        op = self._recorded(op_id, OperationType.STEP, name, "Step")
        if op is not None:
            if op.status is OperationStatus.SUCCEEDED:
                return _loads(op.result)  # type: ignore[no-any-return]
            if op.status is OperationStatus.FAILED:
                raise failure(op, "Step")
            if op.status is OperationStatus.PENDING:
                raise Suspend(f"step {name} retries later")
            if op.status is OperationStatus.STARTED and at_most_once:
                interrupted = ErrorObject(
                    message=f"Step {name!r} was interrupted and runs at most once.", type="StepInterruptedError"
                )
                self._fail_attempt(op_id, name, op.attempt + 1, policy, interrupted, None)
        attempt = (op.attempt if op else 0) + 1
        start = [] if op is not None and op.status is OperationStatus.STARTED else [self._update(op_id, OperationType.STEP, OperationAction.START, name, "Step", started_at=self.journal.now())]
        if at_most_once and start:
            self._write(*start)
            start = []
        try:
            if self.journal.trace is None:
                value = fn(*args, **kwargs)
            else:
                # Spans the step's code starts (a handler's own instrumentation) nest under the step's.
                with tracing.inside(self.journal.trace, operation_span(self.journal.arn, op_id, attempt)):
                    value = fn(*args, **kwargs)
        except Exception as error:
            self._fail_attempt(op_id, name, attempt, policy, error_object(error), error, start)
        payload = _dumps(value, f"step {name!r}")
        self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.SUCCEED, name, "Step", payload=payload))
        return value

    def _fail_attempt(
        self,
        op_id: str,
        name: str,
        attempt: int,
        policy: RetryPolicy,
        error: ErrorObject,
        raised: Exception | None,
        start: Sequence[OperationUpdate] = (),
    ) -> Any:
        if attempt < policy.max_attempts:
            delay = policy.delay(attempt)
            self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.RETRY, name, "Step", error=error, next_attempt_delay_seconds=delay))
            raise Suspend(f"step {name} retries in {delay} s")
        self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.FAIL, name, "Step", error=error))
        if raised is not None:
            raise raised
        raise failure(self.journal.operations[op_id], "Step")

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, duration: Duration | None = None, *, seconds: float | None = None, name: str | None = None) -> None:
        """Suspends the execution for a duration (a ``timedelta`` or seconds), holding no process."""
        wait_seconds = seconds_of(duration, seconds)
        op_id = self._next_id()
        op = self._recorded(op_id, OperationType.WAIT, name, "Wait")
        if op is not None and op.status is OperationStatus.SUCCEEDED:
            return
        if op is None:
            self._write(self._update(op_id, OperationType.WAIT, OperationAction.START, name, "Wait", wait_seconds=wait_seconds))
        raise Suspend(f"waiting {wait_seconds} s")

    def wait_for_condition(
        self,
        check: Callable[[Any], Any],
        initial_state: Any = None,
        *,
        until: Callable[[Any], bool],
        every: Duration = 5,
        max_attempts: int | None = None,
        name: str | None = None,
    ) -> Any:
        """Polls durably: ``state = check(state)`` until ``until(state)``, waiting ``every`` between tries.

        Between attempts the execution is suspended (no process held); the state survives in
        the journal. Returns the final state; past ``max_attempts`` it raises OperationFailedError.
        """
        name = name or str(getattr(check, "__name__", "condition"))
        op_id = self._next_id()
        op = self._recorded(op_id, OperationType.STEP, name, "WaitForCondition")
        if op is not None and op.status is OperationStatus.SUCCEEDED:
            return _loads(op.result)
        if op is not None and op.status is OperationStatus.FAILED:
            raise failure(op, "Condition")
        if op is not None and op.status is OperationStatus.PENDING:
            raise Suspend(f"condition {name} checks again later")
        state = _loads(op.result) if op is not None and op.result is not None else initial_state
        attempt = (op.attempt if op else 0) + 1
        start = [] if op is not None and op.status is OperationStatus.STARTED else [self._update(op_id, OperationType.STEP, OperationAction.START, name, "WaitForCondition")]
        state = check(state)
        payload = _dumps(state, f"condition {name!r}")
        if until(state):
            self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.SUCCEED, name, "WaitForCondition", payload=payload))
            return state
        if max_attempts is not None and attempt >= max_attempts:
            error = ErrorObject(message=f"Condition {name!r} was not met after {attempt} attempts.", type="WaitForConditionError")
            self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.FAIL, name, "WaitForCondition", error=error))
            raise failure(self.journal.operations[op_id], "Condition")
        delay = seconds_of(every)
        self._write(*start, self._update(op_id, OperationType.STEP, OperationAction.RETRY, name, "WaitForCondition", payload=payload, next_attempt_delay_seconds=delay))
        raise Suspend(f"condition {name} checks again in {delay} s")

    def create_callback(
        self, name: str | None = None, *, timeout: Duration | None = None, heartbeat_timeout: Duration | None = None
    ) -> Callback:
        """Creates a callback; give its ``callback_id`` to whoever will complete it."""
        op_id = self._next_id()
        op = self._recorded(op_id, OperationType.CALLBACK, name, "Callback")
        if op is None:
            self._write(
                self._update(
                    op_id,
                    OperationType.CALLBACK,
                    OperationAction.START,
                    name,
                    "Callback",
                    callback_timeout_seconds=seconds_of(timeout) if timeout else 0,
                    callback_heartbeat_timeout_seconds=seconds_of(heartbeat_timeout) if heartbeat_timeout else 0,
                )
            )
            op = self.journal.operations[op_id]
        return Callback(self, op_id, op.callback_id or "")

    def wait_for_callback(
        self,
        submitter: Callable[[str], Any],
        name: str | None = None,
        *,
        timeout: Duration | None = None,
        heartbeat_timeout: Duration | None = None,
    ) -> Any:
        """Creates a callback, calls ``submitter(callback_id)`` once, and waits for the result."""

        def wait_in_child(child: Context) -> Any:
            callback = child.create_callback(name, timeout=timeout, heartbeat_timeout=heartbeat_timeout)
            child.step(submitter, callback.callback_id, name=f"{name or 'callback'} submitter", retry=NO_RETRY)
            return callback.result()

        return self._child(wait_in_child, name, "WaitForCallback")

    def callback_link(
        self, callback: Callback | str, *, summary: str = "", expires: Duration = datetime.timedelta(days=3)
    ) -> str:
        """A signed link to a page that approves or rejects ``callback`` (a ``Callback``, or its ID) in one click.

        Send it to the person who decides, by e-mail or chat, from the submitter of
        ``wait_for_callback``; the page shows the callback's name and ``summary``. It works
        until ``expires`` (at most a year) or until the callback is completed, whichever is first.
        """
        links = self.journal.links
        if links is None:
            raise DurableFunctionError(
                "ctx.callback_link() needs a server to open its link: run the function under `perdure serve` "
                "(or `perdure worker --public-url URL`), or complete the callback with `perdure callback succeed`."
            )
        callback_id = callback.callback_id if isinstance(callback, Callback) else callback
        seconds = expires.total_seconds() if isinstance(expires, datetime.timedelta) else float(expires)
        return links.make(callback_id, summary, seconds).url

    def invoke(self, function_name: str, payload: Any = None, *, name: str | None = None, tenant_id: str | None = None) -> Any:
        """Runs another durable function as a child execution and returns its result.

        ``function_name`` is a function the server runs (a name, ``NAME:QUALIFIER`` or its
        ARN); ``payload`` is its input. The execution suspends, holding no process, until the
        child ends; a child that fails, times out or is stopped raises OperationFailedError
        with the child's error type and message.
        """
        op_id = self._next_id()
        op = self._recorded(op_id, OperationType.CHAINED_INVOKE, name, "ChainedInvoke")
        if op is None:
            self._write(
                self._update(
                    op_id,
                    OperationType.CHAINED_INVOKE,
                    OperationAction.START,
                    name,
                    "ChainedInvoke",
                    payload=_invoke_input(payload, function_name),
                    invoke_function_name=function_name,
                    invoke_tenant_id=tenant_id,
                )
            )
            op = self.journal.operations[op_id]
        if op.status is OperationStatus.SUCCEEDED:
            return _loads(op.result)
        if op.status.is_terminal:
            raise failure(op, f"Invoke of {function_name}")
        raise Suspend(f"waiting for invoked function {function_name}")

    # -- structure ----------------------------------------------------------------------------

    def run_in_child_context(self, fn: Callable[[Context], T], name: str | None = None) -> T:
        """Runs ``fn(child_ctx)`` as one unit; once it has finished, replays return its result."""
        return self._child(fn, name, "RunInChildContext")  # type: ignore[no-any-return]

    def _child(self, fn: Callable[[Context], Any], name: str | None, sub_type: str) -> Any:
        return self._child_at(self._next_id(), fn, name, sub_type)

    def _child_at(self, op_id: str, fn: Callable[[Context], Any], name: str | None, sub_type: str) -> Any:
        op = self._recorded(op_id, OperationType.CONTEXT, name, sub_type)
        if op is not None and op.status is OperationStatus.SUCCEEDED:
            return _loads(op.result)
        if op is not None and op.status.is_terminal:
            raise failure(op, "Child context")
        if op is None:
            self._write(self._update(op_id, OperationType.CONTEXT, OperationAction.START, name, sub_type))
        child = Context(self.journal, self.function_name, parent_id=op_id)
        child.replaying = self.replaying
        try:
            value = fn(child)
        except Suspend:
            raise
        except Exception as error:
            self._write(self._update(op_id, OperationType.CONTEXT, OperationAction.FAIL, name, sub_type, error=error_object(error)))
            raise
        payload = _dumps(value, f"child context {name or op_id!r}")
        self._write(self._update(op_id, OperationType.CONTEXT, OperationAction.SUCCEED, name, sub_type, payload=payload))
        return value

    def map(
        self,
        items: Sequence[Any],
        fn: Callable[[Context, Any, int], T],
        name: str | None = None,
        *,
        max_concurrency: int | None = None,
    ) -> list[T]:
        """Runs ``fn(child_ctx, item, index)`` for each item, each as its own child context.

        Items run at once, in threads, up to ``max_concurrency`` (all of them by default, at most
        ``MAX_BRANCH_THREADS``): items that wait on I/O overlap. The results come in the items' order.
        """

        def iteration(index: int, item: Any) -> Callable[[Context], Any]:
            return lambda c: fn(c, item, index)

        branches = [iteration(i, item) for i, item in enumerate(items)]
        return self._branches(branches, name, ("map", "Map", "MapIteration"), max_concurrency)

    def parallel(
        self, branches: Sequence[Callable[[Context], Any]], name: str | None = None, *, max_concurrency: int | None = None
    ) -> list[Any]:
        """Runs each branch as its own child context, at once as ``map``'s items do; returns their results in order."""
        return self._branches(list(branches), name, ("parallel", "Parallel", "ParallelBranch"), max_concurrency)

    def _branches(
        self, branches: list[Callable[[Context], Any]], name: str | None, kinds: tuple[str, str, str], max_concurrency: int | None
    ) -> list[Any]:
        label, sub_type, branch_type = kinds
        if max_concurrency is not None and max_concurrency < 1:
            raise InvalidParameterError(f"max_concurrency must be at least 1, not {max_concurrency}.")

        def run_all(child: Context) -> list[Any]:
            # IDs are given out here, in order, so they do not depend on which thread runs first.
            ids = [child._next_id() for _ in branches]
            run = [
                functools.partial(child._child_at, op_id, branch, f"{name or label}-{i}", branch_type)
                for i, (op_id, branch) in enumerate(zip(ids, branches, strict=True))
            ]
            threads = min(len(run), max_concurrency or MAX_BRANCH_THREADS, MAX_BRANCH_THREADS)
            if threads <= 1:
                return [call() for call in run]
            with ThreadPoolExecutor(threads, thread_name_prefix="perdure-branch") as pool:
                futures = [pool.submit(call) for call in run]
                wait(futures)
            # Every branch has run as far as it could: a suspended one suspends the whole (once
            # the others are recorded), else the first failure in order is raised.
            for future in futures:
                if isinstance(future.exception(), Suspend):
                    future.result()
            return [future.result() for future in futures]

        return self._child(run_all, name, sub_type)  # type: ignore[no-any-return]
