"""Benchmark: seed-style checkpoints, steps and resumes, in-process on the embedded SQLite store.

Runs the durable functions of ``benchmarks/seed_flows.py`` with ``perdure.testing``'s
``DurableTestRunner`` (its ``LocalRunner`` runs each invocation in this process: no worker, no
server), on SQLite in WAL mode with ``synchronous=NORMAL``. It times ``run_ready()``, one whole
invocation (lease, journal load, the function, completion):

- a loop of N ``ctx.checkpoint()`` with small locals, and with a ~1 MiB list of ints in the locals;
- a loop of N ``ctx.step(lambda: 1)``;
- the resumed invocation of an execution suspended at ``ctx.wait`` after K checkpoints (its
  clock moved past the wait first), which restores the latest snapshot and runs to the end.

Variants alternate in rounds (order reversed every other round), each on its own database, and
the script also times the SQLite commit floor (``sequential_steps.commit_floor``) in the same run.

    python benchmarks/seed_style.py [--rounds 10] [--write docs/benchmarks.md] [--profile]

``--write`` replaces the block between the ``seed-results`` markers of that file (or appends
one); ``--profile`` then prints cProfile's top functions for one invocation of each loop variant.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import seed_flows
from sequential_steps import commit_floor, machine, write

import perdure
from perdure.protocol.records import CHECKPOINT_SUBTYPE
from perdure.store.sqlite import SQLiteStore
from perdure.testing import DurableTestRunner, _durable

START_MARK, END_MARK = "<!-- seed-results:start -->", "<!-- seed-results:end -->"
TARGET_US = 150.0  # the target for one step or one small checkpoint


@dataclass
class Variant:
    """One thing to time, on its own database: a loop of ``count`` operations, or a resume."""

    label: str
    function: Callable[..., Any]
    count: int
    unit: str  # "invocation", "checkpoint", "step" or "resume"
    target: bool = False  # whether the 150 µs target applies
    times: list[float] = field(default_factory=list)
    journal_ops: int = 0  # operations recorded when the resumed invocation starts
    payload_bytes: int = 0  # the largest checkpoint or step payload recorded
    runner: DurableTestRunner | None = None

    def open(self, folder: Path) -> None:
        """Makes this variant's runner and database, and checks it runs in WAL with synchronous=NORMAL."""
        self.runner = DurableTestRunner(folder / self.label.replace(" ", "-"))
        store = self.runner.service.store
        assert isinstance(store, SQLiteStore)
        conn = store._conn  # private, read only to check the durability in use
        mode, sync = conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0]
        if (mode, sync) != ("wal", 1):
            raise RuntimeError(f"{self.label}: SQLite runs with journal_mode={mode}, synchronous={sync}")

    def run(self, number: int) -> float:
        """Starts an execution and times the invocation (for a resume: the resumed one)."""
        assert self.runner is not None
        local = self.runner.local
        # A distinct event per run: `event` is a saved local, so no two snapshots are equal and
        # none is deduplicated by the content-addressed blob store.
        arn = local.start(_durable(self.function), {"count": self.count, "run": number}).arn
        if self.unit == "resume":
            if local.run_ready() != 1 or self.runner.service.get_execution(arn).status.is_terminal:
                raise RuntimeError(f"{self.label}: the execution did not suspend at its wait")
            wakeup = self.runner.service.next_wakeup()
            assert wakeup is not None
            self.runner.clock.advance_to(wakeup)
            self.journal_ops = self.runner.service.get_execution(arn).operation_count
        began = time.perf_counter()
        ran = local.run_ready()
        elapsed = time.perf_counter() - began
        execution = self.runner.service.get_execution(arn)
        if ran != 1 or execution.status.value != "SUCCEEDED":
            raise RuntimeError(f"{self.label}: ran {ran} invocations, execution {execution.status.value}")
        self.payload_bytes = max(self.payload_bytes, self._largest_payload(execution.id))
        return elapsed

    def _largest_payload(self, execution_id: str) -> int:
        """Size in characters of the largest checkpoint or step payload the execution recorded."""
        assert self.runner is not None
        with self.runner.service.store.snapshot() as tx:
            ops = tx.list_operations(execution_id, 0, 100_000)
        return max((len(op.result or "") for op in ops if op.sub_type in (CHECKPOINT_SUBTYPE, "Step")), default=0)

    def close(self) -> None:
        """Closes the runner's store (the folder is deleted by the caller)."""
        if self.runner is not None:
            self.runner.__exit__()


def variants(count: int, big_count: int, resume_after: list[int]) -> list[Variant]:
    """Every variant, in the order of the first round."""
    return [
        Variant("empty invocation", seed_flows.small_checkpoints, 0, "invocation"),
        Variant("small checkpoint", seed_flows.small_checkpoints, count, "checkpoint", target=True),
        Variant("1 MiB checkpoint", seed_flows.big_checkpoints, big_count, "checkpoint"),
        Variant("step", seed_flows.steps, count, "step", target=True),
        *(Variant(f"resume after {k}", seed_flows.checkpoints_then_wait, k, "resume") for k in resume_after),
    ]


def _verdict(us: float) -> str:
    """Whether ``us`` meets the target, and by how much."""
    if us < TARGET_US:
        return f"met ({TARGET_US - us:.0f} µs under)"
    return f"**not met** ({us - TARGET_US:.0f} µs over, {us / TARGET_US:.1f}×)"


def source() -> tuple[str, str]:
    """Which perdure code ran: its folder, and its git commit and whether it had uncommitted changes."""
    folder = Path(perdure.__file__).parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(folder), *args], check=False, capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return ("perdure source", str(folder))
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", ".") else " (clean)"
    return ("perdure source", f"{folder}, commit {commit}{dirty}")


def _growth(first: Variant, v: Variant) -> str:
    """How much each journal operation added since ``first`` costs the resume, in µs."""
    if v.journal_ops == first.journal_ops:
        return "–"
    added = statistics.median(v.times) - statistics.median(first.times)
    return f"{added / (v.journal_ops - first.journal_ops) * 1e6:.1f}"


def report(args: argparse.Namespace, rows: list[tuple[str, str]], runs: list[Variant], floor_us: float) -> str:
    """The results block, in Markdown."""
    loops = [v for v in runs if v.unit != "resume"]
    resumes = [v for v in runs if v.unit == "resume"]
    lines = [
        START_MARK,
        (
            f"Measured {datetime.date.today().isoformat()}: {args.rounds} alternating rounds of every variant, "
            "after one warm-up run each; figures are medians over the rounds."
        ),
        "",
        "| | |", "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        (
            "| Variant | Ops per invocation | Median invocation | p90 invocation | µs per op (median / ops) "
            "| Largest payload | Ratio to commit floor | Target < 150 µs |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in loops:
        median, p90 = statistics.median(v.times), statistics.quantiles(v.times, n=10)[8]
        per_op = median / v.count * 1e6 if v.count else float("nan")
        lines.append(
            f"| {v.label} | {v.count} | {median * 1e3:.2f} ms | {p90 * 1e3:.2f} ms "
            + (f"| {per_op:.0f} | {v.payload_bytes:,} B | {per_op / floor_us:.0f}× " if v.count else "| – | – | – ")
            + f"| {_verdict(per_op) if v.target else '–'} |"
        )
    lines += [
        "",
        (
            "| Resume: execution suspended at a wait after K checkpoints | Journal operations "
            "| Median resumed invocation | p90 resumed invocation | µs per journal operation added (vs K of the first row) |"
        ),
        "|---|---:|---:|---:|---:|",
        *(
            f"| K = {v.count} | {v.journal_ops} | {statistics.median(v.times) * 1e3:.2f} ms "
            f"| {statistics.quantiles(v.times, n=10)[8] * 1e3:.2f} ms | {_growth(resumes[0], v)} |"
            for v in resumes
        ),
        "",
        "| Floor: one SQLite write transaction (BEGIN IMMEDIATE, small INSERT, COMMIT; median of 2000) | |",
        "|---|---:|",
        f"| WAL, synchronous=NORMAL | {floor_us:.1f} µs |",
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def profile(runs: list[Variant], top: int) -> None:
    """Prints cProfile's top functions (by own time) for one more invocation of each loop variant."""
    for v in runs:
        if v.unit not in ("checkpoint", "step"):
            continue
        profiler = cProfile.Profile()
        profiler.runcall(v.run, -1)
        sys.stdout.write(f"\n## cProfile: {v.label}, {v.count} per invocation\n")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    """Runs every variant in alternating rounds, then the commit floor, and prints (or writes) the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="timed runs of every variant (default 10)")
    parser.add_argument("--count", type=int, default=200, help="checkpoints or steps per invocation (default 200)")
    parser.add_argument("--big-count", type=int, default=20, help="1 MiB checkpoints per invocation (default 20)")
    parser.add_argument("--resume-after", default="1,100,1000", help="checkpoints before the wait (default 1,100,1000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary database folder")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to put the results in")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each loop variant afterwards")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="perdure-seed-bench-", dir=args.dir))
    runs = variants(args.count, args.big_count, [int(k) for k in args.resume_after.split(",")])
    try:
        for v in runs:
            v.open(folder)
            v.run(0)  # warm-up
        for number in range(1, args.rounds + 1):
            for v in runs if number % 2 else runs[::-1]:
                v.times.append(v.run(number))
        floor_us = commit_floor(folder, "NORMAL")
        block = report(args, [*machine(folder, load_before), source()], runs, floor_us)
        sys.stdout.write(block)
        if args.profile:
            profile(runs, 20)
    finally:
        for v in runs:
            v.close()
        shutil.rmtree(folder, ignore_errors=True)
    if args.write:
        write(args.write, block, START_MARK, END_MARK)


if __name__ == "__main__":
    main()
