"""The console's reads (perdure.service.console and the store queries under it), on SQLite and PostgreSQL.

Executions with checkpoints, callbacks and child contexts are made by running real seed-style
functions with the in-process runner on each backend.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from store_backends import NOW, execution, insert

import perdure as durable
from perdure.errors import ExecutionNotFoundError, InvalidParameterError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ExecutionStatus, OperationType
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.local import LocalRunner
from perdure.sdk.function import MARKER
from perdure.service import console
from perdure.service.executions import DurableService
from perdure.store.base import Store
from perdure.testing import SkippableClock

KEY = b"console-test-key"


class Note:
    """A value of a class of the test's own, saved at a checkpoint."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Note({self.text!r})"


@durable.function
def reviewed(ctx, event):
    items = list(range(event["items"]))
    note = Note("draft " * 60)
    total = ctx.step(lambda: sum(items), name="sum")
    ctx.checkpoint()
    doubled = ctx.map(items[:3], lambda child, item, index: child.step(lambda: item * 2, name=f"double {index}"), name="doubles")
    answer = ctx.wait_for_callback(lambda callback_id: None, name="review", timeout=timedelta(hours=2))
    return {"total": total, "doubled": doubled, "answer": answer, "note": note.text[:5]}


@durable.function
def quick(ctx, event):
    return ctx.step(lambda: event, name="echo")


@pytest.fixture
def runner(store: Store, clock: SkippableClock) -> LocalRunner:
    service = DurableService(store, clock=clock)
    return LocalRunner(service, SnapshotCodec(KEY), [getattr(reviewed, MARKER), getattr(quick, MARKER)])


def start(runner: LocalRunner, function: Any, event: Any, name: str) -> str:
    arn = runner.start(getattr(function, MARKER), event, name).arn
    runner.run_until_blocked(arn)
    return arn


# -- counts --------------------------------------------------------------------------------


def test_counts_by_status_follow_the_listing_filters(store: Store) -> None:
    insert(
        store,
        execution("a", start_time=NOW, name="order-a"),
        execution("b", start_time=NOW + 1, status=ExecutionStatus.SUCCEEDED, name="order-b"),
        execution("c", function="billing", start_time=NOW + 2, status=ExecutionStatus.SUCCEEDED, name="order-c"),
        execution("d", start_time=NOW + 3, status=ExecutionStatus.FAILED, name="invoice-d"),
        execution("e", start_time=NOW + 4, status=ExecutionStatus.PAUSED, name="order-e"),
    )
    service = DurableService(store)

    def counts(**filters: Any) -> dict[str, int]:
        return {status.value: n for status, n in console.count_by_status(service, ExecutionQuery(**filters)).items()}

    assert counts() == {"RUNNING": 1, "SUCCEEDED": 2, "FAILED": 1, "PAUSED": 1}
    assert counts(function_name="orders") == {"RUNNING": 1, "SUCCEEDED": 1, "FAILED": 1, "PAUSED": 1}
    assert counts(statuses=(ExecutionStatus.SUCCEEDED,)) == {"SUCCEEDED": 2}
    assert counts(name="order-c") == {"SUCCEEDED": 1}
    assert counts(name_prefix="order-") == {"RUNNING": 1, "SUCCEEDED": 2, "PAUSED": 1}
    assert counts(started_after=NOW + 1, started_before=NOW + 4) == {"SUCCEEDED": 2, "FAILED": 1}
    # Marker and limit do not narrow a count.
    assert counts(limit=1, marker=None, function_name="billing") == {"SUCCEEDED": 1}
    with store.snapshot() as tx:
        listed = [e.id for e in tx.list_executions(ExecutionQuery(name_prefix="order-")).executions]
    assert listed == ["e", "c", "b", "a"]


def test_function_stats_count_what_started_since(store: Store) -> None:
    insert(
        store,
        execution("old", start_time=NOW - 100, status=ExecutionStatus.FAILED),
        execution("a", start_time=NOW),
        execution("b", start_time=NOW + 1, status=ExecutionStatus.PAUSING),
        execution("c", start_time=NOW + 2, status=ExecutionStatus.SUCCEEDED),
        execution("d", start_time=NOW + 3, status=ExecutionStatus.TIMED_OUT),
        execution("e", function="billing", start_time=NOW + 4, status=ExecutionStatus.STOPPED),
        execution("f", function="billing", start_time=NOW + 5, status=ExecutionStatus.FAILED),
    )
    stats = console.function_stats(DurableService(store), NOW)
    assert stats == [
        console.FunctionStats("billing", running=0, succeeded=0, failed=1, timed_out=0, stopped=1),
        console.FunctionStats("orders", running=2, succeeded=1, failed=0, timed_out=1, stopped=0),
    ]


# -- the inbox -----------------------------------------------------------------------------


def test_pending_callbacks_are_listed_oldest_first_across_executions_and_paged(
    runner: LocalRunner, clock: SkippableClock
) -> None:
    arns = []
    for i in range(5):
        arns.append(start(runner, reviewed, {"items": 4}, f"r{i}"))
        clock.advance(10)
    start(runner, quick, {"x": 1}, "no-callback")
    service = runner.service
    service.stop_execution(arns[3])  # an ended execution's callback waits for nobody

    first = console.pending_callbacks(service, limit=2)
    second = console.pending_callbacks(service, limit=2, marker=first.next_marker)
    assert first.next_marker is not None and second.next_marker is None
    listed = [*first.callbacks, *second.callbacks]
    assert [c.execution_arn for c in listed] == [arns[0], arns[1], arns[2], arns[4]]
    assert [c.started for c in listed] == sorted(c.started for c in listed)
    found = listed[0]
    assert (found.execution_name, found.function_name, found.name) == ("r0", "reviewed", "review")
    assert found.timeout_time == found.started + 2 * 3600 and found.heartbeat_timeout is None
    assert found.next_step.startswith("Resumes reviewed after callback 'review', from checkpoint 2 (test_console.py:")
    assert found.operation_id in {op.operation.id for op in _walk(console.operation_tree(service, arns[0]))}

    # Completing one takes it out of the inbox.
    service.succeed_callback(found.callback_id, '"fine"')
    assert [c.execution_arn for c in console.pending_callbacks(service).callbacks] == [arns[1], arns[2], arns[4]]
    assert console.pending_callbacks(service, function_name="quick").callbacks == []
    assert len(console.pending_callbacks(service, function_name="reviewed").callbacks) == 3
    with pytest.raises(InvalidParameterError, match="Invalid marker"):
        console.pending_callbacks(service, marker="not-a-marker")
    with pytest.raises(InvalidParameterError, match="limit must be between 1 and 1000"):
        console.pending_callbacks(service, limit=0)


# -- one execution -------------------------------------------------------------------------


def _walk(nodes: list[console.OperationNode]) -> list[console.OperationNode]:
    return [n for node in nodes for n in [node, *_walk(node.children)]]


def test_the_operation_tree_nests_contexts_with_durations_and_attempts(runner: LocalRunner) -> None:
    arn = start(runner, reviewed, {"items": 4}, "tree")
    tree = console.operation_tree(runner.service, arn)
    assert [(n.operation.sub_type, n.operation.name) for n in tree] == [
        ("Step", "sum"),
        ("Checkpoint", "test_console.py:" + tree[1].operation.name.split(":")[1]),  # type: ignore[union-attr]
        ("Map", "doubles"),
        ("Checkpoint", tree[3].operation.name),
        ("WaitForCallback", "review"),
    ]
    doubles = tree[2]
    assert [n.operation.sub_type for n in doubles.children] == ["MapIteration"] * 3
    assert [n.children[0].operation.name for n in doubles.children] == ["double 0", "double 1", "double 2"]
    assert doubles.duration is not None and doubles.duration >= 0
    assert tree[0].attempts == 1 and doubles.attempts == 0
    waiting = tree[4]
    assert waiting.duration is None  # it has not ended
    assert [n.operation.type for n in waiting.children] == [OperationType.CALLBACK, OperationType.STEP]
    with pytest.raises(ExecutionNotFoundError):
        console.operation_tree(runner.service, arn.replace("/tree/", "/missing/"))


def test_checkpoints_show_the_saved_variables_readably(runner: LocalRunner) -> None:
    arn = start(runner, reviewed, {"items": 500}, "vars")
    views = console.checkpoints(runner.service, arn, SnapshotCodec(KEY))
    assert [v.number for v in views] == [1, 2] and all(v.error is None for v in views)
    first = {v.name: v for v in views[0].variables}
    assert set(first) == {"event", "items", "note", "total"}
    assert first["total"].preview == str(sum(range(500))) and not first["total"].truncated
    assert first["event"].preview == "{'items': 500}" and first["event"].type_name == "dict"
    items = first["items"]
    assert items.truncated and len(items.preview) <= 200 and items.preview.startswith("[0, 1, 2")
    assert "499" in items.full and items.type_name == "list"
    note = first["note"]
    assert note.type_name.endswith("test_console.Note") and note.truncated
    assert len(note.preview) <= 200 and note.full == repr(Note("draft " * 60))
    assert views[1].operation_id != views[0].operation_id and views[1].time >= views[0].time


def test_a_snapshot_signed_with_another_key_is_refused_not_loaded(runner: LocalRunner) -> None:
    arn = start(runner, reviewed, {"items": 3}, "forged")
    views = console.checkpoints(runner.service, arn, SnapshotCodec(b"some other key"))
    assert [v.variables for v in views] == [[], []]
    assert all(v.error is not None and "is not signed with this server's key" in v.error for v in views)


def test_checkpoints_use_the_servers_own_key_by_default(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # As `perdure serve` keeps it: PERDURE_SECRET, else the `secret` file beside the SQLite database.
    from perdure.protocol.secret import load_secret
    from perdure.store.sqlite import SQLiteStore

    monkeypatch.delenv("PERDURE_SECRET", raising=False)
    store = SQLiteStore(tmp_path / "data" / "perdure.db")
    try:
        service = DurableService(store, clock=SkippableClock())
        local = LocalRunner(service, SnapshotCodec(load_secret(tmp_path / "data")), [getattr(reviewed, MARKER)])
        arn = start(local, reviewed, {"items": 2}, "default-key")
        views = console.checkpoints(service, arn)
        assert [v.error for v in views] == [None, None] and views[0].variables
        monkeypatch.setenv("PERDURE_SECRET", "another key, of 32 bytes or more")
        assert all(v.error and "not signed with this server's key" in v.error for v in console.checkpoints(service, arn))
    finally:
        store.close()
