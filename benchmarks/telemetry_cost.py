"""Benchmark: what metrics and traces cost per step, each on and off, in one run.

Times ``seed_flows.steps`` (a loop of ``ctx.step(lambda: 1)``) on SQLite (WAL,
``synchronous=NORMAL``), each mode in a child process of its own (tracing is set up once per
process, from its environment). In-process, with ``perdure.testing.DurableTestRunner`` as
``seed_style.py`` does, where the steps, the service and the recording of spans share one
interpreter:

- ``off``: nothing recorded (``perdure.telemetry.metrics.record`` replaced by a no-op here, as
  Perdure has no switch for it: its metrics are always on);
- ``metrics``: Perdure as it runs by default, metrics on, no OTLP endpoint set;
- ``metrics + tracing``: the same, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set to an OTLP/HTTP
  receiver in this process, which answers every export at once; every step, its checkpoint and
  the invocation become spans, handed in batches to the export process Perdure starts, which
  encodes and exports them with OpenTelemetry's SDK.

And under the runtime with one worker process, as ``perdure serve`` runs a function, timed from
the start to the end of the invocation: ``runtime: metrics`` and ``runtime: metrics + tracing``
(the worker hands its spans to the runtime's process, whose export process encodes and sends
them). There is no ``off`` there: the worker processes set aside their metrics for the server,
which a child of this script cannot switch off.

Modes alternate in rounds (order reversed every other round); reported are the medians over
rounds of each round's µs per step, and each mode against ``off``. With ``--against SRC`` (the
``src`` folder of another checkout, e.g. ``git worktree add /tmp/before main``), each mode also
runs on those sources, right before or after it runs on these, to compare a change on one
machine in one run.

    python benchmarks/telemetry_cost.py [--rounds 6] [--steps 200] [--runs 20] [--against SRC] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sequential_steps import write

START_MARK, END_MARK = "<!-- telemetry-cost:start -->", "<!-- telemetry-cost:end -->"
MODES = ("off", "metrics", "metrics + tracing", "runtime: metrics", "runtime: metrics + tracing")


def child(mode: str, steps: int, runs: int) -> None:
    """Runs in the child: prints the µs per step of each of ``runs`` executions, as JSON."""
    from perdure.telemetry import metrics, tracing

    if mode == "off":
        metrics.record = lambda metric, labels, value=1.0: None  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as folder:
        per_step = (_under_runtime if mode.startswith("runtime") else _in_process)(Path(folder), steps, runs)
    tracing.flush()
    print(json.dumps(per_step))


def _in_process(folder: Path, steps: int, runs: int) -> list[float]:
    import seed_flows

    from perdure.testing import DurableTestRunner, _durable

    per_step = []
    with DurableTestRunner(folder) as runner:
        for number in range(runs + 2):
            arn = runner.local.start(_durable(seed_flows.steps), {"count": steps, "run": number}).arn
            began = time.perf_counter()
            runner.local.run_ready()
            elapsed = time.perf_counter() - began
            if runner.service.get_execution(arn).status.value != "SUCCEEDED":
                raise RuntimeError("the execution did not succeed")
            if number >= 2:  # the first two warm up
                per_step.append(elapsed / steps * 1e6)
    return per_step


def _under_runtime(folder: Path, steps: int, runs: int) -> list[float]:
    """The same function under the runtime with one worker process, timed from start to the end of its invocation."""
    from perdure.protocol.records import Execution, Invocation
    from perdure.runtime.registry import Registry, seed_functions
    from perdure.runtime.runner import Runtime
    from perdure.runtime.workers import WorkerSettings
    from perdure.service.executions import DurableService, StartRequest
    from perdure.store import open_store

    os.environ["PERDURE_SECRET"] = "b" * 64
    url = f"sqlite:///{folder / 'perdure.db'}"
    service = DurableService(open_store(url))
    settings = WorkerSettings(url, service_config=service.config, data_dir=folder)
    runtime = Runtime(service, Registry(seed_functions(Path(__file__).with_name("seed_flows.py"))), settings, workers=1)
    ended: dict[str, Execution | None] = {}
    changed = threading.Condition()

    def finished(invocation: Invocation, execution: Execution | None) -> None:
        with changed:
            ended[invocation.execution_arn] = execution
            changed.notify_all()

    runtime.add_listener(finished)
    runtime.start()
    per_step = []
    try:
        for number in range(runs + 2):
            began = time.perf_counter()
            request = StartRequest("steps", json.dumps({"count": steps, "run": number}))
            arn = service.start_execution(request).execution.arn
            runtime.poke()
            with changed:
                if not changed.wait_for(lambda: arn in ended, timeout=120):
                    raise RuntimeError("the execution did not end within 120 s")
            elapsed = time.perf_counter() - began
            if service.get_execution(arn).status.value != "SUCCEEDED":
                raise RuntimeError("the execution did not succeed")
            if number >= 2:
                per_step.append(elapsed / steps * 1e6)
    finally:
        runtime.stop()
        service.store.close()
    return per_step


class _Receiver(BaseHTTPRequestHandler):
    """Takes every OTLP/HTTP export and answers it with an empty (successful) reply."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_mode(mode: str, steps: int, runs: int, endpoint: str, src: Path | None = None) -> list[float]:
    """Runs ``mode`` in a child; with ``src``, on the Perdure sources there rather than these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if mode.endswith("tracing"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(steps), str(runs)],
        env=env, cwd=Path(__file__).parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{mode}: {done.stderr}")
    return list(json.loads(done.stdout.splitlines()[-1]))


def report(
    args: argparse.Namespace,
    medians: dict[tuple[str, str], float],
    spans_exports: int,
    seconds: float,
    load: tuple[float, float, float],
) -> str:
    against = f" --against {args.against}" if args.against else ""
    lines = [
        START_MARK,
        f"`python benchmarks/telemetry_cost.py --rounds {args.rounds} --steps {args.steps} --runs {args.runs}{against}`, "
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, load {load[0]:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after; {seconds:.0f} s. "
        f"µs per step of a {args.steps}-step seed-style loop in-process (the median over {args.rounds} rounds "
        f"of each round's median over {args.runs} executions); the receiver took {spans_exports} exports."
        + (" Before: the sources given to `--against`; after: these; each mode ran with both in turn." if args.against else ""),
        "",
        "| Mode | Sources | µs per step | vs off (runtime: vs metrics alone) | Target | Result |",
        "|---|---|---:|---:|---|---|",
    ]
    targets = {"metrics": 0.05, "metrics + tracing": 0.20, "runtime: metrics + tracing": 0.20}
    for mode in MODES:
        for sources in _sources(args):
            base = medians[sources, "runtime: metrics" if mode == "runtime: metrics + tracing" else "off"]
            ratio = medians[sources, mode] / base - 1
            target = targets.get(mode)
            verdict = "" if target is None else ("PASS" if ratio < target else "**MISS**")
            lines.append(
                f"| {mode} | {sources} | {medians[sources, mode]:.1f} | {ratio * 100:+.1f} % | "
                f"{'' if target is None else f'< {target * 100:.0f} %'} | {verdict} |"
            )
    lines.append(END_MARK)
    return "\n".join(lines)


def _sources(args: argparse.Namespace) -> dict[str, Path | None]:
    """The sources each mode runs on, by label: these, and those of ``--against`` first if given."""
    return {"before": args.against, "after": None} if args.against else {"this": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", type=Path, default=None, help="Markdown file whose telemetry-cost block to replace")
    parser.add_argument(
        "--against", type=Path, default=None,
        help="Perdure sources (an earlier checkout's src folder) to run each mode on as well, in turn with these",
    )  # fmt: skip
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    began, load = time.monotonic(), os.getloadavg()
    sources = _sources(args)
    rounds: dict[tuple[str, str], list[float]] = {(label, mode): [] for label in sources for mode in MODES}
    try:
        for number in range(args.rounds):
            order = [(label, mode) for mode in MODES for label in sources]
            for label, mode in order if number % 2 == 0 else reversed(order):
                rounds[label, mode].append(statistics.median(run_mode(mode, args.steps, args.runs, endpoint, sources[label])))
                print(f"round {number + 1} {label} {mode}: {rounds[label, mode][-1]:.1f} µs per step", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    if _Receiver.received == 0:
        raise RuntimeError("no spans reached the receiver: tracing was not on")
    medians = {key: statistics.median(times) for key, times in rounds.items()}
    text = report(args, medians, _Receiver.received, time.monotonic() - began, load)
    print(text)
    if args.write:
        write(args.write, text, START_MARK, END_MARK)


if __name__ == "__main__":
    main()
