"""Benchmark: where the time of a synchronous (RequestResponse) Invoke goes, on the embedded SQLite store.

Starts a real ``perdure serve --dev`` (SQLite in a temporary folder, ``--workers 2``) on
127.0.0.1 with a seed-style app of two functions, ``trivial`` (returns its event) and
``ten_steps`` (ten ``ctx.step`` calls of a trivial function), warms it up, then times with one
keep-alive ``httpx.Client``, interleaved, ``--count`` times each per round:

- ``GET /health`` (the HTTP floor: uvicorn, routing, the body limit and dev guard);
- ``POST /2015-03-31/functions/trivial/invocations`` with ``X-Amz-Invocation-Type: RequestResponse``;
- the same for ``ten_steps``.

It also runs both functions in this process with ``perdure.testing``'s runner (``LocalRunner``:
no server, no worker process), timing one whole invocation (lease, journal load, the function,
completion), so that the cost of one step through the store can be told from the server's path.

With ``--source DIR`` the server runs a perdure source tree other than the installed one
(``PYTHONPATH=DIR``, workers included): a copy instrumented to write probe lines. Every line of
the probe log (``--probe``; the server gets its path as ``PERDURE_PROBE_LOG``) is
``EVENT KEY TIME_NS`` with ``time.time_ns()`` (it crosses processes; ``perf_counter`` does not),
``KEY`` the execution's ARN; the client adds ``client_send`` and ``client_recv`` for each
invoke of ``trivial``, and the script prints each stage's median between consecutive events it
finds (see ``STAGES``). Without probe lines it prints the end-to-end figures alone.

    python benchmarks/invoke_path.py [--count 300] [--rounds 3] [--inprocess 300]
    PYTHONPATH=/tmp/copy/src python benchmarks/invoke_path.py --source /tmp/copy/src --probe

Rounds run one after another on one server; each round's p50 and p90 are reported, and their
median over the rounds. The load average is printed with each round: the machine may be shared.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

APP = '''
import perdure as durable


def _one():
    return 1


@durable.function
def trivial(ctx, event):
    return event


@durable.function
def ten_steps(ctx, event):
    for i in range(10):
        ctx.step(_one)
    return event
'''

FUNCTIONS = ("trivial", "ten_steps")

# The path of one trivial invoke, in order: (event that ends the stage, what the stage is).
# A stage is timed from the previous event found for the same execution to this one. An
# instrumented copy emits each event where its name says (perdure.api.lambda_routes.invoke,
# perdure.api.waiting.CompletionWaiter, perdure.runtime.scheduler.Scheduler._loop/_pass,
# perdure.runtime.workers: WorkerPool._place/_ended and _worker_main/_run_job in the worker,
# perdure.sdk.engine.run_seed_invocation), as ``EVENT ARN time.time_ns()`` appended to
# ``$PERDURE_PROBE_LOG``; the scheduler's events, emitted once the lease returned the ARN, carry
# the times it noted during its pass. Events a copy does not emit are skipped.
STAGES: list[tuple[str, str]] = [
    ("client_send", "client: request sent"),
    ("api_enter", "HTTP in: uvicorn, middleware, routing to LambdaRoutes.invoke"),
    ("start_thread", "invoke: parse, validate payload, hop to the threadpool"),
    ("start_tx_done", "start_execution: its write transaction (commit included)"),
    ("poked", "back on the event loop; waiter.started() pokes the scheduler"),
    ("sched_wake", "scheduler thread wakes from its Event"),
    ("sched_nextwakeup_done", "scheduler: _next_wakeup read (free_slots + next_wakeup query)"),
    ("sched_timers_done", "scheduler: fire_due_timers (a read: none due)"),
    ("sched_lease_done", "scheduler: lease write transaction"),
    ("pool_sending", "pool.submit/_place: placed, about to send"),
    ("worker_recv", "pipe: _Run pickled, sent, the worker process receives it"),
    ("worker_thread", "worker: ThreadPoolExecutor hands the job to a thread"),
    ("worker_captured", "worker: handler lookup, log spool opened, capture_logs entered"),
    ("worker_journal_start", "worker: run_invocation dispatches to the seed engine"),
    ("worker_load_done", "worker: Journal.load (latest_operation + get_state reads)"),
    ("worker_fn_done", "worker: the function runs (generator, JSON result), capture_logs exits"),
    ("worker_logs_done", "worker: keep_logs"),
    ("worker_complete_done", "worker: complete_invocation write transaction"),
    ("worker_unlinked", "worker: the log spool file unlinked"),
    ("worker_sending", "worker: _run_job returns to the thread's run()"),
    ("parent_recv", "pipe: _Ended pickled, sent, parent's reader thread receives it"),
    ("notified", "parent: _ended bookkeeping, listeners (waiter.notify)"),
    ("loop_set", "event loop runs call_soon_threadsafe(_set)"),
    ("waiter_woke", "waiter coroutine resumes after event.wait()"),
    ("wait_read_thread", "waiter: hop to the threadpool for its read"),
    ("wait_read_done", "waiter: get_execution again (read + hop back, SUCCEEDED)"),
    ("api_reply", "invoke: _sync_reply built, returned to the router"),
    ("client_recv", "HTTP out: response written, client receives it"),
]


# Events beside the path, timed from another event: (event, from event, what).
PARALLEL: list[tuple[str, str, str]] = [
    ("wait_read1_thread", "poked", "waiter: hop to the threadpool for its first read"),
    ("wait_read1_done", "poked", "waiter: first get_execution done (beside the scheduler and worker)"),
    ("wait_read1_done", "worker_complete_done", "first read ends after the execution completed (+: it gated the reply)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    """``perdure serve --dev --workers 2`` on a free loopback port, over SQLite in ``folder``."""

    def __init__(self, folder: Path, source: str | None, probe_log: Path | None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = folder / "app.py"
        app.write_text(APP)
        env = dict(os.environ)
        if source:
            env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
        if probe_log:
            env["PERDURE_PROBE_LOG"] = str(probe_log)
        targets = [f"{name}={app}:{name}" for name in FUNCTIONS]
        command = [
            sys.executable, "-m", "perdure", "serve", *targets, "--dev", "--workers", "2",
            "--db", f"sqlite:///{folder / 'perdure.db'}", "--host", "127.0.0.1", "--port", str(self.port),
        ]
        self.log = open(folder / "server.log", "wb")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(command, cwd=folder, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"perdure serve exited: {(folder / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("perdure serve did not answer /health within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def invoke(client: httpx.Client, name: str, number: int, marks: list[str] | None) -> float:
    """One RequestResponse invoke; returns its seconds, and notes client_send/client_recv in ``marks``."""
    body = json.dumps({"n": number})
    headers = {"X-Amz-Invocation-Type": "RequestResponse", "Content-Type": "application/json"}
    sent_ns = time.time_ns()
    began = time.perf_counter()
    reply = client.post(f"/2015-03-31/functions/{name}/invocations", content=body, headers=headers)
    elapsed = time.perf_counter() - began
    received_ns = time.time_ns()
    if reply.status_code != 200 or reply.json() != {"n": number}:
        raise RuntimeError(f"{name}: {reply.status_code} {reply.text}")
    if marks is not None:
        arn = reply.headers["x-amz-durable-execution-arn"]
        marks += [f"client_send {arn} {sent_ns}", f"client_recv {arn} {received_ns}"]
    return elapsed


def serve_round(client: httpx.Client, count: int, marks: list[str] | None) -> dict[str, list[float]]:
    times: dict[str, list[float]] = collections.defaultdict(list)
    for number in range(count):
        began = time.perf_counter()
        if client.get("/health").status_code != 200:
            raise RuntimeError("/health failed")
        times["health"].append(time.perf_counter() - began)
        times["trivial"].append(invoke(client, "trivial", number, marks))
        times["ten_steps"].append(invoke(client, "ten_steps", number, None))
    return times


def inprocess_round(folder: Path, count: int) -> dict[str, list[float]]:
    """Both functions run by ``perdure.testing``'s LocalRunner in this process; times of ``run_ready()``."""
    from perdure.runtime.registry import import_file
    from perdure.testing import DurableTestRunner, _durable

    app = import_file("invoke_path_app", folder / "app.py")  # written by Server

    times: dict[str, list[float]] = collections.defaultdict(list)
    with DurableTestRunner(folder / "inprocess") as runner:
        local = runner.local
        for number in range(count + 20):
            for name in FUNCTIONS:
                arn = local.start(_durable(getattr(app, name)), {"n": number}).arn
                began = time.perf_counter()
                ran = local.run_ready()
                elapsed = time.perf_counter() - began
                if ran != 1 or runner.service.get_execution(arn).status.value != "SUCCEEDED":
                    raise RuntimeError(f"in-process {name} did not succeed")
                if number >= 20:  # the first ones warm up
                    times[name].append(elapsed)
    return times


def stage_table(lines: list[str]) -> str:
    """Each stage's median (ms) over the executions for which both of its ends were found."""
    events: dict[str, dict[str, list[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            events[parts[1]][parts[0]].append(int(parts[2]))
    complete = [e for e in events.values() if "client_send" in e and "client_recv" in e]
    if not complete:
        return "No probe lines for the trivial invokes (run with --source of an instrumented copy and --probe)."
    durations: dict[str, list[float]] = collections.defaultdict(list)
    totals = []
    for per in complete:
        previous: int | None = None
        for name, _ in STAGES:
            if name not in per:
                continue
            # A waiter may read more than once (a 0.5 s poll); the read that returned counts.
            stamp = per[name][-1] if name in ("wait_read_thread", "wait_read_done") else per[name][0]
            if previous is not None:
                durations[name].append((stamp - previous) / 1e6)
            previous = stamp
        totals.append((per["client_recv"][0] - per["client_send"][0]) / 1e6)
        for name, since, _ in PARALLEL:
            if name in per and since in per:
                durations[f"{since}>{name}"].append((per[name][0] - per[since][0]) / 1e6)
        durations["polls"].append(len(per.get("waiter_timeout", [])))
    rows = [f"Trivial invokes with probe lines: {len(complete)}; end to end median {statistics.median(totals):.2f} ms", ""]
    rows += ["| Stage (ends at event) | What | median ms | p90 ms | n |", "|---|---|---:|---:|---:|"]
    for name, what in STAGES[1:]:
        values = durations.get(name)
        if values:
            rows.append(f"| {name} | {what} | {statistics.median(values):.3f} | {percentile(values, 0.9):.3f} | {len(values)} |")
    rows += ["", "| Beside the path | What | median ms | p90 ms | n |", "|---|---|---:|---:|---:|"]
    for name, since, what in PARALLEL:
        values = durations.get(f"{since}>{name}")
        if values:
            rows.append(f"| {since} → {name} | {what} | {statistics.median(values):.3f} | {percentile(values, 0.9):.3f} | {len(values)} |")
    gated = [d for d in durations.get("worker_complete_done>wait_read1_done", []) if d > 0]
    rows.append(f"\nInvokes whose first waiter read ended after the execution completed: {len(gated)} of {len(complete)}"
                + (f" (by {statistics.median(gated):.3f} ms median)" if gated else ""))
    polled = sum(1 for n in durations["polls"] if n)
    rows.append(f"\nInvokes whose waiter timed out a 0.5 s poll before the end: {polled} of {len(complete)}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="invokes of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--inprocess", type=int, default=300, help="in-process runs of each function (0: none)")
    parser.add_argument("--source", help="a perdure source folder for the server (PYTHONPATH)")
    parser.add_argument("--probe", action="store_true", help="collect and break down probe lines")
    args = parser.parse_args()

    print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load {load()}")
    with tempfile.TemporaryDirectory(prefix="perdure-invoke-") as tmp:
        folder = Path(tmp)
        probe_log = folder / "probe.log" if args.probe else None
        server = Server(folder, args.source, probe_log)
        rounds: list[dict[str, list[float]]] = []
        marks: list[str] = []
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                serve_round(client, args.warmup, None)
                if probe_log is not None:
                    probe_log.write_text("")  # the warm-up's lines are not counted
                for number in range(args.rounds):
                    times = serve_round(client, args.count, marks if args.probe else None)
                    rounds.append(times)
                    print(
                        f"round {number + 1}: load {load()}; "
                        + "; ".join(
                            f"{k} p50 {statistics.median(v) * 1e3:.2f} ms p90 {percentile(v, 0.9) * 1e3:.2f} ms"
                            for k, v in times.items()
                        )
                    )
        finally:
            server.stop()
        print("\nServer, median over rounds of each round's percentiles:")
        print("| Request | p50 | p90 |\n|---|---:|---:|")
        for kind in ("health", "trivial", "ten_steps"):
            p50 = statistics.median(statistics.median(r[kind]) for r in rounds) * 1e3
            p90 = statistics.median(percentile(r[kind], 0.9) for r in rounds) * 1e3
            print(f"| {kind} | {p50:.2f} ms | {p90:.2f} ms |")
        trivial = statistics.median(statistics.median(r["trivial"]) for r in rounds)
        ten = statistics.median(statistics.median(r["ten_steps"]) for r in rounds)
        print(f"Server: one step adds {(ten - trivial) / 10 * 1e3:.3f} ms (ten_steps - trivial) / 10")

        if args.inprocess:
            local = inprocess_round(folder, args.inprocess)
            lt, l10 = statistics.median(local["trivial"]), statistics.median(local["ten_steps"])
            print(f"\nIn process (LocalRunner.run_ready, {args.inprocess} each, load {load()}):")
            print(f"| trivial | {lt * 1e3:.3f} ms | p90 {percentile(local['trivial'], 0.9) * 1e3:.3f} ms |")
            print(f"| ten_steps | {l10 * 1e3:.3f} ms | p90 {percentile(local['ten_steps'], 0.9) * 1e3:.3f} ms |")
            print(f"In process: one step adds {(l10 - lt) / 10 * 1e6:.0f} µs")

        if probe_log is not None:
            lines = probe_log.read_text().splitlines() + marks
            print()
            print(stage_table(lines))


if __name__ == "__main__":
    main()
