"""Spool files: where a worker process of ``perdure serve`` puts the spans it records, for its
server's export process to read and export.

A span recorded in a worker must outlive the worker (a handler's ``os._exit``, a SIGKILL): a
span of an operation that is in the store is never lost with a process. It was sent to the
server at once, one pipe message a span; under the runtime that cost a traced step more than
half again its time (``benchmarks/telemetry_cost.py``: 206.6 → 325.5 µs per step), in the
worker's pickling and write, in waking the server's reader thread for every span, and in the
server unpickling and queueing it under the interpreter lock its scheduler and API need. A
span is now appended to a file in one ``write`` (about 3 µs, and it wakes nobody), and what a
write put in a file stays there when its process dies, as what it put in a pipe did: the
guarantee is the same. The export process reads the files every 50 ms, and reads them to the
end once their writer has ended.

A spool is a directory of numbered files of frames (``perdure.telemetry.span_record``); the
writer starts the next file past ``ROTATE_BYTES`` and the reader removes each file it has read
to the end once the next exists. This module imports nothing of Perdure: the export process
loads it alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from perdure.telemetry.span_record import FrameError, SpanRecord, read_frames

logger = logging.getLogger(__name__)

# The size past which a writer starts the next file, so that what has been read is removed.
ROTATE_BYTES = 1 << 20
# Files a writer may be ahead of its reader (about 3,000 spans each) before it drops its spans,
# counted in a warning, rather than fill the disk when the export process is gone.
MAX_UNREAD_FILES = 64
_READ_BYTES = 1 << 20


def _file(directory: Path, number: int) -> Path:
    return directory / f"spans-{number:06d}"


class SpanSpool:
    """The writing end, in the process that records the spans (any thread)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Held across each write and the switch to the next file: a reader that sees file n + 1
        # then knows that every write to file n has ended (see ``SpoolReader.read``).
        self._lock = threading.Lock()
        self._number = 0
        self._fd = -1
        self._size = 0
        self._dropped = 0

    def write(self, record: SpanRecord) -> None:
        """Appends ``record``: once this returns, the reader gets it even if this process dies next."""
        frame = record.frame()
        with self._lock:
            if self._fd < 0 or self._size + len(frame) > ROTATE_BYTES:
                problem = self._next_file()
                if problem is not None:
                    self._drop(problem)
                    return
            try:
                written = os.write(self._fd, frame)
            except OSError as error:
                self._drop(f"{self.directory} could not be written ({error})")
                written = 0
            self._size += written
            if written < len(frame):
                if written:
                    self._drop(f"a write to {self.directory} was cut short")
                # A frame cut short ends its file: the reader drops what follows the last whole
                # frame of a file it has read to the end.
                self._size = ROTATE_BYTES

    def _next_file(self) -> str | None:
        """Switches to the next file; what kept it from doing so, if anything (the current file then closed)."""
        unread = self._number + 1 - MAX_UNREAD_FILES
        if unread >= 1 and _file(self.directory, unread).exists():
            self._close()
            return f"the export process has not read the last {MAX_UNREAD_FILES} files of {self.directory}"
        try:
            fd = os.open(_file(self.directory, self._number + 1), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as error:
            self._close()
            return f"a file could not be made in {self.directory} ({error})"
        self._close()
        if self._dropped:
            logger.warning("%d spans recorded in this process were dropped; they are exported again from now on.", self._dropped)
            self._dropped = 0
        self._fd, self._number, self._size = fd, self._number + 1, 0
        return None

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _drop(self, problem: str) -> None:
        if self._dropped == 0:
            logger.warning("Spans recorded in this process are dropped, not exported: %s.", problem)
        self._dropped += 1


class SpoolReader:
    """The reading end, in the export process: reads the spans a writer has appended so far."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._number = 1
        self._fd = -1
        self._pending = b""
        # The current file held bytes that are not frames: the rest of it is not read.
        self._skipping = False

    def read(self) -> list[SpanRecord]:
        """The spans written since the last read; removes each file read to the end that the writer has left."""
        records: list[SpanRecord] = []
        while True:
            if self._fd < 0:
                try:
                    self._fd = os.open(_file(self.directory, self._number), os.O_RDONLY)
                except FileNotFoundError:
                    return records
            # Looked for before reading: the writer opens the next file only once its writes to
            # this one have ended, so if it exists, reading to the end reads all of this one.
            left = _file(self.directory, self._number + 1).exists()
            records += self._frames(self._read_to_end())
            if not left:
                return records
            self._drop_pending()
            os.close(self._fd)
            self._fd = -1
            _file(self.directory, self._number).unlink()
            self._number += 1
            self._skipping = False

    def close(self) -> list[SpanRecord]:
        """The spans not read yet, once the writer has ended; removes the spool."""
        records = self.read()
        self._drop_pending()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        shutil.rmtree(self.directory, ignore_errors=True)
        return records

    def _read_to_end(self) -> bytes:
        chunks = [self._pending]
        while chunk := os.read(self._fd, _READ_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)

    def _frames(self, data: bytes) -> list[SpanRecord]:
        if self._skipping:
            return []
        try:
            records, used = read_frames(data)
        except FrameError as error:
            logger.warning("The rest of %s was dropped: %s.", _file(self.directory, self._number), error)
            self._pending, self._skipping = b"", True
            return error.records
        self._pending = data[used:]
        return records

    def _drop_pending(self) -> None:
        """Drops a frame its writer cut short (it died in the write, or the disk was full)."""
        if self._pending:
            logger.warning("A span cut short at the end of %s was dropped.", _file(self.directory, self._number))
            self._pending = b""
