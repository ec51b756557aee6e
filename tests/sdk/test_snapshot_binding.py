"""A snapshot is signed for one operation of one execution and is refused anywhere else.

Someone who can write the database copies one execution's checkpoint rows into another: the
second must not resume from them (and hand back the first's saved data), and its dashboard
view must not show them. A restart, which copies checkpoints on purpose, signs its copies anew.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import perdure as durable
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.snapshots import Snapshot, SnapshotCodec, SnapshotError
from perdure.service import console
from perdure.testing import DurableTestRunner

SECRET = b"perdure-testing-secret"  # DurableTestRunner's default key


@durable.function
def keeps_a_secret(ctx: Any, event: Any) -> Any:
    secret = event["secret"]
    ctx.checkpoint()
    answer = ctx.wait_for_callback(lambda callback_id: None, name="approval", timeout=timedelta(hours=1))
    return {"secret": secret, "answer": answer}


def nothing_stored(operation_id: str) -> str | None:
    return None


def test_a_snapshot_verifies_only_for_the_execution_and_operation_it_was_signed_for() -> None:
    codec = SnapshotCodec(b"k" * 32)
    text = codec.encode(Snapshot("f", {"x": 1}, 1, 3), "arn:a", "op-1", "f.py", 1).text

    assert codec.decode(text, "arn:a", "op-1", nothing_stored)[0].locals == {"x": 1}
    for arn, operation_id in [("arn:b", "op-1"), ("arn:a", "op-2"), ("arn:ao", "p-1")]:
        with pytest.raises(SnapshotError, match="not signed with this server's key for this checkpoint"):
            codec.decode(text, arn, operation_id, nothing_stored)


def copy_checkpoints(database: Path, source_arn: str, target_arn: str) -> int:
    """Overwrites the target's checkpoint rows with the source's, as a database writer could."""
    with sqlite3.connect(database) as db:
        ids = {
            arn: db.execute("SELECT id FROM executions WHERE arn = ?", (arn,)).fetchone()[0]
            for arn in (source_arn, target_arn)
        }
        rows = db.execute(
            "SELECT id, result, result_blob FROM operations WHERE execution_id = ? AND sub_type = 'Checkpoint'",
            (ids[source_arn],),
        ).fetchall()
        for operation_id, result, result_blob in rows:
            db.execute(
                "UPDATE operations SET result = ?, result_blob = ? WHERE execution_id = ? AND id = ?",
                (result, result_blob, ids[target_arn], operation_id),
            )
    return len(rows)


@pytest.fixture
def runner(tmp_path: Path) -> Any:
    with DurableTestRunner(tmp_path) as runner:
        yield runner


def test_checkpoints_copied_into_another_execution_are_refused_on_resume(
    runner: DurableTestRunner, tmp_path: Path
) -> None:
    alice = runner.run(keeps_a_secret, {"secret": "alice's private data"}, name="alice")
    mallory = runner.run(keeps_a_secret, {"secret": "mallory's own data"}, name="mallory")
    assert alice.status == mallory.status == "RUNNING"
    assert copy_checkpoints(tmp_path / "perdure.db", alice.arn, mallory.arn) == 1

    runner.succeed_callback(mallory.callbacks[0], "yes")
    resumed = runner.resume(mallory)

    assert "alice" not in repr(resumed.result)
    assert resumed.status == "FAILED"
    assert resumed.error is not None and "not signed with this server's key for this checkpoint" in (
        resumed.error.message or ""
    )
    # Alice's own execution still resumes from her snapshot.
    runner.succeed_callback(alice.callbacks[0], "yes")
    assert runner.resume(alice).result == {"secret": "alice's private data", "answer": "yes"}


def test_checkpoints_copied_into_another_execution_are_not_shown_on_its_page(
    runner: DurableTestRunner, tmp_path: Path
) -> None:
    alice = runner.run(keeps_a_secret, {"secret": "alice's private data"}, name="alice")
    mallory = runner.run(keeps_a_secret, {"secret": "mallory's own data"}, name="mallory")
    copy_checkpoints(tmp_path / "perdure.db", alice.arn, mallory.arn)

    views = console.checkpoints(runner.service, mallory.arn, SnapshotCodec(SECRET))

    assert len(views) == 1 and views[0].variables == []
    assert all(view.error and "not signed with this server's key for this checkpoint" in view.error for view in views)
    own = console.checkpoints(runner.service, alice.arn, SnapshotCodec(SECRET))
    assert {v.name: v.preview for v in own[0].variables}["secret"] == '"alice\'s private data"'


def test_a_restart_signs_its_copies_for_the_new_execution_and_refuses_copied_ones(
    runner: DurableTestRunner, tmp_path: Path
) -> None:
    alice = runner.run(keeps_a_secret, {"secret": "alice's private data"}, name="alice")
    mallory = runner.run(keeps_a_secret, {"secret": "mallory's own data"}, name="mallory")
    copy_checkpoints(tmp_path / "perdure.db", alice.arn, mallory.arn)

    restarted = runner.service.restart_execution(alice.arn, "1")
    first = runner.resume(restarted.arn)
    runner.succeed_callback(first.callbacks[0], "again")
    assert runner.resume(restarted.arn).result == {"secret": "alice's private data", "answer": "again"}

    with pytest.raises(SnapshotError, match="not signed with this server's key for this checkpoint"):
        runner.service.restart_execution(mallory.arn, "1")
    names = {e.name for e in runner.service.list_executions(ExecutionQuery(function_name="keeps_a_secret")).executions}
    assert names == {"alice", "mallory", "alice-restart-1"}, "the refused restart stored nothing"


def test_a_snapshot_signed_before_signatures_named_their_execution_is_refused_with_why() -> None:
    key = b"k" * 32
    body = b"F" + pickle.dumps(Snapshot("f", {"x": 1}, 1, 3), protocol=5)
    unbound = "perdure-snapshot-v1:" + base64.b64encode(hmac.new(key, body, hashlib.sha256).digest() + body).decode()

    with pytest.raises(SnapshotError, match="was written by an earlier Perdure, whose signatures did not name"):
        SnapshotCodec(key).decode(unbound, "arn:a", "1", nothing_stored)
