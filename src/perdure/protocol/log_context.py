"""Which execution the code running now works on, for the server's own log lines about it.

The runtime and the API set it (``about``) where they work on one execution; a JSON log line
(``--log-format json``) then carries the execution's ARN, function, invocation and operation.
It is a context variable, so it follows asyncio tasks and Starlette's ``run_in_threadpool``
(which copies the context), but not a thread started elsewhere: a log call that names an
execution passes the same fields with ``extra=LogContext.fields()``, and those win.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from perdure.protocol.arns import function_arn_of, parse_function_arn
from perdure.protocol.records import Invocation

# The attributes a log record names an execution with, in the order a JSON line shows them.
FIELDS = ("execution_arn", "function", "invocation", "operation_id")


@dataclass(frozen=True)
class LogContext:
    """The execution a log line is about; ``invocation`` is the runtime's number of the invocation."""

    execution_arn: str
    function: str | None = None
    invocation: int | None = None
    operation_id: str | None = None

    @classmethod
    def of_execution(cls, execution_arn: str, operation_id: str | None = None) -> LogContext:
        """The context of an execution known by its ARN alone: its function is the one the ARN names."""
        parts = parse_function_arn(function_arn_of(execution_arn))
        return cls(execution_arn, parts.name if parts else None, operation_id=operation_id)

    @classmethod
    def of_invocation(cls, invocation: Invocation) -> LogContext:
        return cls(invocation.execution_arn, invocation.function_name, invocation.invocation)

    def fields(self) -> dict[str, str | int]:
        """The fields that are known, as ``extra=`` of a log call takes them."""
        values = {name: getattr(self, name) for name in FIELDS}
        return {name: value for name, value in values.items() if value is not None}


_current: ContextVar[LogContext | None] = ContextVar("perdure_log_context", default=None)


@contextmanager
def about(context: LogContext) -> Iterator[None]:
    """Makes ``context`` the one the log lines of the ``with`` block are about."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def current_log_context() -> LogContext | None:
    """The execution the calling code works on, if it set one."""
    return _current.get()
