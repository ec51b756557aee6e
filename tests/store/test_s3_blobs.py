"""Blobs in an S3-compatible server (moto, on 127.0.0.1), and stores on both backends that keep them there."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_server import S3Server
from store_backends import INLINE_LIMIT, NOW, StoreFactory, execution, insert, operation

from perdure.errors import BlobNotFoundError, BlobStorageError, InvalidParameterError
from perdure.protocol.records import ExecutionStatus
from perdure.store.blobs import BlobConfig, FileBlobStore, blob_key
from perdure.store.s3_blobs import S3BlobStore


def test_blobs_round_trip_under_the_prefix_and_are_deleted(s3: S3Server) -> None:
    bucket = s3.create_bucket()
    blobs = S3BlobStore(bucket, "perdure/blobs", s3.endpoint)
    blobs.check()

    key = blobs.put(b"payload bytes")
    assert blobs.put(b"payload bytes") == key == blob_key(b"payload bytes")

    assert blobs.get(key) == b"payload bytes"
    assert s3.keys(bucket) == [f"perdure/blobs/{key}"]
    blobs.delete(key)
    blobs.delete(key)  # deleting a missing blob is no error
    assert s3.keys(bucket) == []


def test_a_missing_blob_is_reported_with_its_key_and_location(s3: S3Server) -> None:
    blobs = S3BlobStore(s3.create_bucket(), "", s3.endpoint)

    with pytest.raises(BlobNotFoundError) as caught:
        blobs.get("ab" * 32)

    assert caught.value.key == "ab" * 32
    assert f"Blob {'ab' * 32} is missing from s3://{blobs.bucket} at {s3.endpoint}" in caught.value.message
    assert "the same --blobs" in caught.value.message


def test_a_missing_bucket_is_refused_with_how_to_create_it(s3: S3Server) -> None:
    blobs = S3BlobStore("no-such-bucket", "x", s3.endpoint)

    with pytest.raises(BlobStorageError) as caught:
        blobs.check()

    assert caught.value.message == (
        f"The bucket no-such-bucket does not exist on {s3.endpoint}. Create it (for example with "
        f"`aws s3 mb s3://no-such-bucket --endpoint-url {s3.endpoint}`), or name another with "
        "--blobs s3://bucket/prefix."
    )


def test_missing_credentials_are_reported_with_what_to_set(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    blobs = S3BlobStore(s3.create_bucket(), "", s3.endpoint)

    with pytest.raises(BlobStorageError, match="no AWS credentials were found. Set AWS_ACCESS_KEY_ID"):
        blobs.put(b"x")


def test_blob_config_opens_a_folder_or_a_bucket(s3: S3Server, tmp_path: Path) -> None:
    folder = BlobConfig(str(tmp_path / "b")).open(tmp_path / "default")
    default = BlobConfig().open(tmp_path / "default")
    bucket = BlobConfig("s3://my-bucket/some/prefix/", s3.endpoint).open(tmp_path / "default")

    assert isinstance(folder, FileBlobStore) and folder.root == tmp_path / "b"
    assert isinstance(default, FileBlobStore) and default.root == tmp_path / "default"
    assert isinstance(bucket, S3BlobStore)
    assert (bucket.bucket, bucket.prefix, bucket.endpoint_url) == ("my-bucket", "some/prefix", s3.endpoint)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (BlobConfig("s3://"), "The blob location 's3://' names no bucket. Write s3://bucket or s3://bucket/prefix."),
        (BlobConfig("gs://bucket"), "Unsupported blob location 'gs://bucket': use a folder, or s3://bucket/prefix."),
        (BlobConfig("blobs", "http://127.0.0.1:9000"), "--s3-endpoint http://127.0.0.1:9000 was given, but blobs are kept in the folder blobs. Pass --blobs s3://bucket/prefix to keep them in S3."),
    ],
)
def test_blob_config_refuses_what_it_cannot_use(config: BlobConfig, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        config.open(tmp_path)

    assert caught.value.message == message


def test_a_store_keeps_payloads_over_the_inline_limit_in_the_bucket_and_purges_them(
    s3: S3Server, open_test_store: StoreFactory
) -> None:
    bucket = s3.create_bucket()
    store = open_test_store(blobs=S3BlobStore(bucket, "p", s3.endpoint))
    big = '"' + "x" * INLINE_LIMIT * 4 + '"'
    shared = '"' + "s" * INLINE_LIMIT * 2 + '"'
    insert(
        store,
        execution("done", status=ExecutionStatus.SUCCEEDED, end_time=NOW - 40 * 86400, input_payload=big),
        execution("kept", input_payload=shared),
    )
    with store.transaction() as tx:
        tx.put_operations("done", [operation("s1", 1, result=shared)])
    assert s3.keys(bucket) == sorted(f"p/{blob_key(t.encode())}" for t in (big, shared))
    with store.snapshot() as tx:
        done = tx.get_execution_by_id("done")
        assert done is not None and done.input_payload == big
        assert tx.get_operations("done", ["s1"])["s1"].result == shared

    batch = store.purge_expired(NOW, 30, None)

    assert [e.id for e in batch.executions] == ["done"]
    assert s3.keys(bucket) == [f"p/{blob_key(shared.encode())}"]
