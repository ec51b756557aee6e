"""Captures what one invocation writes to stdout, stderr and Python ``logging``, line by line.

Workers and ``LocalRunner`` run a handler inside ``capture_logs(invocation)``: ``sys.stdout`` and
``sys.stderr`` are swapped for writers that cut what is written into lines (and still pass it
on to the streams they replace), and a handler on the root logger keeps each record as a line
in Lambda's text format (``[LEVEL]\\tmessage``). The lines are then stored with the execution in
one transaction (``DurableService.append_logs``), so checkpoints are not slowed by them.

The swap is process-wide (steps of ``parallel`` and ``map`` run in threads), so only one
invocation of a process may capture at a time; workers run one at a time by design.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from perdure.protocol.records import LogLine

if TYPE_CHECKING:
    from perdure.service.executions import DurableService

# Bounds on what one invocation keeps: lines past the count are dropped (and counted), and
# longer lines are cut.
MAX_LINES = 10_000
MAX_LINE_CHARS = 64 * 1024


class LogCapture:
    """The lines an invocation wrote so far, in order."""

    def __init__(self, invocation: int, spool: int | None = None) -> None:
        self.invocation = invocation
        # A file descriptor each line is also written to at once, so that the lines of an
        # invocation whose process dies (os._exit, a signal, running out of memory) are not lost:
        # the worker's parent reads them back with ``read_spool``.
        self._spool = spool
        self._lines: list[LogLine] = []
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, stream: str, line: str) -> None:
        with self._lock:
            if len(self._lines) >= MAX_LINES:
                self._dropped += 1
                return
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + " [truncated]"
            kept = LogLine(self.invocation, stream, time.time(), line)
            self._lines.append(kept)
            if self._spool is not None:
                os.write(self._spool, (json.dumps([kept.stream, kept.time, kept.line]) + "\n").encode())

    def lines(self) -> list[LogLine]:
        with self._lock:
            lines = list(self._lines)
            if self._dropped:
                note = f"[perdure] {self._dropped} more lines of this invocation were dropped (at most {MAX_LINES} are kept)"
                lines.append(LogLine(self.invocation, "stderr", time.time(), note))
            return lines


class _LineWriter(io.TextIOBase):
    """A text stream that hands each complete line to a capture, and passes writes through."""

    def __init__(self, capture: LogCapture, stream: str, passthrough: TextIO | None) -> None:
        self._capture = capture
        self._stream = stream
        self._passthrough = passthrough
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._passthrough is not None:
            self._passthrough.write(text)
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._capture.add(self._stream, line)
        return len(text)

    def flush(self) -> None:
        if self._passthrough is not None:
            self._passthrough.flush()

    def finish(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._capture.add(self._stream, rest)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False


class _CaptureHandler(logging.Handler):
    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture
        self.setFormatter(logging.Formatter("[%(levelname)s]\t%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._capture.add("log", self.format(record))
        except Exception:  # noqa: BLE001 - a log record that cannot be formatted must not fail the handler
            self.handleError(record)


@contextmanager
def capture_logs(invocation: int, spool: int | None = None) -> Iterator[LogCapture]:
    """Captures stdout, stderr and ``logging`` for the duration of the ``with`` block.

    As Lambda's runtime does, an unconfigured root logger (no handlers, level WARNING) lets INFO
    records through while capturing, so ``logger.info`` lines are kept.
    """
    capture = LogCapture(invocation, spool)
    out = _LineWriter(capture, "stdout", sys.stdout)
    err = _LineWriter(capture, "stderr", sys.stderr)
    handler = _CaptureHandler(capture)
    root = logging.getLogger()
    level = root.level
    if not root.handlers and level == logging.WARNING:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield capture
    finally:
        sys.stdout, sys.stderr = saved
        root.removeHandler(handler)
        root.setLevel(level)
        out.finish()
        err.finish()


def keep_logs(service: DurableService, arn: str, capture: LogCapture) -> None:
    """Stores the captured lines with the execution; a failure to is reported, not raised."""
    try:
        service.append_logs(arn, capture.lines())
    except Exception as error:  # noqa: BLE001 - losing log lines must not lose the invocation's outcome
        print(f"perdure: could not keep the log lines of {arn}: {error}", file=sys.stderr)


def read_spool(path: str, invocation: int) -> list[LogLine]:
    """The lines a capture wrote to a spool file (see ``LogCapture``); a cut-off last line is skipped."""
    lines: list[LogLine] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as spool:
            for raw in spool:
                try:
                    stream, at, line = json.loads(raw)
                except ValueError:
                    continue
                lines.append(LogLine(invocation, stream, at, line))
    except OSError:
        pass
    return lines
