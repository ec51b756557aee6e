"""Signs the snapshots an earlier Perdure stored anew, once, for the checkpoint whose row holds them.

Snapshots were once signed over their bytes alone (``perdure-snapshot-v1:``), so someone who
could write the database could copy one execution's checkpoint rows into another and resume it
from them (issue 11, finding 5). Signatures now name the execution and the checkpoint, and a v1
snapshot is refused wherever it is read: left so, every seed-style execution suspended across
the upgrade would fail when it resumed, and none could restart from its checkpoints, though
executions wait days or a year. So a process that holds the server secret and opens the store
to run executions (``perdure serve``, ``perdure worker``, ``perdure run``) first calls
``upgrade_snapshots``: every v1 snapshot whose v1 signature holds is signed anew for the
execution and operation of the row it is in. One whose signature fails is left as it is (it is
refused on resume, with its message, as before) and logged.

The trade-off: a row copied into another execution before the upgrade is bound to where it was
copied to, since nothing tells a copy from its original (the same bytes, signed alike). After
the upgrade no v1 snapshot is ever accepted, so that window closes for good.

Each row is rewritten only if it still holds the text read (``Transaction.replace_result``),
so servers starting at once on one PostgreSQL database may all upgrade: whichever writes, the
bytes are the same. Delta snapshots need nothing more: each link of a chain is a row of its own,
signed on its own, and its bytes, which name their base by operation ID, stay as they were.
Once a walk has read every row, the store records the upgrade done, and later starts read that
one row instead of walking every operation again. A v1 snapshot kept in a blob leaves a blob of
its own behind, which is deleted once no row refers to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from perdure.errors import PerdureError
from perdure.protocol.log_context import LogContext
from perdure.protocol.queries import StoredResult
from perdure.protocol.records import CHECKPOINT_SUBTYPE
from perdure.protocol.snapshots import UNBOUND_PREFIX, SnapshotCodec, SnapshotError
from perdure.store.base import ExecutionStore

UPGRADE = "snapshots-signed-for-their-checkpoint"
# Operations looked at, and their v1 snapshots rewritten in one transaction, at a time: a SQLite
# write holds other processes' writers up for as long as it runs. The first walk of a million
# operations (100,000 executions) took 0.7 s on SQLite and 10 s on a local PostgreSQL; every
# later start reads one row.
_STRETCH = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotUpgrade:
    """What ``upgrade_snapshots`` did: ``signed`` snapshots signed anew, ``refused`` left as they were."""

    done_before: bool
    signed: int = 0
    refused: int = 0
    # Snapshots in blobs that could not be read: the upgrade is tried again at the next start.
    unread: int = 0

    @property
    def note(self) -> str | None:
        """A sentence for the operator when snapshots were signed anew or left refused, else None."""
        if not (self.signed or self.refused or self.unread):
            return None
        parts = [f"signed {self.signed} snapshot(s) written by an earlier Perdure anew for their checkpoints"]
        if self.refused:
            parts.append(
                f"{self.refused} whose signature does not match this server's key were left as they were, and "
                "their executions will fail on resume (see the log for which)"
            )
        if self.unread:
            parts.append(f"{self.unread} in blobs that could not be read are tried again at the next start")
        return "; ".join(parts) + "."


def upgrade_snapshots(store: ExecutionStore, codec: SnapshotCodec, now: float) -> SnapshotUpgrade:
    """Signs every v1 snapshot in ``store`` whose signature holds for its row's execution and operation.

    Costs one lookup once the store has recorded it done. Safe to run from several processes at once.
    """
    with store.snapshot() as tx:
        if tx.upgrade_done(UPGRADE) is not None:
            return SnapshotUpgrade(done_before=True)
    signed = refused = unread = 0
    after: tuple[str, str] | None = None
    while True:
        with store.snapshot() as tx:
            scan = tx.results_with_prefix(CHECKPOINT_SUBTYPE, UNBOUND_PREFIX, after, _STRETCH)
        rewrites: list[tuple[StoredResult, str]] = []
        for stored in scan.results:
            text = _text(store, stored)
            if text is None:
                unread += 1
            elif text.startswith(UNBOUND_PREFIX):
                try:
                    rewrites.append((stored, codec.upgrade(text, stored.execution_arn, stored.operation_id)))
                except SnapshotError:
                    refused += 1
                    logger.warning(
                        "The snapshot of %s at operation %s was written by an earlier Perdure and its signature "
                        "does not match this server's key (tampered, or written under another PERDURE_SECRET): "
                        "it was left as it is, and the execution will fail if it resumes from it.",
                        stored.execution_arn,
                        stored.operation_id,
                        extra=LogContext.of_execution(stored.execution_arn, stored.operation_id).fields(),
                    )
        done = scan.last is None and not unread
        replaced: list[StoredResult] = []
        if rewrites or done:
            with store.transaction() as tx:
                # A row another process rewrote meanwhile is left to it (the same bytes).
                replaced = [stored for stored, text in rewrites if tx.replace_result(stored, text)]
                if done:
                    tx.record_upgrade(UPGRADE, now)
        signed += len(replaced)
        # The v1 blob goes once no row refers to it (restarts used to share one): it holds the
        # function's saved data, which must not outlive the execution's purge.
        old_blobs = {stored.blob_key for stored in replaced if stored.blob_key is not None}
        if old_blobs:
            store.delete_unreferenced_blobs(old_blobs)
        if scan.last is None:
            return SnapshotUpgrade(False, signed, refused, unread)
        after = scan.last


def _text(store: ExecutionStore, stored: StoredResult) -> str | None:
    """The stored snapshot's text, or None (logged) when its blob cannot be read.

    A blob another process upgrading at once rewrote and deleted since the row was read is not
    missing: the row's text is read again.
    """
    if stored.blob_key is None:
        return stored.inline
    try:
        return store.blobs.get(stored.blob_key).decode("utf-8")
    except (PerdureError, UnicodeDecodeError) as error:
        current = _current_text(store, stored)
        if current is not None and not current.startswith(UNBOUND_PREFIX):
            return current
        logger.warning(
            "The result of %s at operation %s, in blob %s, could not be read to upgrade its snapshot: %s",
            stored.execution_arn,
            stored.operation_id,
            stored.blob_key,
            error,
            extra=LogContext.of_execution(stored.execution_arn, stored.operation_id).fields(),
        )
        return None


def _current_text(store: ExecutionStore, stored: StoredResult) -> str | None:
    """The operation's result as its row holds it now, or None when it cannot be read."""
    try:
        with store.snapshot() as tx:
            found = tx.get_operations(stored.execution_id, [stored.operation_id]).get(stored.operation_id)
    except PerdureError:
        return None
    return found.result if found is not None else None
