"""Snapshots of a seed-style function's state: pickled locals, signed so they are never forged.

A snapshot is pickled (protocol 5) and signed with HMAC-SHA256; one whose signature does not
match is refused before anything is unpickled, since unpickling runs code. The signature
covers the execution's ARN and the checkpoint's operation ID as well as the snapshot, so a
snapshot copied into another execution, or to another checkpoint, is refused too (issue 11,
finding 5); a restart, which copies checkpoints on purpose, signs its copies anew (``rebind``).
The key comes from ``PERDURE_SECRET`` or from a ``secret`` file in the data folder, created on
first use and readable by its owner only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from perdure.errors import PerdureError

_PREFIX = "perdure-snapshot-v2:"
# Names the resumable transform adds to a function's locals; user code must not use the prefix,
# and previews leave these out.
HIDDEN = "__p_"
# Snapshots signed before the signature named their execution: refused, with their own message,
# except by the one-time upgrade that signs them for the checkpoint they are stored in (``upgrade``).
UNBOUND_PREFIX = "perdure-snapshot-v1:"
_MAC_BYTES = 32
_BINDING = struct.Struct(">II")


class SnapshotError(PerdureError):
    """A snapshot cannot be taken or cannot be trusted."""

    code = "Perdure.SnapshotError"
    status = 400


class UnpicklableLocalError(SnapshotError):
    """A local variable cannot be saved at a checkpoint."""

    def __init__(self, name: str, value: Any, filename: str, line: int, cause: Exception, loop_line: int | None = None) -> None:
        if loop_line is not None:
            # The transform keeps each `for` loop's iterator in a hidden local (see resumable.py).
            what = f"the iterator of the `for` loop at line {loop_line}, of type {type(value).__name__}"
            fix = "Loop over a list, a range or a dict (their iterators pickle), not a generator or a file."
        else:
            what = f"the local variable {name!r} of type {type(value).__name__}"
            fix = (
                "Make it a value that pickles (data, not open files, locks, clients or generators), "
                f"or delete it (`del {name}`) before the checkpoint."
            )
        super().__init__(f"{filename}:{line}: the checkpoint cannot save {what} ({cause}). {fix}")
        self.name = name
        self.line = line


@dataclass(frozen=True)
class Snapshot:
    """Where the function stood (its checkpoint label), its locals, and its operation counter."""

    # Pickled in this order: what changes from one checkpoint to the next (the label, from one
    # checkpoint site to another, and the counter) last, so that it does not cut short the
    # prefix a delta shares with the snapshot before (a wait's checkpoint after a loop's is a
    # delta too). Snapshots pickled in the earlier order still load: fields go by name.
    fingerprint: str
    locals: dict[str, Any]
    label: int
    counter: int


@dataclass(frozen=True)
class BaseSnapshot:
    """A stored snapshot that a later one may be a delta of.

    ``chain_bytes`` counts the delta bytes stored since the last whole snapshot.
    """

    operation_id: str
    data: bytes
    chain_bytes: int


@dataclass(frozen=True)
class EncodedSnapshot:
    """A snapshot as stored (``text``), as pickled (``data``), and its delta chain's size."""

    text: str
    data: bytes
    chain_bytes: int


# A delta snapshot stores only the bytes after what it shares with its base's pickle, so an
# appended-to list (an agent's growing `messages`) costs its new items, not the whole list
# again. A whole snapshot is stored again once the deltas since the last one add up to its
# size: storage stays linear in what the function saved, and resuming reads at most twice that.
_FULL, _DELTA = b"F", b"D"
_DELTA_HEADER = struct.Struct(">QQH")


def _unframed(data: bytes) -> bytes:
    """The pickle without its protocol-4+ FRAME headers, which carry frame lengths.

    A frame header near the start changes whenever anything after it grows, which would hide
    everything two snapshots share; the unpickler reads the stream just as well without them.
    A pickle with data written outside frames (single objects over 64 KiB) is kept as it is.
    """
    frame, proto_header = b"\x95", 2
    if len(data) < proto_header + 9 or data[proto_header : proto_header + 1] != frame:
        return data
    parts = [data[:proto_header]]
    position = proto_header
    while position < len(data):
        if data[position : position + 1] != frame:
            return data
        length = int.from_bytes(data[position + 1 : position + 9], "little")
        parts.append(data[position + 9 : position + 9 + length])
        position += 9 + length
    return b"".join(parts)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of two byte strings (compared in big slices)."""
    limit = min(len(a), len(b))
    matched, step = 0, 1 << 16
    while step:
        while matched + step <= limit and a[matched : matched + step] == b[matched : matched + step]:
            matched += step
        step //= 2
    return matched


class SnapshotCodec:
    """Encodes snapshots to signed text and decodes them, refusing any that fail the signature."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, execution_arn: str, operation_id: str, body: bytes) -> bytes:
        arn, operation = execution_arn.encode(), operation_id.encode()
        # Lengths first, so that no other ARN and operation ID run together to the same bytes.
        mac = hmac.new(self._key, _BINDING.pack(len(arn), len(operation)), hashlib.sha256)
        for part in (arn, operation, body):
            mac.update(part)
        return mac.digest()

    def _sign(self, execution_arn: str, operation_id: str, body: bytes) -> str:
        mac = self._mac(execution_arn, operation_id, body)
        return _PREFIX + base64.b64encode(mac + body).decode("ascii")

    def encode(
        self,
        snapshot: Snapshot,
        execution_arn: str,
        operation_id: str,
        filename: str,
        line: int,
        base: BaseSnapshot | None = None,
        loop_lines: Mapping[str, int] | None = None,
    ) -> EncodedSnapshot:
        """Pickles and signs a snapshot for checkpoint ``operation_id`` of ``execution_arn``.

        It is stored as a delta of ``base`` when most of it is the same.
        """
        try:
            data = _unframed(pickle.dumps(snapshot, protocol=5))
        except Exception as error:  # noqa: BLE001 - find which local is to blame
            raise self._blame(snapshot, filename, line, loop_lines or {}) or SnapshotError(
                f"{filename}:{line}: the checkpoint could not be saved: {error}"
            ) from error
        if base is not None:
            shared = _common_prefix(base.data, data)
            chain_bytes = base.chain_bytes + len(data) - shared
            if chain_bytes <= len(data):
                operation = base.operation_id.encode()
                header = _DELTA_HEADER.pack(chain_bytes, shared, len(operation))
                body = _DELTA + header + operation + data[shared:]
                return EncodedSnapshot(self._sign(execution_arn, operation_id, body), data, chain_bytes)
        return EncodedSnapshot(self._sign(execution_arn, operation_id, _FULL + data), data, 0)

    @staticmethod
    def _blame(
        snapshot: Snapshot, filename: str, line: int, loop_lines: Mapping[str, int]
    ) -> UnpicklableLocalError | None:
        for name, value in snapshot.locals.items():
            try:
                pickle.dumps(value, protocol=5)
            except Exception as error:  # noqa: BLE001 - any pickling failure names the variable
                return UnpicklableLocalError(name, value, filename, line, error, loop_lines.get(name))
        return None

    def decode(
        self, text: str, execution_arn: str, operation_id: str, stored: Callable[[str], str | None]
    ) -> tuple[Snapshot, BaseSnapshot]:
        """Verifies every signature in the snapshot's delta chain, then unpickles.

        ``text`` is checkpoint ``operation_id`` of ``execution_arn``; ``stored(operation_id)``
        returns the stored text of an earlier checkpoint. Anything forged, missing, or signed
        for another checkpoint raises SnapshotError before a byte is unpickled. The second
        value describes the snapshot for the next one to build on (its operation ID left empty).
        """
        deltas: list[tuple[int, bytes]] = []
        chain_bytes: int | None = None
        body = self._verified(text, execution_arn, operation_id)
        while body[:1] == _DELTA:
            total, shared, id_length = _DELTA_HEADER.unpack_from(body, 1)
            chain_bytes = total if chain_bytes is None else chain_bytes
            start = 1 + _DELTA_HEADER.size
            base_id = body[start : start + id_length].decode()
            deltas.append((shared, body[start + id_length :]))
            base_text = stored(base_id)
            if base_text is None:
                raise SnapshotError(
                    f"The snapshot of {execution_arn} builds on checkpoint {base_id}, which is missing "
                    "from the journal; the execution cannot be resumed."
                )
            body = self._verified(base_text, execution_arn, base_id)
        if body[:1] != _FULL:
            raise self._refused(execution_arn, operation_id)
        data = bytearray(body[1:])
        for shared, tail in reversed(deltas):
            del data[shared:]
            data += tail
        snapshot = pickle.loads(data)
        if not isinstance(snapshot, Snapshot):
            raise self._refused(execution_arn, operation_id)
        return snapshot, BaseSnapshot("", bytes(data), chain_bytes or 0)

    def rebind(self, text: str, source_arn: str, target_arn: str, operation_id: str) -> str:
        """Signs checkpoint ``operation_id`` of ``source_arn`` anew, for the same checkpoint of ``target_arn``.

        Raises SnapshotError, as ``decode`` would, if it is not signed for the source: a
        restart copies only what its source could resume from. Nothing is unpickled.
        """
        return self._sign(target_arn, operation_id, self._verified(text, source_arn, operation_id))

    def upgrade(self, text: str, execution_arn: str, operation_id: str) -> str:
        """Signs a v1 snapshot (``UNBOUND_PREFIX``) for checkpoint ``operation_id`` of ``execution_arn``.

        Only the one-time upgrade of stored snapshots calls this (``perdure.service.snapshot_upgrade``),
        with the execution and operation of the row the snapshot is in; everything else refuses
        such snapshots. Raises SnapshotError, unpickling nothing, if ``text`` is not one or its
        signature (then over the snapshot's bytes alone) does not match this server's key.
        """
        if not text.startswith(UNBOUND_PREFIX):
            raise self._refused(execution_arn, operation_id)
        try:
            raw = base64.b64decode(text[len(UNBOUND_PREFIX) :], validate=True)
        except ValueError:
            raise self._refused(execution_arn, operation_id) from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise self._refused(execution_arn, operation_id)
        return self._sign(execution_arn, operation_id, body)

    @staticmethod
    def _refused(execution_arn: str, operation_id: str) -> SnapshotError:
        return SnapshotError(
            f"The snapshot of {execution_arn} at operation {operation_id} is not signed with this "
            "server's key for this checkpoint (tampered, copied from another execution, or written "
            "under another PERDURE_SECRET); it was refused and not loaded. Restore the key the "
            "execution was started with."
        )

    def _verified(self, text: str, execution_arn: str, operation_id: str) -> bytes:
        if text.startswith(UNBOUND_PREFIX):
            raise SnapshotError(
                f"The snapshot of {execution_arn} at operation {operation_id} was written by an earlier "
                "Perdure, whose signatures did not name their execution; it is no longer trusted and "
                "was not loaded. Start a new execution with the same input instead."
            )
        if not text.startswith(_PREFIX):
            raise self._refused(execution_arn, operation_id)
        try:
            raw = base64.b64decode(text[len(_PREFIX) :], validate=True)
        except ValueError:
            raise self._refused(execution_arn, operation_id) from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(execution_arn, operation_id, body)):
            raise self._refused(execution_arn, operation_id)
        return body
