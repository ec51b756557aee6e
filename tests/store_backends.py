"""Records and helpers for the tests that open stores (the fixtures are in tests/conftest.py).

The store tests use them, and the service tests that put rows in a store before reading them
through the service. The PostgreSQL server they run on is in ``tests/pg_server.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from pg_server import TEST_DB, PostgresServer, find_pg_bindir, start_server

from perdure.protocol.records import Event, Execution, ExecutionStatus, Operation, OperationStatus, OperationType
from perdure.store.base import Store

__all__ = ["TEST_DB", "PostgresServer", "find_pg_bindir", "start_server"]  # re-exported for the tests

# Small, so that blob offloading is exercised with small payloads.
INLINE_LIMIT = 1024

StoreFactory = Callable[..., Store]

# -- records for the tests --------------------------------------------------------------------

NOW = 1_800_000_000.0


def execution(execution_id: str, function: str = "orders", **fields: object) -> Execution:
    values: dict[str, object] = {
        "id": execution_id,
        "arn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST/durable-execution/{execution_id}",
        "function_name": function,
        "qualifier": "$LATEST",
        "name": fields.pop("name", execution_id),
        "status": ExecutionStatus.RUNNING,
        "start_time": NOW,
    }
    values.update(fields)
    return Execution(**values)  # type: ignore[arg-type]


def operation(op_id: str, position: int, **fields: object) -> Operation:
    values: dict[str, object] = {
        "id": op_id,
        "type": OperationType.STEP,
        "status": OperationStatus.STARTED,
        "position": position,
        "version": 1,
    }
    values.update(fields)
    return Operation(**values)  # type: ignore[arg-type]


def event(event_id: int, event_type: str = "StepStarted") -> Event:
    return Event(event_type=event_type, timestamp=NOW + event_id, operation_id=f"s{event_id}", details={"n": event_id}, event_id=event_id)


def insert(store: Store, *executions: Execution) -> None:
    with store.transaction() as tx:
        for e in executions:
            tx.insert_execution(e)
