"""The store's side of scheduling, on both backends: next timers and wake-ups, and timers fired in bulk."""

from __future__ import annotations

from store_backends import NOW, execution, insert, operation

from perdure.protocol.timers import Timer, TimerKind
from perdure.store.base import Store


def test_next_wakeup_counts_only_the_executions_of_the_functions_asked_for(store: Store) -> None:
    insert(
        store,
        execution("billing-ready", function="billing", ready_time=NOW + 1),
        execution("orders-ready", ready_time=NOW + 5),
        execution("orders-leased", lease_owner="elsewhere", lease_expiry=NOW + 3),
    )
    with store.transaction() as tx:
        tx.set_timer(Timer("orders-ready", "w", TimerKind.WAIT, NOW + 10))
    with store.snapshot() as tx:
        assert tx.next_wakeup() == NOW + 1
        assert tx.next_wakeup(["orders"]) == NOW + 3
        assert tx.next_wakeup(["nobody"]) == NOW + 10  # a timer counts whatever its function
        assert tx.next_timer_due() == NOW + 10


def test_next_timer_due_is_none_without_timers(store: Store) -> None:
    insert(store, execution("ready", ready_time=NOW))
    with store.snapshot() as tx:
        assert tx.next_timer_due() is None


def test_timers_fired_in_bulk_read_their_executions_and_operations_together(store: Store) -> None:
    insert(store, *(execution(f"e{i}") for i in range(3)))
    timers = [Timer(f"e{i}", "w", TimerKind.WAIT, NOW + i) for i in range(3)]
    with store.transaction() as tx:
        for i in range(3):
            tx.put_operations(f"e{i}", [operation("w", 1), operation("s", 2)])
        for timer in timers:
            tx.set_timer(timer)
        tx.set_timer(Timer("e0", "", TimerKind.EXECUTION_TIMEOUT, NOW + 100))
    with store.transaction() as tx:
        found = tx.get_executions_by_ids(["e0", "e2", "e2", "missing"])
        assert sorted(found) == ["e0", "e2"] and found["e2"] == execution("e2")
        ops = tx.get_operations_by_keys([("e0", "w"), ("e1", "s"), ("e1", "missing"), ("missing", "w")])
        assert sorted(ops) == [("e0", "w"), ("e1", "s")]
        assert ops[("e1", "s")] == operation("s", 2)
        tx.delete_fired_timers(timers[:2])
    with store.snapshot() as tx:
        assert tx.due_timers(NOW + 1000, 10) == [timers[2], Timer("e0", "", TimerKind.EXECUTION_TIMEOUT, NOW + 100)]
