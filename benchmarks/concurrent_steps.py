"""Benchmark: many concurrent seed-style workflows in one process, with and without group commit.

Runs ``--workflows`` executions of ``seed_flows.steps`` (``--steps`` trivial ``ctx.step`` each)
on the embedded SQLite store, in one process, with no worker processes and no server:

- **sequential**: one thread starts a workflow, leases it, runs its invocation and records its
  end, then the next (what ``perdure.testing`` and ``perdure run`` do);
- **concurrent**: all workflows are started, then ``--threads`` threads each lease one ready
  execution at a time and run it, so that up to that many invocations checkpoint at once. With
  group commit (the default) the write transactions that meet share SQLite commits; the
  ``group commit off`` rows commit each transaction alone (``SQLiteStore(group_limit=1)``).

Each configuration runs with ``synchronous=NORMAL`` (the default: no acknowledged checkpoint is
lost when a process crashes) and ``FULL`` (not on power loss either), on a fresh database, in
alternating rounds. *Steps/s* is workflows × steps / wall time from the first start to the last
end; *transactions per commit* is from ``SQLiteStore.commit_counts()``.

    python benchmarks/concurrent_steps.py [--workflows 1000] [--steps 10] [--threads 16] [--write docs/benchmarks.md]

``--write`` replaces the block between the ``concurrent-results`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import seed_flows
from seed_style import source
from sequential_steps import machine, write

from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.leases import lease_owner_id
from perdure.sdk.engine import run_seed_invocation
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore
from perdure.testing import _durable

START_MARK, END_MARK = "<!-- concurrent-results:start -->", "<!-- concurrent-results:end -->"
LEASE_SECONDS = 900.0


@dataclass
class Config:
    label: str
    threads: int
    synchronous: str
    group_limit: int | None = None  # None: the store's default
    times: list[float] = field(default_factory=list)
    per_commit: list[float] = field(default_factory=list)


def _run_one(service: DurableService, owner: str, codec: SnapshotCodec, name: str) -> bool:
    """Leases one ready execution and runs its invocation; False when none was ready."""
    function = _durable(seed_flows.steps)
    leased = service.lease(owner, [name], 1, LEASE_SECONDS)
    for invocation in leased:
        output = run_seed_invocation(function, service, invocation.execution_arn, invocation.checkpoint_token, codec)
        service.complete_invocation(invocation, output)
    return bool(leased)


def run(config: Config, folder: Path, workflows: int, steps: int, number: int) -> None:
    """Runs the workload once on a fresh database and records its time and commit grouping."""
    path = folder / f"{config.label.replace(' ', '-').replace(',', '')}-{number}.db"
    options = {} if config.group_limit is None else {"group_limit": config.group_limit}
    store = SQLiteStore(path, synchronous=config.synchronous, **options)
    service = DurableService(store)
    codec = SnapshotCodec(b"benchmark-key")
    owner = lease_owner_id()
    name = _durable(seed_flows.steps).options.name
    started = store.commit_counts()
    began = time.perf_counter()
    arns: list[str] = []
    if config.threads == 1:
        for i in range(workflows):
            arns.append(service.start_execution(StartRequest(name, f'{{"count": {steps}, "run": {i}}}')).execution.arn)
            _run_one(service, owner, codec, name)
    else:
        for i in range(workflows):
            arns.append(service.start_execution(StartRequest(name, f'{{"count": {steps}, "run": {i}}}')).execution.arn)

        def drain() -> None:
            while _run_one(service, owner, codec, name):
                pass

        threads = [threading.Thread(target=drain) for _ in range(config.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - began
    counts = store.commit_counts()
    for arn in arns:
        execution = service.get_execution(arn)
        if execution.status.value != "SUCCEEDED":
            raise RuntimeError(f"{config.label}: {arn} ended {execution.status.value}: {execution.error}")
    store.close()
    path.unlink()
    config.times.append(elapsed)
    config.per_commit.append((counts.transactions - started.transactions) / max(1, counts.commits - started.commits))


def report(args: argparse.Namespace, rows: list[tuple[str, str]], configs: list[Config]) -> str:
    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()}: {args.workflows} workflows of {args.steps} steps per run, "
        f"{args.rounds} alternating rounds per configuration; figures are medians over the rounds.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows if name != "SQLite durability"),
        "",
        "| Configuration | synchronous | Threads | Median wall time | Workflows/s | Steps/s | µs per step | Transactions per commit |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in configs:
        median = statistics.median(c.times)
        steps = args.workflows * args.steps
        lines.append(
            f"| {c.label} | {c.synchronous} | {c.threads} | {median:.2f} s | {args.workflows / median:.0f} "
            f"| {steps / median:.0f} | {median / steps * 1e6:.0f} | {statistics.median(c.per_commit):.1f} |"
        )
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=1000, help="workflows per run (default 1000)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow (default 10)")
    parser.add_argument("--threads", type=int, default=16, help="threads of the concurrent runs (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every configuration (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary database folder")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to put the results in")
    args = parser.parse_args()

    configs = [
        Config("sequential", 1, "NORMAL"),
        Config("concurrent, group commit", args.threads, "NORMAL"),
        Config("concurrent, group commit off", args.threads, "NORMAL", group_limit=1),
        Config("sequential", 1, "FULL"),
        Config("concurrent, group commit", args.threads, "FULL"),
        Config("concurrent, group commit off", args.threads, "FULL", group_limit=1),
    ]
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="perdure-concurrent-bench-", dir=args.dir))
    try:
        for number in range(args.rounds):
            for config in configs if number % 2 == 0 else configs[::-1]:
                run(config, folder, args.workflows, args.steps, number)
        block = report(args, [*machine(folder, load_before), source()], configs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.write(block)
    if args.write:
        write(args.write, block, START_MARK, END_MARK)


if __name__ == "__main__":
    main()
