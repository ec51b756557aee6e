"""The store contract's delete of one execution (Store.delete_execution) and the columns of chained
invokes and pauses, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from store_backends import INLINE_LIMIT, NOW, event, execution, insert, operation

from perdure.errors import BlobNotFoundError
from perdure.protocol.records import ExecutionStatus
from perdure.protocol.timers import Timer, TimerKind
from perdure.store.base import Store
from perdure.store.blobs import blob_key


def payload(letter: str) -> str:
    """A JSON string over the inline limit: it goes to a blob."""
    return '"' + letter * (INLINE_LIMIT * 2) + '"'


def has_blob(store: Store, text: str) -> bool:
    try:
        return store.blobs.get(blob_key(text.encode("utf-8"))) == text.encode("utf-8")
    except BlobNotFoundError:
        return False


def test_deleting_an_ended_execution_removes_its_rows_and_the_blobs_only_it_used(store: Store) -> None:
    insert(
        store,
        execution("gone", status=ExecutionStatus.FAILED, end_time=NOW, input_payload=payload("A"), result=payload("S")),
        execution("kept", status=ExecutionStatus.SUCCEEDED, end_time=NOW, input_payload=payload("S")),
    )
    with store.transaction() as tx:
        tx.put_operations("gone", [operation("s1", 2, result=payload("B"))])
        tx.append_events("gone", [event(1)])
        tx.set_timer(Timer("gone", "s1", TimerKind.RETRY, NOW + 5))
    deleted = store.delete_execution("gone")
    assert deleted == sorted(blob_key(payload(c).encode()) for c in "AB")
    assert not has_blob(store, payload("A")) and not has_blob(store, payload("B"))
    assert has_blob(store, payload("S"))
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("gone") is None
        assert tx.list_events("gone", 0, 10, False) == []
        assert tx.due_timers(NOW + 10, 10) == []
        kept = tx.get_execution_by_id("kept")
    assert kept is not None and kept.input_payload == payload("S")


@pytest.mark.parametrize("status", [ExecutionStatus.RUNNING, ExecutionStatus.PAUSING, ExecutionStatus.PAUSED])
def test_an_execution_that_has_not_ended_is_not_deleted(store: Store, status: ExecutionStatus) -> None:
    insert(store, execution("live", status=status, input_payload=payload("A")))
    assert store.delete_execution("live") is None
    assert store.delete_execution("missing") is None
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("live") is not None
    assert has_blob(store, payload("A"))


def test_the_parent_tenant_and_pause_of_an_execution_round_trip(store: Store) -> None:
    child = execution(
        "child",
        parent_arn="arn:parent",
        parent_operation_id="op-1",
        tenant_id="tenant 1",
        status=ExecutionStatus.PAUSED,
        pause_time=NOW + 1,
        pause_reason="why",
        timeout_paused=True,
        paused_seconds=2.5,
    )
    insert(store, child)
    with store.snapshot() as tx:
        assert tx.get_execution_by_id("child") == child
    with store.transaction() as tx:
        tx.update_execution(child.evolve(status=ExecutionStatus.RUNNING, pause_time=None, timeout_paused=False, parent_arn="x"))
    with store.snapshot() as tx:
        read = tx.get_execution_by_id("child")
    assert read is not None
    assert (read.status, read.pause_time, read.timeout_paused, read.paused_seconds) == (ExecutionStatus.RUNNING, None, False, 2.5)
    assert read.parent_arn == "arn:parent"  # written once, at insert


def test_an_expired_lease_of_a_pausing_execution_is_offered_to_the_leaser(store: Store) -> None:
    insert(
        store,
        execution("pausing", status=ExecutionStatus.PAUSING, lease_owner="gone", lease_expiry=NOW - 1),
        execution("paused", status=ExecutionStatus.PAUSED, ready_time=NOW - 1),
    )
    with store.transaction() as tx:
        assert [e.id for e in tx.ready_executions(NOW, 10, ["orders"])] == ["pausing"]
