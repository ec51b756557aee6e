"""Benchmark: deploying a new version of the example app, and the first invocation of a new version.

On SQLite in a temporary folder, with real processes: ``perdure serve --no-workers`` serves the
API, and a ``perdure worker`` given no functions, started in another folder with no copy of the
code, runs every function of the database from the versions stored there. Each round:

1. ``perdure deploy`` sends the example app (``examples/``, a constant changed so that the code
   is new) to the running server: the command's wall time, Python's start included.
2. The order workflow is invoked on that new version: the worker fetches its bundle, unpacks
   it and starts a worker process that imports it (cold). Timed from the invoke until the
   execution waits for its approval (``CallbackStarted``).
3. The same again on the same version, whose worker process is warm.

    python benchmarks/deploys.py [--rounds 5] [--write docs/benchmarks.md]

With ``--write``, the results replace the block between the ``deploys`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PERDURE = [sys.executable, "-m", "perdure"]
START_MARK, END_MARK = "<!-- deploys:start -->", "<!-- deploys:end -->"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(command: list[str], cwd: Path, log: Path, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """Runs ``command`` until the block ends, once its log says ``ready``."""
    with open(log, "ab") as out:
        started = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while ready not in log.read_text():
            if started.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield started
    finally:
        started.terminate()
        started.wait(30)


def until_waiting(http: httpx.Client, function: str) -> float:
    """Seconds from an Event invoke of ``function`` until its execution waits for its approval."""
    began = time.perf_counter()
    reply = http.post(
        f"/2015-03-31/functions/{function}/invocations",
        content=b'{"order_id": "A-1"}',
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    reply.raise_for_status()
    arn = reply.headers["X-Amz-Durable-Execution-Arn"]
    path = f"/2025-12-01/durable-executions/{quote(arn, safe='')}/history"
    while True:
        events = http.get(path, params={"MaxItems": 1000}).json()["Events"]
        if any(event["EventType"] == "CallbackStarted" for event in events):
            return time.perf_counter() - began
        if any(event["EventType"].startswith("Execution") and event["EventType"] != "ExecutionStarted" for event in events):
            raise RuntimeError(f"{arn} ended before waiting for its approval: {events[-1]}")
        time.sleep(0.002)


def run(rounds: int) -> dict[str, list[float]]:
    base = Path(tempfile.mkdtemp(prefix="perdure-deploys-"))
    try:
        app, elsewhere = base / "app", base / "worker"
        shutil.copytree(ROOT / "examples", app, ignore=shutil.ignore_patterns("__pycache__", "aws"))
        elsewhere.mkdir()
        db = f"sqlite:///{base / 'db' / 'perdure.db'}"
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        # The example's side effects go to a ledger file of the run's own.
        os.environ["PERDURE_EXAMPLE_LEDGER"] = str(base / "ledger")
        serve = [*PERDURE, "serve", str(app / "order_processing.py"), "--no-workers", "--dev", "--db", db, "--port", str(port)]
        worker = [*PERDURE, "worker", "--db", db, "--workers", "2"]
        results: dict[str, list[float]] = {"deploy": [], "first": [], "warm": []}
        with (
            process(serve, base, base / "serve.log", "Perdure serving"),
            process(worker, elsewhere, base / "worker.log", "Perdure worker running"),
            httpx.Client(base_url=endpoint, timeout=60) as http,
        ):
            # A warm-up: the worker's first process and the first version.
            until_waiting(http, "process_order")
            source = (app / "order_processing.py").read_text()
            for index in range(rounds):
                (app / "order_processing.py").write_text(source + f"\nDEPLOY_ROUND = {index}\n")
                began = time.perf_counter()
                deployed = subprocess.run(
                    [*PERDURE, "deploy", str(app / "order_processing.py"), "--endpoint", endpoint],
                    cwd=base, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                results["deploy"].append(time.perf_counter() - began)
                if deployed.returncode != 0:
                    raise RuntimeError(deployed.stderr)
                results["first"].append(until_waiting(http, "process_order"))
                results["warm"].append(until_waiting(http, "process_order"))
        return results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(results: dict[str, list[float]], rounds: int) -> str:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"

    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()} with `python benchmarks/deploys.py --rounds {rounds}` "
        f"(load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores). Medians of {rounds} rounds.",
        "",
        "| What | Time |",
        "| --- | --- |",
        f"| `perdure deploy` of the example app (a new version; the command's wall time) | {ms(results['deploy'])} |",
        f"| First invocation on the new version, on a worker with no copy of the code (invoke → waiting for approval) | {ms(results['first'])} |",
        f"| The next invocation of that version (warm worker process) | {ms(results['warm'])} |",
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path, default=None, help="Markdown file whose deploys block to replace")
    args = parser.parse_args()
    block = report(run(args.rounds), args.rounds)
    sys.stdout.write(block)
    if args.write:
        text = args.write.read_text()
        if START_MARK in text:
            before, rest = text.split(START_MARK, 1)
            text = before + block + rest.split(END_MARK, 1)[1].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n## Deploys\n\n" + block
        args.write.write_text(text)


if __name__ == "__main__":
    main()
