"""The store contract (store/base.py), checked on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest
from store_backends import (
    INLINE_LIMIT,
    NOW,
    StoreFactory,
    event,
    execution,
    insert,
    operation,
)

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ErrorObject, Execution, ExecutionStatus, OperationStatus, OperationType
from perdure.protocol.timers import Timer, TimerKind
from perdure.store.base import Store

# What each backend raises when a write breaks a unique constraint.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


def blob_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# -- transactions -----------------------------------------------------------------------------


def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    insert(store, execution("e0"))
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        tx.insert_execution(execution("e1"))
        tx.put_operations("e1", [operation("e1", 1)])
        tx.append_events("e1", [event(1)])
        tx.set_timer(Timer("e1", "", TimerKind.EXECUTION_TIMEOUT, NOW))
        tx.put_checkpoint_reply("e1", "token", "{}")
        e0 = tx.get_execution_by_id("e0")
        assert e0 is not None
        tx.update_execution(e0.evolve(version=7))
        raise RuntimeError("boom")
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") is None
        assert tx.get_operations("e1", ["e1"]) == {}
        assert tx.list_events("e1", 0, 10, False) == []
        assert tx.due_timers(NOW, 10) == []
        assert tx.get_checkpoint_reply("e1", "token") is None
        assert tx.get_execution_by_id("e0") == execution("e0")


def test_a_committed_transaction_is_seen_by_the_next_and_by_snapshots(store: Store) -> None:
    insert(store, execution("e1"))
    with store.transaction() as tx:
        assert tx.get_execution_by_id("e1") == execution("e1")
    with store.snapshot() as tx:
        assert tx.get_execution(execution("e1").arn) == execution("e1")


def test_a_transaction_reads_its_own_writes_and_keeps_the_last_of_each(store: Store) -> None:
    # PostgreSQL holds these writes back and sends them as one statement (perdure.store.pg_writes).
    stored = execution("e1")
    insert(store, stored)
    with store.transaction() as tx:
        tx.put_operations("e1", [operation("s1", 1)])
        tx.append_events("e1", [event(1)])
        leased = stored.evolve(lease_owner="worker-1", version=2)
        tx.update_execution(leased, before=stored)
        assert tx.get_operations("e1", ["s1"])["s1"] == operation("s1", 1)
        tx.put_operations("e1", [operation("s1", 1, status=OperationStatus.SUCCEEDED, version=2), operation("s2", 2)])
        tx.put_operations("e1", [operation("s1", 1, status=OperationStatus.SUCCEEDED, result='"r"', version=3)])
        tx.append_events("e1", [event(2), event(3)])
        counted = leased.evolve(event_count=3, version=3)
        tx.update_execution(counted, before=leased)
        tx.update_execution(counted.evolve(ready_time=NOW), before=counted)
    final = counted.evolve(ready_time=NOW)
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == final
        assert tx.get_operations("e1", ["s1", "s2"]) == {
            "s1": operation("s1", 1, status=OperationStatus.SUCCEEDED, result='"r"', version=3),
            "s2": operation("s2", 2),
        }
        assert [e.event_id for e in tx.list_events("e1", 0, 10, False)] == [1, 2, 3]


def test_a_write_that_fails_rolls_back_the_whole_transaction(store: Store) -> None:
    stored = execution("e1")
    insert(store, stored)
    with store.transaction() as tx:
        tx.append_events("e1", [event(1)])
    # On PostgreSQL the failing write is sent with the commit, which raises its error.
    with pytest.raises(INTEGRITY_ERRORS), store.transaction() as tx:
        tx.put_operations("e1", [operation("s1", 1)])
        tx.update_execution(stored.evolve(version=5), before=stored)
        tx.append_events("e1", [event(1)])
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == stored
        assert tx.get_operations("e1", ["s1"]) == {}
        assert len(tx.list_events("e1", 0, 10, False)) == 1


def test_a_read_then_write_in_one_transaction_never_loses_an_update(open_test_store: StoreFactory) -> None:
    # Each thread has its own store (its own connections), as separate processes would.
    stores = [open_test_store() for _ in range(4)]
    insert(stores[0], execution("e1"))
    errors: list[BaseException] = []

    def bump(store: Store) -> None:
        try:
            for _ in range(15):
                with store.transaction() as tx:
                    current = tx.get_execution_by_id("e1")
                    assert current is not None
                    tx.update_execution(current.evolve(version=current.version + 1))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with stores[0].snapshot() as tx:
        final = tx.get_execution_by_id("e1")
    assert final is not None and final.version == 4 * 15


# -- executions -------------------------------------------------------------------------------


def full_execution() -> Execution:
    return execution(
        "e1",
        name="order-1",
        status=ExecutionStatus.FAILED,
        input_payload='{"n": 1}',
        result='"done"',
        error=ErrorObject(message="bad", type="ValueError", data='{"x": 1}', stack_trace=("a", "b")),
        end_time=NOW + 5.25,
        timeout_seconds=3600,
        retention_days=14,
        ready_time=NOW + 1.5,
        lease_owner="worker-1",
        lease_expiry=NOW + 30.125,
        invocation=3,
        invocation_secret="secret",
        invocation_start=NOW + 0.5,
        failed_invocations=2,
        woken_during_invocation=True,
        version=9,
        event_count=12,
        operation_count=4,
    )


def test_an_execution_comes_back_with_every_field(store: Store) -> None:
    insert(store, full_execution())
    with store.snapshot() as tx:
        assert tx.get_execution(full_execution().arn) == full_execution()
        assert tx.get_execution_by_id("e1") == full_execution()
        assert tx.find_execution("orders", "order-1") == full_execution()
        assert tx.get_execution("arn:nope") is None
        assert tx.get_execution_by_id("nope") is None


def test_an_update_overwrites_every_field_but_identity_and_input(store: Store) -> None:
    insert(store, execution("e1", input_payload='{"n": 1}'))
    changed = full_execution().evolve(name="e1", input_payload='{"n": 1}')
    with store.transaction() as tx:
        tx.update_execution(changed)
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == changed
    cleared = execution("e1", input_payload='{"n": 1}')
    with store.transaction() as tx:
        tx.update_execution(cleared)
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e1") == cleared


def test_an_arn_and_a_function_and_name_pair_are_unique(store: Store) -> None:
    insert(store, execution("e1", name="order-1"))
    with pytest.raises(INTEGRITY_ERRORS), store.transaction() as tx:
        tx.insert_execution(execution("e2"))
        tx.insert_execution(execution("e3", name="order-1"))
    with pytest.raises(INTEGRITY_ERRORS):
        insert(store, execution("e1", name="another-name"))
    insert(store, execution("e4", function="billing", name="order-1"))
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("e2") is None
        found = tx.find_execution("orders", "order-1")
        assert found is not None and found.id == "e1"
        other = tx.find_execution("billing", "order-1")
        assert other is not None and other.id == "e4"
        assert tx.find_execution("orders", "order-2") is None


def test_listing_filters_by_function_status_name_and_start_time(store: Store) -> None:
    insert(
        store,
        execution("a", start_time=NOW),
        execution("b", start_time=NOW + 1, status=ExecutionStatus.SUCCEEDED),
        execution("c", function="billing", start_time=NOW + 2),
        execution("d", start_time=NOW + 3, status=ExecutionStatus.FAILED),
    )

    def ids(**filters: object) -> list[str]:
        with store.snapshot() as tx:
            return [e.id for e in tx.list_executions(ExecutionQuery(**filters)).executions]  # type: ignore[arg-type]

    assert ids() == ["d", "c", "b", "a"]
    assert ids(function_name="orders") == ["d", "b", "a"]
    assert ids(statuses=(ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)) == ["d", "b"]
    assert ids(name="c") == ["c"]
    assert ids(started_after=NOW + 1) == ["d", "c", "b"]
    assert ids(started_before=NOW + 1) == ["a"]
    assert ids(started_after=NOW + 1, started_before=NOW + 3, function_name="orders") == ["b"]
    assert ids(oldest_first=True) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("oldest_first", [False, True])
def test_listing_pages_through_every_execution_once_with_markers(store: Store, oldest_first: bool) -> None:
    # Ties on start_time are broken by ID, so pages neither repeat nor skip one.
    executions = [execution(f"e{i:02d}", start_time=NOW + i // 3 + 0.1) for i in range(11)]
    insert(store, *executions)
    seen: list[str] = []
    marker: str | None = None
    pages = 0
    while True:
        with store.snapshot() as tx:
            page = tx.list_executions(ExecutionQuery(limit=4, marker=marker, oldest_first=oldest_first))
        seen.extend(e.id for e in page.executions)
        pages += 1
        marker = page.next_marker
        if marker is None:
            break
    expected = sorted((e.start_time, e.id) for e in executions)
    if not oldest_first:
        expected.reverse()
    assert seen == [execution_id for _, execution_id in expected]
    assert pages == 3


def test_a_listing_that_fits_one_page_has_no_marker(store: Store) -> None:
    insert(store, execution("a"), execution("b"))
    with store.snapshot() as tx:
        page = tx.list_executions(ExecutionQuery(limit=2))
    assert len(page.executions) == 2 and page.next_marker is None


@pytest.mark.parametrize("marker", ["not base64 !", "bnVsbA==", "WzEsIDIsIDNd"])
def test_a_bad_marker_is_a_value_error(store: Store, marker: str) -> None:
    with store.snapshot() as tx, pytest.raises(ValueError):
        tx.list_executions(ExecutionQuery(marker=marker))


# -- operations -------------------------------------------------------------------------------


def test_operations_are_upserted_and_read_by_id_position_and_version(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    callback = operation("c", 3, type=OperationType.CALLBACK, callback_id="cb-1", version=2,
                         callback_timeout_seconds=60, callback_heartbeat_timeout_seconds=10)  # fmt: skip
    full = operation(
        "s1", 1, parent_id="ctx", name="charge", sub_type="Step", start_time=NOW, end_time=NOW + 1,
        input_payload='{"in": 1}', result='"ok"', error=ErrorObject(message="m", type="T"), attempt=2,
        next_attempt_time=NOW + 9, scheduled_end_time=NOW + 10, replay_children=True, version=1,
    )  # fmt: skip
    with store.transaction() as tx:
        tx.put_operations("e1", [full, operation("s2", 2, version=1), callback])
        tx.put_operations("e2", [operation("s1", 1, version=5)])
    with store.snapshot() as tx:
        assert tx.get_operations("e1", ["s1", "c", "missing"]) == {"s1": full, "c": callback}
        assert tx.get_operations("e1", []) == {}
        assert tx.get_operations("e2", iter(["s1", "s1"]))["s1"].version == 5
        assert [op.id for op in tx.list_operations("e1", 0, 10)] == ["s1", "s2", "c"]
        assert [op.id for op in tx.list_operations("e1", 1, 1)] == ["s2"]
        assert [op.id for op in tx.operations_changed_since("e1", 1)] == ["c"]
        assert [op.id for op in tx.operations_changed_since("e1", 0)] == ["s1", "s2", "c"]
        assert tx.find_callback("cb-1") == ("e1", "c")
        assert tx.find_callback("cb-2") is None

    done = full.evolve(status=OperationStatus.SUCCEEDED, error=None, replay_children=False, version=3)
    with store.transaction() as tx:
        tx.put_operations("e1", [done])
        tx.put_operations("e1", [])
    with store.snapshot() as tx:
        assert tx.get_operations("e1", ["s1"]) == {"s1": done}
        assert [op.id for op in tx.list_operations("e1", 0, 10)] == ["s1", "s2", "c"]
        assert [op.id for op in tx.operations_changed_since("e1", 2)] == ["s1"]


def test_many_operations_are_read_in_one_call(store: Store) -> None:
    insert(store, execution("e1"))
    ops = [operation(f"s{i:04d}", i + 1) for i in range(1200)]
    with store.transaction() as tx:
        tx.put_operations("e1", ops)
    with store.snapshot() as tx:
        found = tx.get_operations("e1", [op.id for op in ops])
        assert len(found) == 1200 and found["s0700"] == ops[700]


# -- history ----------------------------------------------------------------------------------


def test_events_come_back_in_order_forward_and_reverse(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    with store.transaction() as tx:
        tx.append_events("e1", [event(i) for i in range(1, 8)])
        tx.append_events("e2", [event(1, "ExecutionStarted")])
        tx.append_events("e1", [])
    with store.snapshot() as tx:
        assert tx.list_events("e1", 0, 100, False) == [event(i) for i in range(1, 8)]
        assert [e.event_id for e in tx.list_events("e1", 0, 3, False)] == [1, 2, 3]
        assert [e.event_id for e in tx.list_events("e1", 3, 3, False)] == [4, 5, 6]
        assert [e.event_id for e in tx.list_events("e1", 0, 3, True)] == [7, 6, 5]
        assert [e.event_id for e in tx.list_events("e1", 5, 10, True)] == [4, 3, 2, 1]
        assert tx.list_events("e1", 7, 10, False) == []
        assert tx.list_events("e2", 0, 10, True) == [event(1, "ExecutionStarted")]


# -- timers and scheduling --------------------------------------------------------------------


def test_timers_are_set_moved_deleted_and_fall_due_earliest_first(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    wait = Timer("e1", "w", TimerKind.WAIT, NOW + 10)
    heartbeat = Timer("e1", "c", TimerKind.CALLBACK_HEARTBEAT, NOW + 5)
    timeout = Timer("e1", "c", TimerKind.CALLBACK_TIMEOUT, NOW + 20)
    other = Timer("e2", "", TimerKind.EXECUTION_TIMEOUT, NOW + 1)
    with store.transaction() as tx:
        for timer in (wait, heartbeat, timeout, other):
            tx.set_timer(timer)
    with store.transaction() as tx:
        assert tx.due_timers(NOW, 10) == []
        assert tx.due_timers(NOW + 10, 10) == [other, heartbeat, wait]
        assert tx.due_timers(NOW + 10, 2) == [other, heartbeat]
    moved = Timer("e1", "c", TimerKind.CALLBACK_HEARTBEAT, NOW + 15)
    with store.transaction() as tx:
        tx.set_timer(moved)
    with store.transaction() as tx:
        assert tx.due_timers(NOW + 100, 10) == [other, wait, moved, timeout]
        tx.delete_timer(wait)
        assert tx.due_timers(NOW + 100, 10) == [other, moved, timeout]
        tx.delete_timers("e1", "c")
        assert tx.due_timers(NOW + 100, 10) == [other]
        tx.set_timer(wait)
        tx.delete_timers("e1")
        assert tx.due_timers(NOW + 100, 10) == [other]
    with store.snapshot() as tx:
        assert tx.due_timers(NOW + 100, 10) == [other]


def test_pending_work_is_an_open_timer_or_callback(store: Store) -> None:
    insert(store, execution("e1"))
    with store.transaction() as tx:
        assert not tx.has_pending_work("e1")
        tx.put_operations("e1", [operation("s", 1), operation("x", 2, type=OperationType.EXECUTION)])
        assert not tx.has_pending_work("e1")
        tx.set_timer(Timer("e1", "s", TimerKind.RETRY, NOW))
        assert tx.has_pending_work("e1")
        tx.delete_timers("e1")
        tx.put_operations("e1", [operation("c", 3, type=OperationType.CALLBACK, callback_id="cb")])
        assert tx.has_pending_work("e1")
        tx.put_operations("e1", [operation("c", 3, type=OperationType.CALLBACK, status=OperationStatus.SUCCEEDED)])
        assert not tx.has_pending_work("e1")


def test_leases_are_listed_by_owner_and_expired_at_once(store: Store) -> None:
    insert(
        store,
        execution("a", lease_owner="w1", lease_expiry=NOW + 30),
        execution("b", lease_owner="w1", lease_expiry=NOW + 60),
        execution("c", lease_owner="w2", lease_expiry=NOW + 30),
        execution("d", lease_owner="w1", lease_expiry=NOW - 5),
        execution("e", ready_time=NOW),
    )
    with store.transaction() as tx:
        assert sorted(tx.lease_owners(NOW)) == ["w1", "w2"]
        assert tx.lease_owners(NOW + 30) == ["w1"]  # w2's one lease has lapsed by then
        tx.expire_leases("w1", NOW)
        expiries = {x: tx.get_execution_by_id(x).lease_expiry for x in "abcd"}  # type: ignore[union-attr]
    assert expiries == {"a": NOW, "b": NOW, "c": NOW + 30, "d": NOW - 5}


def test_ready_executions_are_ready_or_lost_ones_of_the_served_functions(store: Store) -> None:
    insert(
        store,
        execution("ready", ready_time=NOW - 1),
        execution("later", ready_time=NOW + 1),
        execution("leased", lease_owner="w1", lease_expiry=NOW + 30),
        execution("lost", lease_owner="w1", lease_expiry=NOW - 2),
        execution("ended", ready_time=NOW - 3, status=ExecutionStatus.SUCCEEDED),
        execution("suspended"),
        execution("other", function="billing", ready_time=NOW - 4),
        execution("first", ready_time=NOW - 3),
    )
    with store.transaction() as tx:
        assert [e.id for e in tx.ready_executions(NOW, 10, ["orders"])] == ["first", "lost", "ready"]
        assert [e.id for e in tx.ready_executions(NOW, 2, {"orders"})] == ["first", "lost"]
        assert [e.id for e in tx.ready_executions(NOW, 10, ["billing", "orders"])] == ["other", "first", "lost", "ready"]
        assert tx.ready_executions(NOW, 10, []) == []
        assert tx.ready_executions(NOW, 10, ["nobody"]) == []
        assert [e.id for e in tx.ready_executions(NOW + 30, 10, ["orders"])] == ["first", "lost", "ready", "later", "leased"]  # fmt: skip
        assert tx.ready_executions(NOW, 10, ["orders"])[0] == execution("first", ready_time=NOW - 3)


def test_the_next_wakeup_is_the_earliest_timer_ready_time_or_lease_expiry(store: Store) -> None:
    with store.snapshot() as tx:
        assert tx.next_wakeup() is None
    insert(store, execution("a"), execution("b", lease_owner="w", lease_expiry=NOW + 30))
    with store.snapshot() as tx:
        assert tx.next_wakeup() == NOW + 30
    with store.transaction() as tx:
        tx.set_timer(Timer("a", "w", TimerKind.WAIT, NOW + 20.5))
    with store.snapshot() as tx:
        assert tx.next_wakeup() == NOW + 20.5
    with store.transaction() as tx:
        tx.update_execution(execution("a", ready_time=NOW + 3))
    with store.snapshot() as tx:
        assert tx.next_wakeup() == NOW + 3


# -- idempotency ------------------------------------------------------------------------------


def test_checkpoint_replies_are_kept_by_execution_and_client_token(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    with store.transaction() as tx:
        tx.put_checkpoint_reply("e1", "t1", '{"token": "a"}')
        tx.put_checkpoint_reply("e2", "t1", '{"token": "b"}')
    with store.snapshot() as tx:
        assert tx.get_checkpoint_reply("e1", "t1") == '{"token": "a"}'
        assert tx.get_checkpoint_reply("e2", "t1") == '{"token": "b"}'
        assert tx.get_checkpoint_reply("e1", "t2") is None


# -- payloads ---------------------------------------------------------------------------------


def test_large_payloads_go_to_blobs_and_come_back(store: Store, tmp_path: Path) -> None:
    big_input = '"' + "i" * INLINE_LIMIT + '"'
    big_result = '"' + "r" * INLINE_LIMIT * 3 + '"'
    big_op_result = '"' + "o" * INLINE_LIMIT * 2 + '"'
    small = '"' + "s" * (INLINE_LIMIT - 2) + '"'
    insert(store, execution("e1", input_payload=big_input))
    with store.transaction() as tx:
        tx.update_execution(execution("e1", input_payload=big_input, result=big_result))
        tx.put_operations("e1", [operation("s1", 1, input_payload=big_input, result=big_op_result),
                                 operation("s2", 2, result=small)])  # fmt: skip
    assert sorted(p.stat().st_size for p in blob_files(tmp_path / "blobs")) == sorted(
        len(x) for x in (big_input, big_result, big_op_result)
    )
    with store.snapshot() as tx:
        stored = tx.get_execution_by_id("e1")
        assert stored is not None and (stored.input_payload, stored.result) == (big_input, big_result)
        ops = tx.get_operations("e1", ["s1", "s2"])
        assert (ops["s1"].input_payload, ops["s1"].result, ops["s2"].result) == (big_input, big_op_result, small)


def test_payloads_keep_any_character(store: Store) -> None:
    odd = '"nul \x00, emoji \U0001f600, accents é, quote \' and 100% {}"'
    insert(store, execution("e1", input_payload=odd, result=odd))
    with store.transaction() as tx:
        tx.put_operations("e1", [operation("s1", 1, result=odd, name="naïve 100%")])
    with store.snapshot() as tx:
        stored = tx.get_execution_by_id("e1")
        assert stored is not None and (stored.input_payload, stored.result) == (odd, odd)
        op = tx.get_operations("e1", ["s1"])["s1"]
        assert (op.result, op.name) == (odd, "naïve 100%")
