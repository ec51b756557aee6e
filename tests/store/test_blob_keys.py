"""Blob keys read from the database are checked before they name a file or an object.

Someone who can write the database but not the blob store must not get it to read or delete
anything but blobs: a key is 64 lowercase hex digits (a SHA-256) or it is refused, and a blob
whose bytes do not hash to its key is refused too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from s3_server import S3Server
from servers import HANDLERS, PERDURE, Server, lambda_client

from perdure.errors import BlobIntegrityError, BlobKeyError
from perdure.store.blobs import FileBlobStore, blob_key
from perdure.store.s3_blobs import S3BlobStore

SECRET = b"private bytes outside the blob store"


def hostile_keys(victim: Path, root: Path) -> list[str]:
    """Keys that name ``victim`` (or something like it) from a store rooted at ``root``."""
    return [
        str(victim),  # an absolute path: pathlib drops the root before it
        os.path.relpath(victim, root.parent),  # ../victim: its first two characters are a folder too
        "../" * 8 + "etc/passwd",
        "AB" * 32,  # upper case is not what blob_key makes
        "ab" * 31,  # too short
        "ab" * 33,  # too long
        "ab" * 31 + "a/",
        "ab" * 32 + "\n",
        "",
    ]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(SECRET)
    return path


def test_the_folder_store_refuses_keys_that_are_not_content_keys(tmp_path: Path, victim: Path) -> None:
    root = tmp_path / "data" / "blobs"
    blobs = FileBlobStore(root)

    for key in hostile_keys(victim, root):
        with pytest.raises(BlobKeyError) as caught:
            blobs.get(key)
        assert caught.value.key == key
        assert f"{key!r} is not a blob key" in caught.value.message
        with pytest.raises(BlobKeyError):
            blobs.delete(key)

    assert victim.read_bytes() == SECRET


def test_the_folder_store_refuses_a_blob_whose_bytes_are_not_its_key(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    key = blobs.put(b"the real payload")
    (tmp_path / "blobs" / key[:2] / key).write_bytes(b"something else")

    with pytest.raises(BlobIntegrityError) as caught:
        blobs.get(key)

    assert caught.value.key == key
    assert f"Blob {key} in {blobs.location} does not hold the bytes its key names" in caught.value.message


def test_the_folder_store_does_not_follow_a_blob_that_links_out_of_its_folder(tmp_path: Path, victim: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    key = blob_key(SECRET)
    (tmp_path / "blobs" / key[:2]).mkdir(parents=True)
    (tmp_path / "blobs" / key[:2] / key).symlink_to(victim)

    with pytest.raises(BlobIntegrityError, match="outside the blob folder"):
        blobs.get(key)
    blobs.delete(key)  # removes the link, not what it points to

    assert victim.read_bytes() == SECRET


def test_the_s3_store_refuses_keys_that_name_other_objects(s3: S3Server) -> None:
    bucket = s3.create_bucket()
    blobs = S3BlobStore(bucket, "", s3.endpoint)
    blobs._client.put_object(Bucket=bucket, Key="config/secret", Body=SECRET)

    for key in ["config/secret", "../config/secret", "/config/secret", "AB" * 32, "ab" * 31, ""]:
        with pytest.raises(BlobKeyError):
            blobs.get(key)
        with pytest.raises(BlobKeyError):
            blobs.delete(key)

    assert s3.keys(bucket) == ["config/secret"]


def test_the_s3_store_refuses_a_blob_whose_bytes_are_not_its_key(s3: S3Server) -> None:
    bucket = s3.create_bucket()
    blobs = S3BlobStore(bucket, "p", s3.endpoint)
    key = blobs.put(b"the real payload")
    blobs._client.put_object(Bucket=bucket, Key=f"p/{key}", Body=b"something else")

    with pytest.raises(BlobIntegrityError, match=f"Blob {key} in s3://{bucket}/p"):
        blobs.get(key)


TEXT = "payload " * 12_000  # 96,000 characters: over the inline limit, so the input is a blob


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_a_rewritten_blob_key_reads_and_deletes_no_file_through_the_api(
    tmp_path: Path, victim: Path, form: str
) -> None:
    workdir = tmp_path / "server"
    workdir.mkdir()
    server = Server([str(HANDLERS / "big_payloads.py")], workdir, {**os.environ})
    server.start()
    try:
        response = lambda_client(server.endpoint).invoke(FunctionName="echo_twice", Payload=json.dumps({"text": TEXT}))
        assert "FunctionError" not in response
        blob_files = sorted((workdir / "blobs").rglob("*"))
        # FileBlobStore joined root / key[:2] / key: "../victim.txt" climbs out of root twice.
        hostile = str(victim) if form == "absolute" else os.path.relpath(victim, workdir)
        with sqlite3.connect(workdir / "perdure.db") as db:
            (arn,) = db.execute("SELECT arn FROM executions").fetchone()
            db.execute("UPDATE executions SET input_payload_blob = ?", (hostile,))
        url = f"{server.endpoint}/2025-12-01/durable-executions/{quote(arn, safe='')}"

        read = httpx.get(url, timeout=30)
        deleted = httpx.delete(url, timeout=30)

        assert SECRET.decode() not in read.text
        assert read.json()["Type"] == "Service"
        assert f"{hostile!r} is not a blob key" in read.json()["message"]
        assert deleted.status_code == read.status_code and f"{hostile!r} is not a blob key" in deleted.json()["message"]
        assert victim.read_bytes() == SECRET
        # Nothing was deleted half-way: the execution and every real blob are still there.
        assert httpx.get(url, timeout=30).status_code == read.status_code
        assert sorted((workdir / "blobs").rglob("*")) == blob_files
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()


def test_a_purge_passes_over_a_rewritten_blob_key_and_purges_the_rest(tmp_path: Path, victim: Path) -> None:
    workdir = tmp_path / "server"
    workdir.mkdir()
    server = Server([str(HANDLERS / "big_payloads.py")], workdir, {**os.environ})
    server.start()
    try:
        for _ in range(2):
            response = lambda_client(server.endpoint).invoke(FunctionName="echo_twice", Payload=json.dumps({"text": TEXT}))
            assert "FunctionError" not in response
    finally:
        server.stop()
    db_path = workdir / "perdure.db"
    with sqlite3.connect(db_path) as db:
        # Both executions ended long ago; the first one's input key now names the victim.
        db.execute("UPDATE executions SET end_time = end_time - 400 * 86400")
        first = db.execute("SELECT id FROM executions ORDER BY start_time LIMIT 1").fetchone()[0]
        db.execute("UPDATE executions SET input_payload_blob = ? WHERE id = ?", (str(victim), first))

    purged = subprocess.run(
        [*PERDURE, "purge", "--db", f"sqlite:///{db_path}"], cwd=workdir, capture_output=True, text=True, timeout=120
    )

    assert purged.returncode == 0, purged.stderr
    assert len(json.loads(purged.stdout)["Executions"]) == 2
    assert f"{str(victim)!r} is not a blob key" in purged.stderr
    assert victim.read_bytes() == SECRET
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM executions").fetchone() == (0,)
        code = {row[0] for row in db.execute("SELECT code_key FROM function_versions")}
    # What is left is the function's code, which its newest version keeps.
    assert {path.name for path in (workdir / "blobs").rglob("*") if path.is_file()} == code
