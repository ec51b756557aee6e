"""Which blob store a process uses: ``--blobs``, or the checkpoint bucket its template names.

A store has one blob store for all its functions, because a row keeps only a blob's key, and
every process using the database must read blobs where they were written. So a template's
per-function ``CheckpointStorage: {Type: S3, BucketArn: ...}`` decides for the whole server:

- ``--blobs`` given: it applies to every function; a template bucket elsewhere is noted.
- Otherwise, the one bucket that the template's functions name, when it has a name here (a
  ``BucketName``, or a plain ``arn:aws:s3:::name``), holds every function's blobs, with the
  same ``--s3-endpoint``. Two different buckets are refused: pass ``--blobs`` to choose.
- A bucket with no name here (CloudFormation would make one up) cannot be used; blobs go to
  the default folder, and a note says how to keep them in S3.
"""

from __future__ import annotations

from collections.abc import Iterable

from perdure.errors import InvalidParameterError
from perdure.runtime.registry import FunctionSpec
from perdure.store.blobs import BlobConfig


def choose_blobs(
    location: str | None, s3_endpoint: str | None, specs: Iterable[FunctionSpec]
) -> tuple[BlobConfig, list[str]]:
    """Returns the blob store to use and notes (full sentences) on how the template's buckets were used."""
    wanted = [(spec.name, spec.checkpoint_bucket) for spec in specs if spec.checkpoint_bucket is not None]
    if location:
        config = BlobConfig(location, s3_endpoint)
        notes = [
            f"Function {name} keeps its checkpoints in the S3 bucket {bucket.name or bucket.resource} in "
            f"its template, but --blobs {location} applies to every function: its large payloads go there."
            for name, bucket in wanted
            if not (config.is_s3 and bucket.name and location.removeprefix("s3://").split("/")[0] == bucket.name)
        ]
        return config, notes
    named = sorted({bucket.name for _, bucket in wanted if bucket.name})
    if len(named) > 1:
        users = "; ".join(f"{b} for {', '.join(n for n, x in wanted if x.name == b)}" for b in named)
        raise InvalidParameterError(
            f"The template's functions keep their checkpoints in {len(named)} different S3 buckets ({users}), "
            "but a Perdure database keeps its large payloads in one place. Choose it with --blobs s3://bucket/prefix."
        )
    notes = [
        f"Function {name} keeps its checkpoints in S3 in its template, but its bucket {bucket.resource} has no "
        "BucketName to use outside CloudFormation, so large payloads go to the blob folder. Give the bucket a "
        "BucketName, or pass --blobs s3://bucket/prefix, to keep them in S3."
        for name, bucket in wanted
        if not bucket.name
    ]
    if named:
        users = ", ".join(name for name, bucket in wanted if bucket.name == named[0])
        notes.append(
            f"Large payloads of every function go to s3://{named[0]}, the checkpoint bucket that {users} "
            "names in the template."
        )
        return BlobConfig(f"s3://{named[0]}", s3_endpoint), notes
    return BlobConfig(None, s3_endpoint), notes
