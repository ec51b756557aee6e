"""Captures what each invocation writes to stdout, stderr and Python ``logging``, line by line.

Workers and ``LocalRunner`` run a handler inside ``capture_logs(invocation)``. While any capture
is open, ``sys.stdout`` and ``sys.stderr`` are writers that hand each line to the capture of
the thread writing it (and still pass it on to the streams they replaced), and a handler on
the root logger keeps each record, as a line in Lambda's text format (``[LEVEL]\\tmessage``),
in the capture of the thread that logged it. The lines are then stored with the execution in
one transaction (``DurableService.append_logs``), so checkpoints are not slowed by them.

A worker runs many invocations at once, each in its own thread, so lines go by thread: a
capture owns the thread that opened it and every thread started from an owned thread while it
is open (the steps of ``parallel`` and ``map`` run in such threads). A line from a thread no
capture owns goes to the only open capture if there is just one, and otherwise to the
original stream alone: never to another invocation's lines.
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

from perdure.protocol.log_context import LogContext
from perdure.protocol.records import LogLine

if TYPE_CHECKING:
    from perdure.service.executions import DurableService

# Bounds on what one invocation keeps: lines past the count are dropped (and counted), and
# longer lines are cut.
MAX_LINES = 10_000
MAX_LINE_CHARS = 64 * 1024

logger = logging.getLogger(__name__)


class LogCapture:
    """The lines an invocation wrote so far, in order.

    With a ``spool`` path, each line is also written to that file at once, so that the lines of
    an invocation whose process dies (os._exit, a signal, running out of memory) are not lost:
    the worker's parent reads them back with ``read_spool``. The file is made with the first
    line: most invocations write none, and making (then removing) a file for each cost more
    CPU than the rest of a one-step invocation's start when hundreds started at once, as they
    contend for the folder's lock (0.5 ms each, 500 at once in a worker; issue 14). ``spooled``
    says whether it was made.
    """

    def __init__(self, invocation: int, spool: str | None = None) -> None:
        self.invocation = invocation
        self._spool_path = spool
        self._spool: int | None = None
        self.spooled = False
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
            if self._spool_path is not None:
                if self._spool is None:
                    self._spool = os.open(self._spool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    self.spooled = True
                os.write(self._spool, (json.dumps([kept.stream, kept.time, kept.line]) + "\n").encode())

    def close(self) -> None:
        """Closes the spool file, if one was made (it is left for the caller to remove); later lines are kept in memory only."""
        with self._lock:
            spool, self._spool, self._spool_path = self._spool, None, None
        if spool is not None:
            os.close(spool)

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


class _Sink:
    """One open capture with a line writer per stream, made when the stream is first written to.

    Most invocations print nothing: making two text streams for each cost a tenth of a one-step
    invocation's time in its worker (issue 14).
    """

    def __init__(self, capture: LogCapture, stdout: TextIO | None, stderr: TextIO | None) -> None:
        self.capture = capture
        self._streams = {"stdout": stdout, "stderr": stderr}
        self._writers: dict[str, _LineWriter] = {}
        # Two threads of the invocation may write their first lines at once: one writer each stream.
        self._making = threading.Lock()

    @property
    def out(self) -> _LineWriter:
        return self._writer("stdout")

    @property
    def err(self) -> _LineWriter:
        return self._writer("stderr")

    def _writer(self, stream: str) -> _LineWriter:
        writer = self._writers.get(stream)
        if writer is None:
            with self._making:
                writer = self._writers.get(stream)
                if writer is None:
                    writer = self._writers[stream] = _LineWriter(self.capture, stream, self._streams[stream])
        return writer

    def finish(self) -> None:
        """Hands on the streams' unfinished last lines."""
        for writer in list(self._writers.values()):
            writer.finish()


class _Routes:
    """The open captures, which thread writes to which, and the process-wide swap they share."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_thread: dict[int, _Sink] = {}
        self._open: list[_Sink] = []
        self._saved: tuple[TextIO, TextIO] | None = None
        self._root_level = logging.NOTSET
        self._handler = _RoutingHandler(self)
        self._thread_start = threading.Thread.start

    def sink(self, thread: int | None = None) -> _Sink | None:
        """The capture that ``thread`` (the calling thread by default) writes to, if any."""
        with self._lock:
            found = self._by_thread.get(threading.get_ident() if thread is None else thread)
            if found is None and len(self._open) == 1:
                return self._open[0]
            return found

    def open(self, capture: LogCapture) -> _Sink:
        with self._lock:
            if not self._open:
                self._install()
            assert self._saved is not None
            sink = _Sink(capture, *self._saved)
            self._open.append(sink)
            self._by_thread[threading.get_ident()] = sink
            return sink

    def close(self, sink: _Sink) -> None:
        with self._lock:
            self._open.remove(sink)
            for thread in [t for t, owner in self._by_thread.items() if owner is sink]:
                del self._by_thread[thread]
            if not self._open:
                self._uninstall()
        sink.finish()

    def _adopt(self, thread: threading.Thread, sink: _Sink) -> None:
        with self._lock:
            if sink in self._open and thread.ident is not None:
                self._by_thread[thread.ident] = sink

    def _install(self) -> None:
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _RoutingWriter(self, "out", sys.stdout), _RoutingWriter(self, "err", sys.stderr)
        root = logging.getLogger()
        self._root_level = root.level
        # As Lambda's runtime does, an unconfigured root logger (no handlers, level WARNING)
        # lets INFO records through while capturing, so ``logger.info`` lines are kept.
        if not root.handlers and root.level == logging.WARNING:
            root.setLevel(logging.INFO)
        root.addHandler(self._handler)
        routes = self
        original = self._thread_start

        def start(thread: threading.Thread) -> None:
            owner = routes.sink()
            original(thread)
            if owner is not None:
                routes._adopt(thread, owner)

        threading.Thread.start = start  # type: ignore[method-assign, assignment]

    def _uninstall(self) -> None:
        threading.Thread.start = self._thread_start  # type: ignore[method-assign]
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._root_level)
        assert self._saved is not None
        sys.stdout, sys.stderr = self._saved
        self._saved = None


class _RoutingWriter(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while captures are open: each write goes to its thread's capture."""

    def __init__(self, routes: _Routes, which: str, original: TextIO) -> None:
        self._routes = routes
        self._which = which
        self._original = original

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink = self._routes.sink()
        if sink is None:
            return self._original.write(text)
        return (sink.out if self._which == "out" else sink.err).write(text)

    def flush(self) -> None:
        self._original.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False


class _RoutingHandler(logging.Handler):
    def __init__(self, routes: _Routes) -> None:
        super().__init__(logging.DEBUG)
        self._routes = routes
        self.setFormatter(logging.Formatter("[%(levelname)s]\t%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = self._routes.sink(record.thread)
        if sink is None:
            return
        try:
            sink.capture.add("log", self.format(record))
        except Exception:  # noqa: BLE001 - a log record that cannot be formatted must not fail the handler
            self.handleError(record)


_ROUTES = _Routes()


@contextmanager
def capture_logs(invocation: int) -> Iterator[LogCapture]:
    """Captures the calling thread's stdout, stderr and ``logging`` (and its threads') for the ``with`` block."""
    capture = LogCapture(invocation)
    with capturing(capture):
        yield capture


@contextmanager
def capturing(capture: LogCapture) -> Iterator[None]:
    """``capture_logs`` into a capture the caller made (with a spool file, say)."""
    sink = _ROUTES.open(capture)
    try:
        yield
    finally:
        _ROUTES.close(sink)


def keep_logs(service: DurableService, arn: str, capture: LogCapture) -> None:
    """Stores the captured lines with the execution; a failure to is reported, not raised."""
    try:
        service.append_logs(arn, capture.lines())
    except Exception as error:  # noqa: BLE001 - losing log lines must not lose the invocation's outcome
        fields = LogContext(arn, invocation=capture.invocation).fields()
        logger.warning("Could not keep the log lines of invocation %d of %s: %s", capture.invocation, arn, error, extra=fields)


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
