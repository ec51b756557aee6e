"""A worker process's spool of spans: what a writer appended is read once, in order, also when the
writer is killed just after, and what a writer cut short or could not write is dropped out loud."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from perdure.telemetry import span_spool
from perdure.telemetry.span_record import SpanRecord
from perdure.telemetry.span_spool import SpanSpool, SpoolReader


def _span(number: int, message: str = "") -> SpanRecord:
    attributes: dict[str, str | int | None] = {"perdure.function": "order", "perdure.operation.id": str(number), "absent": None}
    error = ("ValueError", message) if message else None
    return SpanRecord(2**127 + number, number + 1, 7, f"step {number}", 1.5, 2.5, attributes, error)


def test_spans_written_just_before_the_writer_is_killed_are_all_read(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from perdure.telemetry import span_spool
        from perdure.telemetry.span_record import SpanRecord
        span_spool.ROTATE_BYTES = 65536
        spool = span_spool.SpanSpool(Path(sys.argv[1]))
        for number in range(5000):
            spool.write(SpanRecord(1, number + 1, 0, f"step {number}", 1.0, 2.0, {"perdure.operation.id": str(number)}))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(spool)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(list(spool.iterdir())) > 1, "5,000 spans fill more than one file"

    spans = SpoolReader(spool).close()

    assert [span.name for span in spans] == [f"step {number}" for number in range(5000)]
    assert not spool.exists(), "the spool is removed once read"


def test_a_reader_gets_each_span_once_and_in_order_while_threads_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_spool, "ROTATE_BYTES", 4096)
    monkeypatch.setattr(span_spool, "MAX_UNREAD_FILES", 100_000)  # none dropped, however far the reader falls behind
    writer, reader = SpanSpool(tmp_path), SpoolReader(tmp_path)

    def write(first: int) -> None:
        for number in range(first, first + 2000):
            writer.write(_span(number))

    threads = [threading.Thread(target=write, args=(first,)) for first in (0, 10_000, 20_000)]
    read: list[SpanRecord] = []
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        read += reader.read()
    read += reader.read()

    numbers = [span.span_id - 1 for span in read]
    assert sorted(numbers) == [n for first in (0, 10_000, 20_000) for n in range(first, first + 2000)]
    for first in (0, 10_000, 20_000):
        assert [n for n in numbers if first <= n < first + 2000] == list(range(first, first + 2000)), "one thread's spans keep their order"
    assert len(list(tmp_path.iterdir())) == 1, "only the file still being written is left"


def test_a_span_reads_back_as_it_was_written(tmp_path: Path) -> None:
    SpanSpool(tmp_path).write(_span(3, "out of stock"))
    (span,) = SpoolReader(tmp_path).close()
    assert span == _span(3, "out of stock")


def test_a_span_cut_short_by_its_writers_death_is_dropped_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = SpanSpool(tmp_path)
    spool.write(_span(1))
    spool.write(_span(2))
    whole = (tmp_path / "spans-000001").read_bytes()
    (tmp_path / "spans-000001").write_bytes(whole + _span(3).frame()[:-5])

    with caplog.at_level(logging.WARNING):
        spans = SpoolReader(tmp_path).close()

    assert [span.name for span in spans] == ["step 1", "step 2"]
    assert "A span cut short at the end of" in caplog.text


def test_a_writer_far_ahead_of_its_reader_drops_spans_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(span_spool, "ROTATE_BYTES", 1)  # a file a span
    monkeypatch.setattr(span_spool, "MAX_UNREAD_FILES", 3)
    writer, reader = SpanSpool(tmp_path), SpoolReader(tmp_path)
    with caplog.at_level(logging.WARNING):
        for number in range(5):
            writer.write(_span(number))
        assert "Spans recorded in this process are dropped, not exported: the export process has not read" in caplog.text
        assert [span.name for span in reader.read()] == ["step 0", "step 1", "step 2"]
        writer.write(_span(5))
        assert "2 spans recorded in this process were dropped" in caplog.text
    assert [span.name for span in reader.close()] == ["step 5"]


def test_a_spool_that_cannot_be_written_drops_its_spans_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = SpanSpool(tmp_path / "gone")
    with caplog.at_level(logging.WARNING):
        writer.write(_span(1))
        writer.write(_span(2))
    assert caplog.text.count("Spans recorded in this process are dropped") == 1, "said once, not for every span"
    assert os.listdir(tmp_path) == []
