"""Waits fired together (``timers.fire_waits``) end as fired one by one (``timers.fire_each``), on both backends.

Each case is built twice in one database, under the prefixes ``bulk-`` and ``each-``; the two
copies are fired in one transaction, each its own way, and must then read back the same:
executions, operations, the operations a checkpoint reply would send, history and timers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from store_backends import NOW, StoreFactory, execution, insert, operation

from perdure.protocol.records import Event, Execution, ExecutionStatus, Operation, OperationStatus, OperationType
from perdure.protocol.timers import Timer, TimerKind
from perdure.service import timers
from perdure.store.base import Store

FIRED_AT = NOW + 0.5

_CASES = (
    "suspended", "leased", "paused", "ready-before", "ready-after", "two-waits", "half-second", "no-start",
    "ended", "wait-ended", "no-operation", "not-due",
)  # fmt: skip


def _wait(op_id: str, position: int, start: float, end: float, **fields: object) -> Operation:
    return operation(
        op_id, position, type=OperationType.WAIT, start_time=start, scheduled_end_time=end, version=2, **fields
    )


def _build(store: Store, prefix: str) -> None:
    """The cases, as executions named ``prefix + case``, with their operations and timers."""
    cases: dict[str, tuple[dict[str, object], list[Operation]]] = {
        # Suspended: the wait makes it ready now.
        "suspended": ({}, [_wait("w", 2, NOW - 60, NOW, name="nap", parent_id="ctx", sub_type="Wait")]),
        # An invocation holds it, or it is paused: the wake-up is noted for later.
        "leased": ({"lease_owner": "worker", "lease_expiry": NOW + 30}, [_wait("w", 2, NOW - 5, NOW)]),
        "paused": ({"status": ExecutionStatus.PAUSED, "pause_time": NOW - 1}, [_wait("w", 2, NOW - 5, NOW)]),
        # Ready already, before or after now.
        "ready-before": ({"ready_time": NOW - 5}, [_wait("w", 2, NOW - 5, NOW)]),
        "ready-after": ({"ready_time": NOW + 5}, [_wait("w", 2, NOW - 5, NOW)]),
        # Two waits due together: versions and event IDs advance once for each, in due order.
        "two-waits": ({}, [_wait("late", 2, NOW - 3, NOW), _wait("early", 3, NOW - 9, NOW - 1)]),
        # A wait of 2.5 s rounds to 2, as Python rounds; one without a start counts from now.
        "half-second": ({}, [_wait("w", 2, NOW - 2.5, NOW)]),
        "no-start": ({}, [_wait("w", 2, 0.0, NOW)]),
        # Nothing to fire: the execution ended, the wait ended, or its operation is missing.
        "ended": ({"status": ExecutionStatus.SUCCEEDED, "end_time": NOW - 1}, [_wait("w", 2, NOW - 5, NOW)]),
        "wait-ended": ({}, [_wait("w", 2, NOW - 5, NOW, status=OperationStatus.CANCELLED)]),
        "no-operation": ({}, []),
        # A wait not yet due stays as it is.
        "not-due": ({}, [_wait("w", 2, NOW - 5, NOW + 100)]),
    }
    with store.transaction() as tx:
        for case, (fields, ops) in cases.items():
            execution_id = prefix + case
            values = {"version": 3, "event_count": 4, **fields}
            tx.insert_execution(execution(execution_id, "orders", **values))
            tx.put_operations(execution_id, [operation(execution_id, 1, type=OperationType.EXECUTION), *ops])
            due = {op.id: op.scheduled_end_time or NOW for op in ops} or {"w": NOW}
            for op_id, due_time in due.items():
                tx.set_timer(Timer(execution_id, op_id, TimerKind.WAIT, due_time))


@dataclass(frozen=True)
class _Outcome:
    """What an execution reads back as after firing, with its own ID, ARN and name left out."""

    execution: Execution
    operations: list[Operation]
    changed_since_before: list[Operation]
    events: list[Event]
    timers: list[tuple[str, TimerKind, float]]


def _outcomes(store: Store, prefix: str) -> dict[str, _Outcome]:
    found: dict[str, _Outcome] = {}
    with store.snapshot() as tx:
        timers_left = tx.due_timers(NOW + 1000, 1000)
        for case in _CASES:
            execution_id = prefix + case
            stored = tx.get_execution_by_id(execution_id)
            assert stored is not None
            found[case] = _Outcome(
                execution=stored.evolve(id="", arn="", name=""),
                operations=[
                    op.evolve(id=op.id.removeprefix(prefix)) for op in tx.list_operations(execution_id, 0, 100)
                ],
                changed_since_before=tx.operations_changed_since(execution_id, 3),
                events=tx.list_events(execution_id, 0, 100, False),
                timers=[(t.operation_id, t.kind, t.due_time) for t in timers_left if t.execution_id == execution_id],
            )
    return found


def test_waits_fired_together_end_as_waits_fired_one_by_one(store: Store) -> None:
    _build(store, "bulk-")
    _build(store, "each-")
    with store.transaction() as tx:
        due = tx.due_timers(FIRED_AT, 1000)
        assert len(due) == 2 * len(_CASES)  # two-waits has two due, not-due none
        timers.fire_waits(tx, [t for t in due if t.execution_id.startswith("bulk-")], FIRED_AT)
        timers.fire_each(tx, [t for t in due if t.execution_id.startswith("each-")], FIRED_AT)
    bulk, each = _outcomes(store, "bulk-"), _outcomes(store, "each-")
    assert sorted(bulk) == sorted(_CASES)
    for case in _CASES:
        assert bulk[case] == each[case], case

    # And both are what a wait's firing should be, not merely alike.
    suspended = bulk["suspended"]
    assert (suspended.execution.version, suspended.execution.event_count) == (4, 5)
    assert suspended.execution.ready_time == FIRED_AT and not suspended.execution.woken_during_invocation
    (event,) = suspended.events
    assert event == Event(
        event_type="WaitSucceeded",
        timestamp=FIRED_AT,
        operation_id="w",
        parent_id="ctx",
        name="nap",
        sub_type="Wait",
        details={"Duration": 60},
        event_id=5,
    )
    wait = suspended.operations[1]
    assert (wait.status, wait.end_time, wait.version) == (OperationStatus.SUCCEEDED, FIRED_AT, 4)
    assert suspended.changed_since_before == [wait]
    assert suspended.timers == []
    for case in ("leased", "paused"):
        assert bulk[case].execution.woken_during_invocation and bulk[case].execution.ready_time is None
    assert bulk["ready-before"].execution.ready_time == NOW - 5
    assert bulk["ready-after"].execution.ready_time == FIRED_AT
    two = bulk["two-waits"]
    assert [(e.operation_id, e.event_id) for e in two.events] == [("early", 5), ("late", 6)]
    assert {op.id: op.version for op in two.operations[1:]} == {"late": 5, "early": 4}
    assert two.execution.version == 5 and two.execution.event_count == 6
    assert bulk["half-second"].events[0].details == {"Duration": 2}
    assert bulk["no-start"].events[0].details == {"Duration": 0}
    for case in ("ended", "wait-ended", "no-operation"):
        assert bulk[case].events == [] and bulk[case].timers == [] and bulk[case].execution.version == 3
    assert bulk["not-due"].timers == [("w", TimerKind.WAIT, NOW + 100)] and bulk["not-due"].events == []


def test_an_execution_with_another_timer_due_fires_its_waits_one_by_one(store: Store) -> None:
    """fire_due sends an execution with a callback timeout due beside its wait down the per-timer path."""
    for prefix in ("due-", "each-"):
        insert(store, execution(f"{prefix}mixed", version=3, event_count=4), execution(f"{prefix}plain", version=3))
        with store.transaction() as tx:
            for case in ("mixed", "plain"):
                execution_id = f"{prefix}{case}"
                tx.put_operations(
                    execution_id,
                    [operation(execution_id, 1, type=OperationType.EXECUTION), _wait("w", 2, NOW - 5, NOW)],
                )
                tx.set_timer(Timer(execution_id, "w", TimerKind.WAIT, NOW))
            callback = operation("c", 3, type=OperationType.CALLBACK, callback_id=f"{prefix}cb", version=2)
            tx.put_operations(f"{prefix}mixed", [callback])
            tx.set_timer(Timer(f"{prefix}mixed", "c", TimerKind.CALLBACK_TIMEOUT, NOW - 1))
    with store.transaction() as tx:
        due = tx.due_timers(FIRED_AT, 100)
        timers.fire_each(tx, [t for t in due if t.execution_id.startswith("each-")], FIRED_AT)
    with store.transaction() as tx:
        assert timers.fire_due(tx, FIRED_AT, 100) == 3
    with store.snapshot() as tx:
        assert tx.due_timers(NOW + 1000, 100) == []
        for case in ("mixed", "plain"):
            fired, each = tx.get_execution_by_id(f"due-{case}"), tx.get_execution_by_id(f"each-{case}")
            assert fired is not None and each is not None
            assert fired.evolve(id="", arn="", name="") == each.evolve(id="", arn="", name="")
            assert tx.list_events(f"due-{case}", 0, 10, False) == tx.list_events(f"each-{case}", 0, 10, False)
            due_ops = tx.list_operations(f"due-{case}", 0, 10)
            each_ops = tx.list_operations(f"each-{case}", 0, 10)
            assert [op.evolve(id=op.id.removeprefix("due-"), callback_id=None) for op in due_ops] == [
                op.evolve(id=op.id.removeprefix("each-"), callback_id=None) for op in each_ops
            ]
        events = tx.list_events("due-mixed", 0, 10, False)
        assert [e.event_type for e in events] == ["CallbackTimedOut", "WaitSucceeded"]


def test_two_stores_firing_at_once_fire_each_wait_once(open_test_store: StoreFactory) -> None:
    """As two processes do: on PostgreSQL each skips what the other holds, on SQLite they take turns."""
    stores = [open_test_store(), open_test_store()]
    count = 300
    insert(stores[0], *(execution(f"e{i:03d}", version=3, event_count=4) for i in range(count)))
    with stores[0].transaction() as tx:
        for i in range(count):
            tx.put_operations(f"e{i:03d}", [_wait("w", 2, NOW - 5, NOW - i / 1000)])
            tx.set_timer(Timer(f"e{i:03d}", "w", TimerKind.WAIT, NOW - i / 1000))
    fired = [0, 0]
    errors: list[BaseException] = []

    def fire(index: int) -> None:
        try:
            while True:
                with stores[index].transaction() as tx:
                    done = timers.fire_due(tx, FIRED_AT, 25)
                if not done:
                    return
                fired[index] += done
        except BaseException as error:  # re-raised below
            errors.append(error)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert sum(fired) == count
    with stores[0].snapshot() as tx:
        assert tx.due_timers(NOW + 1000, 10) == []
        for i in range(count):
            execution_id = f"e{i:03d}"
            found = tx.get_execution_by_id(execution_id)
            assert found is not None and (found.version, found.event_count) == (4, 5)
            assert [e.event_type for e in tx.list_events(execution_id, 0, 10, False)] == ["WaitSucceeded"]
