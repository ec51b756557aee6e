"""DBOS Transact's side of section (h) of ``benchmarks/compare.py`` (see ``compare_io.py``): a workflow
with one step that sleeps 1 s, started N times at once with ``DBOS.start_workflow`` (a thread each),
on SQLite (as ``dbos_bench``'s set-ups: its default, or WAL + ``synchronous=NORMAL``)."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

from compare_io import WARMUP, PeakRSS, finish
from dbos import DBOS

from rivals.dbos_bench import _launch, durability


@DBOS.step()
def slow_call(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@DBOS.workflow()
def one_slow_step(seconds: float) -> float:
    return slow_call(seconds)


def io(folder: str, wal: bool, executions: int, seconds: float, cap: float) -> dict[str, Any]:
    _launch(Path(folder) / "dbos-io.sqlite", wal)
    try:
        for handle in [DBOS.start_workflow(one_slow_step, 0.2) for _ in range(WARMUP)]:
            handle.get_result()
        peak = PeakRSS()
        ends: list[float] = []
        began = time.perf_counter()
        handles = []
        for _ in range(executions):
            handle = DBOS.start_workflow(one_slow_step, seconds)
            handle.future.add_done_callback(lambda _: ends.append(time.perf_counter()))
            handles.append(handle)
        started = time.perf_counter() - began
        futures = [handle.future for handle in handles]
        _, not_done = concurrent.futures.wait(futures, timeout=max(0.0, began + cap - time.perf_counter()))
        peak.stop()
        finished = not not_done
        if finished:
            for handle in handles:
                handle.get_result()  # raises if one failed
        result = {
            "finished": finished, "executions": executions, "ended": executions - len(not_done), "cap": cap,
            "seconds": (max(ends) - began) if finished else cap, "start_seconds": started,
            "peak_rss_kib": peak.peak_kib, "idle_rss_kib": peak.idle_kib, "processes": peak.processes,
            "durability": durability(),
        }
        return finish(folder, result)
    finally:
        DBOS.destroy()
