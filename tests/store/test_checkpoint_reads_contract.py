"""What the checkpoint and resume paths read and write, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from store_backends import execution, insert, operation

from perdure.protocol.records import ErrorObject, ExecutionStatus, OperationStatus, OperationType
from perdure.store.base import Store


def test_latest_operation_is_the_last_started_top_level_success_of_its_sub_type(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    done = {"type": OperationType.CONTEXT, "sub_type": "Checkpoint", "status": OperationStatus.SUCCEEDED}
    with store.transaction() as tx:
        tx.put_operations(
            "e1",
            [
                operation("1", 1, **done, result="first"),
                operation("2", 2, **done, result="second"),
                operation("3", 3),  # a step after it
                operation("3-1", 4, **done, parent_id="3"),  # not top-level
                operation("4", 5, type=OperationType.CONTEXT, sub_type="Checkpoint"),  # not succeeded
                operation("5", 6, type=OperationType.CONTEXT, sub_type="Other", status=OperationStatus.SUCCEEDED),
            ],
        )
        tx.put_operations("e2", [operation("9", 1, **done, result="other execution")])
    with store.snapshot() as tx:
        latest = tx.latest_operation("e1", "Checkpoint")
        assert latest is not None and (latest.id, latest.result) == ("2", "second")
        assert tx.latest_operation("e1", "Missing") is None
        assert tx.latest_operation("nope", "Checkpoint") is None


def test_an_update_given_the_execution_as_read_writes_what_changed_and_keeps_the_rest(store: Store) -> None:
    insert(store, execution("e1", input_payload="in", retention_days=3))
    with store.transaction() as tx:
        before = tx.get_execution_by_id("e1")
        assert before is not None
        tx.update_execution(
            before.evolve(version=7, event_count=2, result="r" * 5000, error=ErrorObject(message="m")), before=before
        )
    with store.transaction() as tx:
        after = tx.get_execution_by_id("e1")
        assert after is not None
        assert (after.version, after.event_count, after.result, after.error) == (7, 2, "r" * 5000, ErrorObject(message="m"))
        assert (after.input_payload, after.retention_days, after.status) == ("in", 3, ExecutionStatus.RUNNING)
        # Nothing changed: nothing to write.
        tx.update_execution(after, before=after)
        tx.update_execution(after.evolve(status=ExecutionStatus.SUCCEEDED, result=None), before=after)
    with store.snapshot() as tx:
        final = tx.get_execution_by_id("e1")
        assert final is not None and (final.status, final.result, final.version) == (ExecutionStatus.SUCCEEDED, None, 7)


def test_checkpoint_reads_are_the_execution_the_batchs_operations_and_the_reply_to_its_client_token(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    with store.transaction() as tx:
        tx.put_operations("e1", [operation("1", 1), operation("2", 2)])
        tx.put_operations("e2", [operation("3", 1)])
        tx.put_checkpoint_reply("e1", "token-a", '{"token": "t"}')
    e1 = execution("e1")
    with store.transaction() as tx:
        reads = tx.checkpoint_reads(e1.arn, ["2", "3", "missing"], "token-a")
        assert reads.execution == e1
        # Only this execution's operations, only those asked for.
        assert sorted(reads.operations) == ["2"] and reads.operations["2"].position == 2
        assert reads.reply == '{"token": "t"}'
        assert tx.checkpoint_reads(e1.arn, ["1"], "token-b").reply is None
        assert tx.checkpoint_reads(e1.arn, ["1"], None).reply is None
        missing = tx.checkpoint_reads(e1.arn.replace("e1", "nope"), ["1"], "token-a")
        assert missing.execution is None and missing.operations == {} and missing.reply is None
