"""Retention, with time skipped: finished executions go when their period runs out, with the blobs only they used.

Runs on a folder of blobs and on an S3-compatible server (moto, see tests/s3_server.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from s3_server import S3Server

import perdure as durable
from perdure.errors import ExecutionNotFoundError
from perdure.runtime.purger import Purger
from perdure.store.blobs import BlobStore, FileBlobStore
from perdure.store.s3_blobs import S3BlobStore
from perdure.testing import DurableTestRunner, Run

DAY = 86400.0
BIG = 70_000  # characters: over the 64 KiB inline limit, so each such payload is a blob
SHARED = "shared " * (BIG // 7)  # the same step result in every execution: one blob for all


def build(tag: str) -> str:
    return (tag + " ") * (BIG // (len(tag) + 1))


def report(ctx, event):
    own = ctx.step(build, event["tag"], name="own")
    shared = ctx.step(lambda: SHARED, name="shared")
    if event.get("wait_for_approval"):
        ctx.create_callback("approval").result()
    return {"own": len(own), "shared": len(shared)}


short_lived = durable.function(name="short_lived", retention_days=1)(report)
default_kept = durable.function(name="default_kept")(report)
long_kept = durable.function(name="long_kept", retention_days=60)(report)


def event(tag: str, **extra: object) -> dict[str, object]:
    return {"tag": tag, "pad": tag * BIG, **extra}


@pytest.fixture(params=["folder", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BlobStore, Callable[[], set[str]]]]:
    """A blob store, and a function listing the keys of the blobs in it."""
    if request.param == "folder":
        folder = FileBlobStore(tmp_path / "blobs")
        yield folder, lambda: {p.name for p in folder.root.rglob("*") if p.is_file()}
    else:
        s3: S3Server = request.getfixturevalue("s3")
        bucket = s3.create_bucket()
        yield S3BlobStore(bucket, "perdure", s3.endpoint), lambda: {k.removeprefix("perdure/") for k in s3.keys(bucket)}


def test_retention_removes_exactly_the_expired_executions_and_their_blobs(
    tmp_path: Path, blob_store: tuple[BlobStore, Callable[[], set[str]]]
) -> None:
    blobs, listing = blob_store
    with DurableTestRunner(tmp_path, blobs=blobs) as runner:
        owned: dict[str, set[str]] = {}

        def run(function: Callable[..., object], tag: str, **extra: object) -> Run:
            before = listing()
            result = runner.run(function, event(tag, **extra), name=tag)
            owned[tag] = listing() - before  # the blobs this execution added: its own
            return result

        long_run = run(long_kept, "long")  # first, so the shared blob counts as its own
        waiting = run(default_kept, "waiting", wait_for_approval=True)
        short_run = run(short_lived, "short")
        default_run = run(default_kept, "default")
        assert (long_run.status, waiting.status, short_run.status) == ("SUCCEEDED", "RUNNING", "SUCCEEDED")
        assert all(len(keys) >= 2 for tag, keys in owned.items() if tag != "waiting")
        everything = listing()

        runner.clock.advance_to(runner.clock.now + 0.9 * DAY)
        assert runner.service.purge_expired().executions == []

        runner.clock.advance_to(runner.clock.now + 0.2 * DAY)  # 1.1 days: the short one's day is over
        first = runner.service.purge_expired()
        assert [e.arn for e in first.executions] == [short_run.arn]
        assert set(first.blobs) == owned["short"]
        assert listing() == everything - owned["short"]
        with pytest.raises(ExecutionNotFoundError):
            runner.service.get_execution(short_run.arn)

        runner.clock.advance_to(runner.clock.now + 30 * DAY)  # 31.1 days: the default 30 are over
        dry = runner.service.purge_expired(dry_run=True)
        assert [e.arn for e in dry.executions] == [default_run.arn] and dry.dry_run
        assert listing() == everything - owned["short"]
        second = runner.service.purge_expired()
        assert [(e.arn, e.retention_days) for e in second.executions] == [(default_run.arn, 30)]
        assert set(second.blobs) == owned["default"]
        assert listing() == everything - owned["short"] - owned["default"]

        # The long-kept execution and the waiting one are whole: every payload reads back.
        assert runner.resume(long_run).result == {"own": len(build("long")), "shared": len(SHARED)}
        assert runner.service.get_execution(waiting.arn).input_payload is not None

        runner.clock.advance_to(runner.clock.now + 30 * DAY)  # 61.1 days: the long one's 60 are over
        third = runner.service.purge_expired()
        assert [e.arn for e in third.executions] == [long_run.arn]
        # All of its blobs go but the shared one, which the waiting execution still uses.
        kept = owned["long"] & listing()
        assert len(kept) == 1
        assert set(third.blobs) == owned["long"] - kept
        assert listing() == owned["waiting"] | kept
        runner.succeed_callback(waiting.callbacks[0], True)
        assert runner.resume(waiting).result == {"own": len(build("waiting")), "shared": len(SHARED)}


def test_the_server_purges_expired_executions_by_itself(tmp_path: Path) -> None:
    with DurableTestRunner(tmp_path) as runner:
        done = runner.run(short_lived, event("done"), name="done")
        runner.clock.advance_to(runner.clock.now + 2 * DAY)
        purger = Purger(runner.service, interval=0.05, first_delay=0.0)
        purger.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    runner.service.get_execution(done.arn)
                except ExecutionNotFoundError:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the purger did not purge the expired execution within 10 s")
        finally:
            purger.stop()
