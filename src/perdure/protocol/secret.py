"""The server secret: the key snapshots, session cookies and API keys are signed with.

It comes from ``PERDURE_SECRET`` or from a ``secret`` file in the data folder, created on first
use and readable by its owner only. The server and its worker processes read the same key.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from perdure.errors import PerdureError


class SecretKeyError(PerdureError):
    """The server secret (``PERDURE_SECRET`` or the data folder's ``secret`` file) cannot be used."""

    code = "Perdure.SecretKeyError"


# An HMAC-SHA256 key shorter than the hash gives less than its strength (RFC 2104, section 3),
# and an empty one is a key anyone has.
MIN_SECRET_BYTES = 32
_GENERATE = 'python -c "import secrets; print(secrets.token_hex(32))"'


def load_secret(data_dir: Path) -> bytes:
    """Returns the signing key: ``PERDURE_SECRET``, or the data folder's key (created if missing).

    Raises ``SecretKeyError`` for a key under ``MIN_SECRET_BYTES`` bytes.
    """
    from_env = os.environ.get("PERDURE_SECRET")
    if from_env is not None:
        key = from_env.encode()
        if len(key) < MIN_SECRET_BYTES:
            raise SecretKeyError(
                f"PERDURE_SECRET holds {len(key)} bytes, but the server secret must be at least "
                f"{MIN_SECRET_BYTES}. Set it to a long random key, for example the output of `{_GENERATE}`, "
                "or unset it to use the data folder's secret file."
            )
        return key
    path = data_dir / "secret"
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create_secret(path)
    if len(key) < MIN_SECRET_BYTES:
        raise SecretKeyError(
            f"The secret file {path} holds {len(key)} bytes, but the server secret must be at least "
            f"{MIN_SECRET_BYTES}. Write a long random key into it, for example the output of `{_GENERATE}`, "
            "or delete it to have one made on the next start. Executions suspended under the old key "
            "cannot resume under a new one, and API keys made under it must be made again."
        )
    return key


def _create_secret(path: Path) -> bytes:
    """Makes the key at ``path``, unless another process makes it first; returns the key in place.

    The key is written whole to a temporary file and then linked into place: a link never
    replaces a file, so processes starting together on a fresh folder all end with the first
    one's key, and none can read a file that is still being written (creating ``path`` itself
    and then writing it let another process read it empty).
    """
    # The data folder, when this makes it, is its owner's alone (see perdure.store.make_data_dir).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(MIN_SECRET_BYTES)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600: for its owner only
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        os.unlink(tmp)
    # The folder's entry is made durable too: snapshots signed with the key outlive a crash.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return key
