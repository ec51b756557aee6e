"""Retention: finished executions, and the blobs only they use, are purged after their retention period.

An execution's period is its own ``retention_days`` (from ``@durable.function(retention_days=…)``,
a template's ``RetentionPeriodInDays``, or its checkpoint bucket's ``ExpirationInDays``), or
the service's default, ``DEFAULT_RETENTION_DAYS`` unless configured, counted from its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perdure.protocol.queries import ExpiredExecution
from perdure.protocol.records import to_datetime
from perdure.service import versions
from perdure.store.base import ExecutionStore

# AWS keeps a durable execution's history for 30 days unless RetentionPeriodInDays says otherwise.
DEFAULT_RETENTION_DAYS = 30
# Executions purged per transaction. Measured on a store of 1,000,000 (docs/capacity.md): a
# transaction costs about 0.15 ms (SQLite) to 0.3 ms (PostgreSQL) an execution over a fixed
# 5-15 ms, so 250 keeps one near 50-100 ms, short enough that no writer waits long for it on
# SQLite (one writer at a time), while purging at most of the rate larger ones reach.
PURGE_BATCH = 250


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed, or would remove in a dry run."""

    executions: list[ExpiredExecution]
    blobs: list[str]
    blob_location: str
    dry_run: bool
    # Function versions nothing needs any more ("name:version"), and their bundles' blobs are in ``blobs``.
    versions: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The report as ``perdure purge`` prints it."""
        return {
            "DryRun": self.dry_run,
            "PurgedExecutions": len(self.executions),
            "PurgedVersions": self.versions,
            "DeletedBlobs": len(self.blobs),
            "BlobStorage": self.blob_location,
            "Executions": [
                {
                    "DurableExecutionArn": e.arn,
                    "FunctionName": e.function_name,
                    "DurableExecutionName": e.name,
                    "Status": e.status.value,
                    "EndTimestamp": to_datetime(e.end_time),
                    "RetentionPeriodInDays": e.retention_days,
                }
                for e in self.executions
            ],
            "Blobs": self.blobs,
        }


def purge_expired(store: ExecutionStore, now: float, default_retention_days: int, dry_run: bool = False) -> PurgeReport:
    """Purges every execution expired at ``now``, in transactions of ``PURGE_BATCH``.

    A dry run looks at them all in one transaction that it rolls back, so that it counts a blob
    shared by two expired executions as deleted, as the purge itself would.
    """
    location = store.blobs.location
    if dry_run:
        batch = store.purge_expired(now, default_retention_days, None, dry_run=True)
        versions, code = _purge_versions(store, now, default_retention_days, dry_run=True)
        return PurgeReport(batch.executions, sorted([*batch.blobs, *code]), location, True, versions)
    executions: list[ExpiredExecution] = []
    blobs: list[str] = []
    while True:
        batch = store.purge_expired(now, default_retention_days, PURGE_BATCH)
        executions.extend(batch.executions)
        blobs.extend(batch.blobs)
        if len(batch.executions) < PURGE_BATCH:
            break
    # After the executions: a version their purge left unused goes in this same pass.
    versions, code = _purge_versions(store, now, default_retention_days, dry_run=False)
    return PurgeReport(executions, sorted([*blobs, *code]), location, False, versions)


def _purge_versions(store: ExecutionStore, now: float, retention_days: int, dry_run: bool) -> tuple[list[str], list[str]]:
    """Purges the function versions published over ``retention_days`` ago that nothing needs, and their bundles."""
    with store.transaction() as tx:
        purged, code = versions.purge_unused(tx, now - retention_days * 86400, dry_run)
    if not dry_run:
        # Once the rows are gone: a bundle is never missing for a version that is still there.
        store.blobs.delete_expired(code)
    return [f"{version.function_name}:{version.version}" for version in purged], code
