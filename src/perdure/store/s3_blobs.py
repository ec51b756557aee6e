"""Blobs in an S3 bucket: AWS S3 or any S3-compatible server (MinIO, moto, Ceph, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from perdure.errors import BlobNotFoundError, BlobStorageError
from perdure.store.blobs import BlobStore, blob_key, checked_key, verified

# Error codes S3 (and compatible servers) give for an object or bucket that does not exist;
# HEAD requests have no body, so only the status code comes back as the code.
_MISSING = ("NoSuchKey", "NotFound", "404")
_NO_BUCKET = ("NoSuchBucket", "NotFound", "404")
_DENIED = ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch")


class S3BlobStore(BlobStore):
    """Blobs as objects ``prefix/key`` in ``bucket``.

    One boto3 client per store: clients are safe to share between threads. S3 writes are
    durable when ``put_object`` returns, and a put of the same key writes the same bytes, so
    concurrent puts of one blob are harmless.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        session = boto3.session.Session()
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            # boto3 needs a region to sign requests; S3-compatible servers mostly ignore it.
            region_name=session.region_name or "us-east-1",
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    @property
    def location(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _object(self, key: str) -> str:
        # Checked: a key from the database must not name another object in the bucket (some
        # S3-compatible servers also resolve `..` in object names).
        key = checked_key(self.location, key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, data: bytes) -> str:
        key = blob_key(data)
        with self._reporting(f"store blob {key} in"):
            self._client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)
        return key

    def get(self, key: str) -> bytes:
        name = self._object(key)
        try:
            with self._reporting(f"read blob {key} from"):
                response = self._client.get_object(Bucket=self.bucket, Key=name)
                body: bytes = response["Body"].read()
                return verified(self.location, key, body)
        except BlobStorageError as error:
            if isinstance(error.__cause__, ClientError) and _code(error.__cause__) in _MISSING:
                raise BlobNotFoundError(self.location, key) from None
            raise

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing object with success, as the contract asks.
        name = self._object(key)
        with self._reporting(f"delete blob {key} from"):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def check(self) -> None:
        try:
            with self._reporting("reach"):
                self._client.head_bucket(Bucket=self.bucket)
        except BlobStorageError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and _code(cause) in _NO_BUCKET:
                where = f" on {self.endpoint_url}" if self.endpoint_url else ""
                endpoint = f" --endpoint-url {self.endpoint_url}" if self.endpoint_url else ""
                raise BlobStorageError(
                    self.location,
                    f"The bucket {self.bucket} does not exist{where}. Create it (for example with "
                    f"`aws s3 mb s3://{self.bucket}{endpoint}`), or name another with --blobs s3://bucket/prefix.",
                ) from None
            raise

    @contextmanager
    def _reporting(self, action: str) -> Iterator[None]:
        """Turns boto3's errors into a ``BlobStorageError`` that says what to check."""
        try:
            yield
        except NoCredentialsError as error:
            raise BlobStorageError(
                self.location,
                f"Could not {action} {self.location}: no AWS credentials were found. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment.",
            ) from error
        except ClientError as error:
            hint = (
                "Check the credentials and that they may use this bucket."
                if _code(error) in _DENIED
                else "Check the bucket and the S3 endpoint."
            )
            raise BlobStorageError(self.location, f"Could not {action} {self.location}: {error}. {hint}") from error
        except BotoCoreError as error:
            raise BlobStorageError(
                self.location,
                f"Could not {action} {self.location}: {error}. Check that the S3 endpoint is right and reachable.",
            ) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
