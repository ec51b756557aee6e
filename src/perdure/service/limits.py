"""Functions' concurrency and rate limits in the store: declared by the code served, set through the API, read back.

Leasing applies them (``perdure.service.invocations.lease``); this module only writes and reads
them. Every server or worker that starts with a function's code declares that code's limits
(none clears them), so the last to start wins where two serve different code; a reserved
concurrency set through the API (``PutFunctionConcurrency``) wins over the declared concurrency
until it is deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from perdure.protocol.limits import FunctionLimits, StoredLimits, check_count
from perdure.errors import InvalidParameterError
from perdure.service.executions import DurableService


def declare(service: DurableService, limits: Mapping[str, FunctionLimits]) -> None:
    """Records the limits the served code declares for each function (in one transaction)."""
    with service.store.transaction() as tx:
        for name in sorted(limits):
            tx.declare_limits(name, limits[name])


def every(service: DurableService) -> dict[str, StoredLimits]:
    """The stored limits of every function that has any, by name."""
    with service.store.snapshot() as tx:
        return {stored.function_name: stored for stored in tx.function_limits()}


def of(service: DurableService, function_name: str) -> FunctionLimits:
    """The limits that hold for a function now (none: ``FunctionLimits()``)."""
    with service.store.snapshot() as tx:
        found = tx.function_limits([function_name])
    return found[0].effective if found else FunctionLimits()


def reserve(service: DurableService, function_name: str, reserved: object) -> int:
    """Sets the function's ReservedConcurrentExecutions (PutFunctionConcurrency); returns it."""
    try:
        count = check_count(reserved, 0)
    except ValueError as error:
        raise InvalidParameterError(
            f"ReservedConcurrentExecutions {error}: the most invocations of {function_name} that may run at once "
            "(0 holds them all)."
        ) from None
    with service.store.transaction() as tx:
        tx.put_reserved_concurrency(function_name, count)
    return count


def unreserve(service: DurableService, function_name: str) -> None:
    """Removes the reserved concurrency set through the API (DeleteFunctionConcurrency): the declared one holds again."""
    with service.store.transaction() as tx:
        tx.put_reserved_concurrency(function_name, None)
