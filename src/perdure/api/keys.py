"""API keys: made by ``perdure keys create``, looked up by ``perdure.api.auth`` on every request.

A key gives its holder two credentials, printed once when it is made:

- an access key ID and secret access key, for requests signed with AWS Signature Version 4
  (boto3, the AWS CLI, ``perdure`` with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``);
- a bearer token (``Authorization: Bearer …``, ``perdure`` with ``PERDURE_TOKEN``).

What is stored, and why. A bearer token is checked by hashing what the client sends, so only
its SHA-256 is kept (the token is 256 random bits: a fast hash is enough, there is nothing to
guess). A SigV4 signature cannot be checked that way: it is an HMAC keyed by the secret itself,
so the server must have the secret, and a one-way hash of it would be useless. Rather than
store the secret, even encrypted, the server *derives* it when needed::

    secret = base64url(HMAC-SHA256(api_secret, "sigv4|" + access_key_id + "|" + secret_salt))[:40]

where ``api_secret`` is derived from the server secret (``PERDURE_SECRET``, else the data
folder's ``secret`` file: the one that also signs snapshots) and ``secret_salt`` is 256 random
bits kept in the key's row. The row also keeps the SHA-256 of the derived secret, which tells
a server running with another server secret (every signature would fail) from a client that
signs wrongly, and lets ``perdure serve`` refuse to start when no key can be verified.

So the database alone (a dump, a backup) reveals no credential: salts and hashes of 240-bit
secrets. The server secret alone reveals none either: the salts are needed too. Both together
reveal every SigV4 secret, as an encrypted column and its key would; and revocation is a flag
on the row, checked on every request, so it takes effect at once in every process. Every
server sharing a database (PostgreSQL) needs the same ``PERDURE_SECRET``, as its workers
already do for snapshots.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perdure.errors import InvalidParameterError, NotFoundError
from perdure.protocol.secret import load_secret
from perdure.store.base import Store
from perdure.store.keys import ApiKey

# Keeps the key that derives API secrets apart from the one that signs snapshots (same root).
_API_SECRET_LABEL = b"perdure api key secrets v1"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ACCESS_KEY_PREFIX = "PERD"  # 20 characters in all, as AWS access key IDs
TOKEN_PREFIX = "pdt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def api_secret(data_dir: Path) -> bytes:
    """The key that derives SigV4 secrets, from ``PERDURE_SECRET`` or the data folder's ``secret`` file."""
    return derive_api_secret(load_secret(data_dir))


def derive_api_secret(server_secret: bytes) -> bytes:
    """The key that derives SigV4 secrets, from the server secret that also signs snapshots."""
    return hmac.new(server_secret, _API_SECRET_LABEL, hashlib.sha256).digest()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derive_secret(secret: bytes, access_key_id: str, salt: str) -> str:
    """The SigV4 secret access key of a key, from the API secret and the key's salt."""
    digest = hmac.new(secret, f"sigv4|{access_key_id}|{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:40]


@dataclass(frozen=True)
class NewKey:
    """A key just made, with its credentials: the only time they are shown."""

    key: ApiKey
    secret_access_key: str
    token: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "Name": self.key.name,
            "AccessKeyId": self.key.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "CreatedTimestamp": self.key.created_time,
        }


class KeyRing:
    """The API keys of one store, with the API secret that derives their SigV4 secrets."""

    def __init__(self, store: Store, secret: bytes) -> None:
        self.store = store
        self._secret = secret

    def create(self, name: str) -> NewKey:
        """Makes and stores a key; its secret and token are in the result and nowhere else."""
        if not _NAME.fullmatch(name):
            raise InvalidParameterError(
                f"{name!r} cannot name a key: use 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (for example ci or deploy-bot)."
            )
        access_key_id = ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        salt = secrets.token_hex(32)
        secret_access_key = derive_secret(self._secret, access_key_id, salt)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            access_key_id=access_key_id,
            name=name,
            created_time=time.time(),
            secret_salt=salt,
            secret_sha256=sha256_hex(secret_access_key),
            token_sha256=sha256_hex(token),
        )
        self.store.add_api_key(key)
        return NewKey(key, secret_access_key, token)

    def all(self) -> list[ApiKey]:
        """Every key, active and revoked, oldest first."""
        return self.store.list_api_keys()

    def revoke(self, id_or_name: str) -> ApiKey:
        """Revokes the active key with this access key ID or name; requests with it fail from now on."""
        for key in self.store.list_api_keys():
            if key.active and id_or_name in (key.access_key_id, key.name):
                revoked = self.store.revoke_api_key(key.access_key_id, time.time())
                if revoked is not None:
                    return revoked
        raise NotFoundError(
            f"No active API key has the ID or name {id_or_name!r}. `perdure keys list` shows the keys."
        )

    def end_sessions(self, access_key_id: str) -> None:
        """Ends every dashboard session made with this key so far (sign-out), in every server on the store."""
        self.store.end_api_key_sessions(access_key_id)

    def derived_secret(self, label: bytes) -> bytes:
        """A key for another use of the server secret (the dashboard's sessions), kept apart by ``label``."""
        return hmac.new(self._secret, label, hashlib.sha256).digest()

    def signing_secret(self, key: ApiKey) -> str | None:
        """The key's SigV4 secret, or None when this server's secret did not make it."""
        secret = derive_secret(self._secret, key.access_key_id, key.secret_salt)
        return secret if hmac.compare_digest(sha256_hex(secret), key.secret_sha256) else None

    def active_key(self, access_key_id: str) -> ApiKey | None:
        key = self.store.get_api_key(access_key_id)
        return key if key is not None and key.active else None

    def key_for_token(self, token: str) -> ApiKey | None:
        """The active key whose bearer token this is, or None."""
        key = self.store.find_api_key_by_token(sha256_hex(token))
        return key if key is not None and key.active else None

    def split_verifiable(self) -> tuple[list[ApiKey], list[ApiKey]]:
        """The active keys, split into those this server can verify SigV4 with and those it cannot."""
        active = [key for key in self.store.list_api_keys() if key.active]
        usable = [key for key in active if self.signing_secret(key) is not None]
        return usable, [key for key in active if key not in usable]
