"""A worker's captures spool each line to a file at once, made only when a first line comes."""

from __future__ import annotations

import logging
from pathlib import Path

from perdure.runtime.logcapture import LogCapture, capturing, read_spool


def test_an_invocation_that_writes_nothing_makes_no_spool_file(tmp_path: Path) -> None:
    spool = tmp_path / "1.log"
    capture = LogCapture(7, str(spool))
    with capturing(capture):
        pass
    capture.close()
    assert not capture.spooled
    assert not spool.exists()


def test_each_line_is_in_the_spool_file_as_soon_as_it_is_written(tmp_path: Path) -> None:
    spool = tmp_path / "2.log"
    capture = LogCapture(7, str(spool))
    with capturing(capture):
        print("first")
        # Readable at once, as by the pool when the worker process dies here.
        assert [line.line for line in read_spool(str(spool), 7)] == ["first"]
        logging.getLogger("orders").warning("second")
        print("partial", end="")
    capture.close()
    assert capture.spooled
    lines = read_spool(str(spool), 7)
    assert [(line.stream, line.line) for line in lines] == [("stdout", "first"), ("log", "[WARNING]\tsecond"), ("stdout", "partial")]
    assert all(line.invocation == 7 for line in lines)
    assert spool.stat().st_mode & 0o777 == 0o600
