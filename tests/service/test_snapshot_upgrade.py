"""Snapshots an earlier Perdure signed over their bytes alone are signed once for the checkpoint they are in.

Before signatures named their execution and checkpoint (``perdure-snapshot-v1:``), a snapshot
was signed with HMAC-SHA256 over its body alone. The tests write such snapshots as that code
did and check that, after the upgrade a serving process runs at start, they resume, while one
whose signature fails is still refused; on SQLite and PostgreSQL, once or many times at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from servers import PERDURE, Server, wait_for
from store_backends import StoreFactory, execution, insert, operation

from perdure.errors import BlobNotFoundError
from perdure.protocol.queries import StoredResult
from perdure.protocol.records import OperationStatus, OperationType
from perdure.protocol.snapshots import BaseSnapshot, Snapshot, SnapshotCodec, SnapshotError
from perdure.service.snapshot_upgrade import UPGRADE, SnapshotUpgrade, upgrade_snapshots
from perdure.store.base import Store
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore

KEY = b"k" * 32
NOW = 1_800_000_000.0
CHECKPOINT = {"type": OperationType.CONTEXT, "sub_type": "Checkpoint", "status": OperationStatus.SUCCEEDED}
EARLIER = "was written by an earlier Perdure, whose signatures did not name"


def unbound(text: str, key: bytes = KEY) -> str:
    """The snapshot as Perdure signed it before 1b9a4eb: ``perdure-snapshot-v1:``, HMAC over its body alone."""
    body = base64.b64decode(text.removeprefix("perdure-snapshot-v2:"))[32:]
    return "perdure-snapshot-v1:" + base64.b64encode(hmac.new(key, body, hashlib.sha256).digest() + body).decode()


def arn(execution_id: str) -> str:
    return str(execution(execution_id).arn)


def snapshots(execution_id: str) -> dict[str, str]:
    """A whole snapshot ("1", over the test stores' 1 KiB inline limit, so in a blob) and a delta of it ("2")."""
    codec = SnapshotCodec(KEY)
    messages = ["m" * 2000, "a"]
    first = codec.encode(Snapshot("f", {"messages": messages}, 1, 1), arn(execution_id), "1", "f.py", 1)
    base = BaseSnapshot("1", first.data, first.chain_bytes)
    second = codec.encode(Snapshot("f", {"messages": [*messages, "n"]}, 2, 2), arn(execution_id), "2", "f.py", 2, base)
    assert second.text.startswith("perdure-snapshot-v2:") and len(second.text) < 200, "a delta of the first"
    return {"1": first.text, "2": second.text}


def put_checkpoints(store: Store, execution_id: str, texts: dict[str, str]) -> None:
    with store.transaction() as tx:
        tx.put_operations(
            execution_id,
            [operation(op_id, int(op_id), **CHECKPOINT, result=text) for op_id, text in texts.items()],
        )


def results(store: Store, execution_id: str) -> dict[str, str]:
    with store.snapshot() as tx:
        return {op.id: op.result or "" for op in tx.list_operations(execution_id, 0, 100)}


def resumed_locals(execution_id: str, texts: dict[str, str], latest: str) -> dict[str, Any]:
    snapshot, _ = SnapshotCodec(KEY).decode(texts[latest], arn(execution_id), latest, texts.get)
    return snapshot.locals


def blob_keys(store: Store) -> dict[str, str]:
    """The blob keys of checkpoint results, by operation ID (of any execution)."""
    with store.snapshot() as tx:
        found = tx.results_with_prefix("Checkpoint", "(no inline result starts so)", None, 1000).results
    return {r.operation_id: r.blob_key for r in found if r.blob_key is not None}


@pytest.fixture
def store(open_test_store: StoreFactory) -> Store:
    """A store on a fresh database, where no upgrade is recorded yet (PostgreSQL's is shared by the tests)."""
    store = open_test_store()
    if isinstance(store, PostgresStore):
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("DELETE FROM upgrades")
    return store


def test_v1_snapshots_inline_in_blobs_and_in_delta_chains_are_signed_for_their_checkpoint(store: Store) -> None:
    insert(store, execution("e1"))
    put_checkpoints(store, "e1", {op_id: unbound(text) for op_id, text in snapshots("e1").items()})
    before = results(store, "e1")
    with pytest.raises(SnapshotError, match=EARLIER):
        resumed_locals("e1", before, "2")
    v1_blob = blob_keys(store)["1"]

    upgrade = upgrade_snapshots(store, SnapshotCodec(KEY), NOW)

    assert (upgrade.done_before, upgrade.signed, upgrade.refused) == (False, 2, 0)
    with pytest.raises(BlobNotFoundError):
        store.blobs.get(v1_blob)  # the saved data signed the old way is not left behind
    after = results(store, "e1")
    assert all(text.startswith("perdure-snapshot-v2:") for text in after.values())
    assert resumed_locals("e1", after, "2") == {"messages": ["m" * 2000, "a", "n"]}
    assert resumed_locals("e1", after, "1") == {"messages": ["m" * 2000, "a"]}


def test_a_v1_snapshot_whose_signature_fails_is_left_refused_and_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    insert(store, execution("e1"))
    forged = unbound(snapshots("e1")["1"], key=b"not this server's key, but as long")
    put_checkpoints(store, "e1", {"1": forged})

    with caplog.at_level(logging.WARNING, logger="perdure.service.snapshot_upgrade"):
        upgrade = upgrade_snapshots(store, SnapshotCodec(KEY), NOW)

    assert (upgrade.signed, upgrade.refused) == (0, 1)
    assert upgrade.note is not None and "1 whose signature does not match this server's key" in upgrade.note
    assert results(store, "e1") == {"1": forged}
    with pytest.raises(SnapshotError, match=EARLIER):
        resumed_locals("e1", results(store, "e1"), "1")
    assert f"The snapshot of {arn('e1')} at operation 1 was written by an earlier Perdure" in caplog.text


def test_a_row_copied_into_another_execution_before_the_upgrade_is_bound_where_it_was_copied_to(
    store: Store,
) -> None:
    # The trade-off the upgrade makes (see perdure.service.snapshot_upgrade): a v1 copy looks
    # like its original. After the upgrade, a copy is refused as any copy of a v2 snapshot is.
    insert(store, execution("alice"), execution("mallory"))
    alice = {"1": unbound(snapshots("alice")["1"])}
    put_checkpoints(store, "alice", alice)
    put_checkpoints(store, "mallory", alice)  # the same bytes: one blob, as old restarts shared
    v1_blob = blob_keys(store)["1"]

    upgrade_snapshots(store, SnapshotCodec(KEY), NOW)

    assert resumed_locals("mallory", results(store, "mallory"), "1") == {"messages": ["m" * 2000, "a"]}
    assert resumed_locals("alice", results(store, "alice"), "1") == {"messages": ["m" * 2000, "a"]}
    with pytest.raises(BlobNotFoundError):
        store.blobs.get(v1_blob)
    put_checkpoints(store, "mallory", results(store, "alice"))
    with pytest.raises(SnapshotError, match="not signed with this server's key for this checkpoint"):
        resumed_locals("mallory", results(store, "mallory"), "1")


def test_the_upgrade_is_recorded_and_a_later_start_reads_nothing_but_that(store: Store) -> None:
    insert(store, execution("e1"), execution("e2"))
    put_checkpoints(store, "e1", {"1": unbound(snapshots("e1")["1"])})

    first = upgrade_snapshots(store, SnapshotCodec(KEY), NOW)
    # Written after the upgrade (by an earlier Perdure left running): no later start signs it.
    late = unbound(snapshots("e2")["1"])
    put_checkpoints(store, "e2", {"1": late})
    second = upgrade_snapshots(store, SnapshotCodec(KEY), NOW + 1)

    assert (first.done_before, first.signed) == (False, 1)
    assert (second.done_before, second.signed, second.note) == (True, 0, None)
    assert results(store, "e2") == {"1": late}
    with store.snapshot() as tx:
        assert tx.upgrade_done(UPGRADE) == NOW


def _upgrade_after(
    barrier: Any, open_store: StoreFactory, results: multiprocessing.Queue[tuple[int, int, int] | str]
) -> None:
    try:
        store = open_store()
        barrier.wait()
        upgrade = upgrade_snapshots(store, SnapshotCodec(KEY), NOW)
        results.put((upgrade.signed, upgrade.refused, upgrade.unread))
        store.close()
    except Exception as error:  # noqa: BLE001 - the parent reports what each process saw
        results.put(f"{type(error).__name__}: {error}")


def test_processes_upgrading_at_once_sign_each_snapshot_once_and_agree(
    store: Store, open_test_store: StoreFactory
) -> None:
    ids = [f"e{n:03}" for n in range(600)]  # more than one stretch of the walk (1000 operations)
    insert(store, *(execution(execution_id) for execution_id in ids))
    for execution_id in ids:
        put_checkpoints(store, execution_id, {op_id: unbound(text) for op_id, text in snapshots(execution_id).items()})
    processes_count = 4
    # fork: the processes start in milliseconds and meet at the barrier, so they race for real.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes_count)
    queue: multiprocessing.Queue[tuple[int, int, int] | str] = context.Queue()
    processes = [
        context.Process(target=_upgrade_after, args=(barrier, open_test_store, queue)) for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)

    signed = [outcome[0] for outcome in outcomes if isinstance(outcome, tuple)]
    assert len(signed) == processes_count, outcomes
    # None found a v1 blob gone: one deleted by another process, having rewritten its row, is read again.
    assert all(outcome[1:] == (0, 0) for outcome in outcomes), outcomes
    assert sum(signed) == 2 * len(ids), "each snapshot signed by one process"
    for execution_id in ids:
        texts = results(store, execution_id)
        assert resumed_locals(execution_id, texts, "2") == {"messages": ["m" * 2000, "a", "n"]}
    assert upgrade_snapshots(store, SnapshotCodec(KEY), NOW).done_before


class RacingBlobs(FileBlobStore):
    """A blob folder whose first read lets another process's upgrade run to its end just before it."""

    def __init__(self, root: Path, race: Callable[[], object]) -> None:
        super().__init__(root)
        self.race: Callable[[], object] | None = race

    def get(self, key: str) -> bytes:
        race, self.race = self.race, None
        if race is not None:
            race()
        return super().get(key)


def test_a_v1_blob_another_process_rewrote_and_deleted_meanwhile_is_read_again_not_reported_missing(
    store: Store, open_test_store: StoreFactory, tmp_path: Path
) -> None:
    insert(store, execution("e1"))
    put_checkpoints(store, "e1", {op_id: unbound(text) for op_id, text in snapshots("e1").items()})
    other: list[SnapshotUpgrade] = []
    racing = open_test_store(
        blobs=RacingBlobs(tmp_path / "blobs", lambda: other.append(upgrade_snapshots(store, SnapshotCodec(KEY), NOW)))
    )

    upgrade = upgrade_snapshots(racing, SnapshotCodec(KEY), NOW)

    assert other[0].signed == 2
    assert (upgrade.signed, upgrade.refused, upgrade.unread) == (0, 0, 0)
    assert resumed_locals("e1", results(store, "e1"), "2") == {"messages": ["m" * 2000, "a", "n"]}


def test_results_with_prefix_walks_a_stretch_at_a_time_in_key_order_and_replace_result_checks_the_row(
    store: Store,
) -> None:
    insert(store, execution("e1"), execution("e2"))
    with store.transaction() as tx:
        tx.put_operations(
            "e1",
            [
                operation("1", 1, **CHECKPOINT, result="old:a"),
                operation("2", 2, **CHECKPOINT, result="new:b"),
                operation("3", 3, **CHECKPOINT, result="x" * 2000),  # in a blob
                operation("4", 4, result="old:step"),  # another sub type
            ],
        )
        tx.put_operations("e2", [operation("1", 1, **CHECKPOINT, result="old:c", version=7)])
    with store.snapshot() as tx:
        scans = [tx.results_with_prefix("Checkpoint", "old:", None, 2)]
        while (last := scans[-1].last) is not None:
            scans.append(tx.results_with_prefix("Checkpoint", "old:", last, 2))
    assert [scan.last for scan in scans] == [("e1", "2"), ("e1", "4"), None], "two operations at a time"
    found = [result for scan in scans for result in scan.results]
    assert [(r.execution_id, r.operation_id, r.inline) for r in found] == [
        ("e1", "1", "old:a"), ("e1", "3", None), ("e2", "1", "old:c"),
    ]  # fmt: skip
    assert found[1].blob_key is not None and store.blobs.get(found[1].blob_key) == b"x" * 2000
    assert found[2].execution_arn == arn("e2")

    with store.transaction() as tx:
        assert tx.replace_result(found[2], "new:c")
        assert not tx.replace_result(found[2], "new:again"), "the row no longer holds what was read"
        assert tx.replace_result(found[1], "y" * 3000)
        assert not tx.replace_result(StoredResult("e1", arn("e1"), "9", None, None), "new:none")
    with store.snapshot() as tx:
        ops = tx.get_operations("e2", ["1"])
        assert (ops["1"].result, ops["1"].version) == ("new:c", 7)
        assert tx.get_operations("e1", ["3"])["3"].result == "y" * 3000
        assert tx.upgrade_done("test") is None
    with store.transaction() as tx:
        tx.record_upgrade("test", NOW)
        tx.record_upgrade("test", NOW + 5)
    with store.snapshot() as tx:
        assert tx.upgrade_done("test") == NOW


def test_delete_unreferenced_blobs_keeps_those_a_row_refers_to(store: Store) -> None:
    insert(store, execution("e1", input_payload="i" * 2000))
    with store.transaction() as tx:
        tx.put_operations("e1", [operation("1", 1, result="r" * 2000)])
    kept = {store.blobs.put(b"i" * 2000), store.blobs.put(b"r" * 2000)}
    loose = store.blobs.put(b"no row refers to this")
    missing = "0" * 64

    assert store.delete_unreferenced_blobs([*kept, loose, missing]) == sorted([loose, missing])

    assert [store.blobs.get(key) for key in sorted(kept)] == sorted([b"i" * 2000, b"r" * 2000])
    with pytest.raises(BlobNotFoundError):
        store.blobs.get(loose)


# -- end to end: `perdure run` and `perdure serve`, with the execution suspended across the upgrade ---------------

HANDLER = '''
from datetime import timedelta

import perdure as durable


@durable.function
def keeps_a_secret(ctx, event):
    secret = event["secret"]
    padding = "p" * 70_000  # over the 64 KiB inline limit: its snapshots go to a blob
    ctx.checkpoint()
    padding += "q"  # the checkpoint before the callback is a delta of the first one
    answer = ctx.wait_for_callback(lambda callback_id: None, name="approval", timeout=timedelta(hours=1))
    return {"secret": secret, "answer": answer, "padding": len(padding)}
'''


@dataclass(frozen=True)
class Suspended:
    """An execution suspended on a callback under an earlier Perdure, its callback since completed."""

    workdir: Path
    handler: Path
    db: str
    env: dict[str, str]
    run: list[str]


@pytest.fixture
def suspended(tmp_path: Path) -> Suspended:
    handler = tmp_path / "handler.py"
    handler.write_text(HANDLER)
    database = tmp_path / "data" / "perdure.db"
    db = f"sqlite:///{database}"
    env = {**os.environ, "PERDURE_SECRET": KEY.decode()}
    run = [*PERDURE, "run", f"{handler}:keeps_a_secret", "--payload", '{"secret": "s3"}', "--name", "n1", "--db", db]
    stderr = tmp_path / "run.err"
    with open(stderr, "wb") as err:
        first = subprocess.Popen(run, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.findall(r"Waiting for callback ([0-9a-f]+)", stderr.read_text())):
            assert first.poll() is None and time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert _rewrite_as_v1(database) >= 2, "its snapshots, as an earlier Perdure stored them"
    done = subprocess.run(
        [*PERDURE, "callback", "succeed", found[0], "--result", '"yes"', "--db", db],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Suspended(tmp_path, handler, db, env, run)


RESULT = {"secret": "s3", "answer": "yes", "padding": 70_001}


def test_an_execution_suspended_across_the_upgrade_resumes_under_perdure_run(suspended: Suspended) -> None:
    resumed = subprocess.run(
        suspended.run, cwd=suspended.workdir, env=suspended.env, capture_output=True, text=True, timeout=120
    )

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    execution = json.loads(resumed.stdout)
    assert (execution["Status"], execution["Result"]) == ("SUCCEEDED", RESULT)


def test_an_execution_suspended_across_the_upgrade_resumes_under_perdure_serve(suspended: Suspended) -> None:
    server = Server([str(suspended.handler)], suspended.workdir, suspended.env, suspended.db)
    server.start()
    try:

        def ended() -> dict[str, Any] | None:
            listed = json.loads(server.cli("executions", "list").stdout)
            return listed[0] if listed and listed[0]["Status"] != "RUNNING" else None

        summary = wait_for(ended, timeout=60)
        assert isinstance(summary, dict) and summary["Status"] == "SUCCEEDED", server.log.read_text()
        execution = json.loads(server.cli("executions", "get", summary["DurableExecutionArn"]).stdout)
        assert execution["Result"] == RESULT
    finally:
        server.stop()
    assert "Note: signed 2 snapshot(s) written by an earlier Perdure anew" in server.log.read_text()


def _rewrite_as_v1(database: Path) -> int:
    """Leaves the database as an earlier Perdure would have: every snapshot (inline or in its blob)
    signed as it signed them, and no record of upgrades (its schema stopped at version 7).

    Returns how many snapshots it rewrote.
    """
    blobs = database.parent / "blobs"
    count = 0
    with sqlite3.connect(database) as db:
        # What migration 15 changed: the indexes a purge reads, as they were.
        db.execute("DROP INDEX executions_expiring")
        db.execute("DROP INDEX executions_ended_by_default")
        db.execute("CREATE INDEX executions_by_end ON executions (end_time) WHERE end_time IS NOT NULL")
        # What migrations 8 to 14 added (009 changed nothing on SQLite).
        db.execute("DROP TABLE schedules")
        db.execute("DROP TABLE function_limits")
        db.execute("DROP TABLE tenant_starts")
        db.execute("DROP INDEX executions_ready_by_function")
        for column in ("compute_seconds", "cpu_seconds", "gb_seconds", "trace_parent"):
            db.execute(f"ALTER TABLE executions DROP COLUMN {column}")
        db.execute("DROP TABLE upgrades")
        db.execute("DROP TABLE event_invoke_configs")
        db.execute("DROP TABLE function_aliases")
        db.execute("DROP TABLE function_versions")
        db.execute("DROP INDEX executions_by_function_version")
        db.execute("ALTER TABLE executions DROP COLUMN function_version")
        db.execute("PRAGMA user_version = 7")
        rows = db.execute("SELECT execution_id, id, result, result_blob FROM operations WHERE sub_type = 'Checkpoint'")
        for execution_id, op_id, result, result_blob in rows.fetchall():
            if result_blob is not None:
                path = blobs / result_blob[:2] / result_blob
                data = unbound(path.read_bytes().decode()).encode()
                key = hashlib.sha256(data).hexdigest()
                (blobs / key[:2]).mkdir(exist_ok=True)
                (blobs / key[:2] / key).write_bytes(data)
                db.execute(
                    "UPDATE operations SET result_blob = ? WHERE execution_id = ? AND id = ?", (key, execution_id, op_id)
                )
            else:
                db.execute(
                    "UPDATE operations SET result = ? WHERE execution_id = ? AND id = ?",
                    (unbound(result), execution_id, op_id),
                )
            count += 1
    return count
