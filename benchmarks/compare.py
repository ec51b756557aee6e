"""Perdure side by side with DBOS Transact and AWS's local runner, on the same machine, in one run.

    benchmarks/compare [--quick] [--write docs/benchmarks.md] [--only a,g,c,d,f,e,b,h,p]

(``benchmarks/compare`` is ``python benchmarks/compare.py``.) The rivals are not Perdure's
dependencies: the first run makes ``.venv-compare/`` beside ``.venv/``, installs the pinned
``benchmarks/requirements-compare.txt`` and Perdure (editable) into it, and every run re-executes
itself there.

Systems: Perdure with AWS-SDK handlers and with seed-style functions, each under the runtime
(two worker processes, as ``perdure serve`` has), and seed style in-process (``LocalRunner``)
with ``synchronous=NORMAL`` and ``FULL``; DBOS Transact on its default SQLite set-up and with
WAL + ``synchronous=NORMAL``; ``aws-durable-execution-sdk-python-testing``'s in-process runner.
Every measurement runs in a fresh child process per system (DBOS is one instance per process),
on a fresh database, and the systems alternate in rounds (order reversed every other round), so
machine noise hits them alike. The raw commit floor (one small SQLite WAL transaction,
``NORMAL`` and ``FULL``) is timed in every round of (a).

Workloads: (a) 10-step workflows one at a time; (b) 1,000 10-step workflows started at once;
(c) callback completed → handler running again; (d) server SIGKILLed → started again →
execution running again; (e) 100,000 suspended executions: server memory and listing time;
(f) 10,000 timers due in the same second: lateness; (h) 100, 1,000 and 5,000 executions of one
step that sleeps 1 s (an LLM or HTTP call's stand-in) started at once: wall time and peak memory
(``compare_io.py``, ``rivals/dbos_io.py``); (p) (a) and (b) again with Perdure and DBOS on one
PostgreSQL server (``compare_pg.py``; needs PostgreSQL installed). ``--quick`` shrinks every size.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import compare_pg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = ROOT / ".venv-compare"
REQUIREMENTS = HERE / "requirements-compare.txt"
START_MARK, END_MARK = "<!-- compare:start -->", "<!-- compare:end -->"
CHILD_TIMEOUT = 1800.0


def ensure_venv() -> None:
    """Re-executes this script in ``.venv-compare``, making it (or bringing it up to date) first."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # Perdure's own dependencies change too: reinstall when either file does.
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / "requirements.sha256"
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS), "-e", str(ROOT)], check=True
        )
        stamp.write_text(wanted + "\n")
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def child(target: str, kwargs_json: str, out: str) -> None:
    """Runs one workload function (``module:function``) with keyword arguments; writes its JSON result."""
    sys.path.insert(0, str(HERE))
    import importlib

    module_name, function = target.split(":")
    result = getattr(importlib.import_module(module_name), function)(**json.loads(kwargs_json))
    Path(out).write_text(json.dumps(result))


class Runner:
    """Runs workload functions in child processes, each on a fresh folder under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.count = 0

    def __call__(self, target: str, folder: bool = True, source: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Runs ``target``; with ``source``, the Perdure whose ``src`` folder that is, rather than this one."""
        self.count += 1
        work = self.base / f"run-{self.count}"
        work.mkdir()
        if folder:
            kwargs["folder"] = str(work)
        out = work / "result.json"
        log = work / "child.log"
        command = [sys.executable, __file__, "--child", target, json.dumps(kwargs), str(out)]
        with log.open("wb") as stream:
            env = {**os.environ, "PYTHONPATH": source} if source else None
            done = subprocess.run(command, stdout=stream, stderr=stream, timeout=CHILD_TIMEOUT, check=False, env=env)
        if done.returncode != 0 or not out.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{target} {kwargs} failed with exit status {done.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        shutil.rmtree(work, ignore_errors=True)
        return result


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seq_workflows: int  # per system, over all rounds (the slow testing runner gets fewer)
    seq_workflows_slow: int
    callbacks: int  # per system, over all rounds
    callbacks_slow: int  # for systems that poll once a second
    crashes: int
    timers: int
    timers_dbos: int
    suspended: int
    concurrent: int
    concurrent_slow: int
    io: tuple[int, ...]  # (h): executions started at once, one run each


FULL = Sizes(3, 240, 30, 150, 6, 3, 10_000, 500, 100_000, 1_000, 200, (100, 1_000, 5_000))
QUICK = Sizes(2, 40, 10, 20, 2, 1, 300, 100, 2_000, 100, 20, (100, 1_000))
IO_SECONDS = 1.0  # what (h)'s one step sleeps: the ideal wall time
IO_CAP = 120.0  # (h): a run not ended this long after its first start is reported as not finished
STEPS = 10
WARMUP = 3


@dataclass(frozen=True)
class System:
    key: str
    label: str
    target: str  # module:function of its (a) workload
    kwargs: dict[str, Any]
    folder: bool = True
    slow: bool = False


SEQ_SYSTEMS = [
    System("perdure-aws", "Perdure, AWS-SDK handler (runtime, 2 workers)", "perdure_bench:seq", {"style": "aws"}),
    System("perdure-seed", "Perdure, seed style (runtime, 2 workers)", "perdure_bench:seq", {"style": "seed"}),
    System("perdure-seed-local", "Perdure, seed style in-process", "perdure_bench:seq_seed_inprocess", {"synchronous": "NORMAL"}),
    System("perdure-seed-local-full", "Perdure, seed style in-process, synchronous=FULL", "perdure_bench:seq_seed_inprocess", {"synchronous": "FULL"}),
    System("dbos-default", "DBOS Transact, default SQLite set-up", "rivals.dbos_bench:seq", {"wal": False}),
    System("dbos-wal", "DBOS Transact, WAL + synchronous=NORMAL", "rivals.dbos_bench:seq", {"wal": True}),
    System("aws-testing", "AWS testing runner (in-process, in memory)", "rivals.aws_testing:seq", {}, folder=False, slow=True),
]


def rounds_of(total: int, rounds: int) -> list[int]:
    share, extra = divmod(total, rounds)
    return [share + (r < extra) for r in range(rounds)]


def alternate(items: list[Any], number: int) -> list[Any]:
    return items if number % 2 == 0 else items[::-1]


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Results:
    """Everything measured, by workload and system key."""

    seq: dict[str, list[float]] = field(default_factory=dict)
    durability: dict[str, str] = field(default_factory=dict)
    floors: dict[str, list[float]] = field(default_factory=lambda: {"NORMAL": [], "FULL": []})
    callback: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    crash: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    suspended: dict[str, dict[str, Any]] = field(default_factory=dict)
    concurrent: dict[str, dict[str, Any]] = field(default_factory=dict)
    io: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def say(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def attempt(results: Results, what: str, action: Callable[[], None]) -> None:
    """Runs one measurement; a failure is reported in the table's notes instead of ending the run."""
    try:
        action()
    except Exception as error:  # a rival's failure must not lose the other figures
        say(f"{what} failed: {error}")
        lines = [line for line in str(error).splitlines() if line.strip()]
        results.notes.append(f"{what} failed: {lines[-1] if lines else type(error).__name__}")


def run_seq(run: Runner, sizes: Sizes, results: Results) -> None:
    from sequential_steps import commit_floor

    plans = {s.key: rounds_of(s.slow and sizes.seq_workflows_slow or sizes.seq_workflows, sizes.rounds) for s in SEQ_SYSTEMS}
    for number in range(sizes.rounds):
        for system in alternate(SEQ_SYSTEMS, number):
            say(f"(a) round {number + 1}/{sizes.rounds}: {system.label}")

            def one(system: System = system) -> None:
                got = run(system.target, folder=system.folder, workflows=plans[system.key][number],
                          steps=STEPS, warmup=WARMUP, **system.kwargs)
                results.seq.setdefault(system.key, []).extend(got["times"])
                results.durability[system.key] = got["durability"]

            attempt(results, f"(a) {system.label}", one)
        floor_dir = Path(tempfile.mkdtemp(prefix="floor-", dir=run.base))
        for mode in ("NORMAL", "FULL"):
            results.floors[mode].append(commit_floor(floor_dir, mode))
        shutil.rmtree(floor_dir, ignore_errors=True)


CALLBACK_SYSTEMS = [
    ("perdure-aws", "perdure_bench:callback", {"style": "aws"}, True),
    ("perdure-seed", "perdure_bench:callback", {"style": "seed"}, True),
    ("dbos-default", "rivals.dbos_bench:callback", {"wal": False}, True),
    ("dbos-wal", "rivals.dbos_bench:callback", {"wal": True}, True),
    ("aws-testing", "rivals.aws_testing:callback", {}, False),
]
SLOW_CALLBACKS = {"dbos-default", "dbos-wal"}  # polled once a second on SQLite


def run_callbacks(run: Runner, sizes: Sizes, results: Results) -> None:
    for number in range(sizes.rounds):
        for key, target, kwargs, folder in alternate(CALLBACK_SYSTEMS, number):
            total = sizes.callbacks_slow if key in SLOW_CALLBACKS else sizes.callbacks
            say(f"(c) round {number + 1}/{sizes.rounds}: {key}")

            def one(key: str = key, target: str = target, kwargs: dict[str, Any] = kwargs, folder: bool = folder,
                    count: int = rounds_of(total, sizes.rounds)[number]) -> None:
                got = run(target, folder=folder, count=count, warmup=1, **kwargs)
                into = results.callback.setdefault(key, {"resumed": [], "ended": []})
                into["resumed"] += got["resumed"]
                into["ended"] += got["ended"]

            attempt(results, f"(c) {key}", one)


def run_crashes(run: Runner, sizes: Sizes, results: Results) -> None:
    systems = [
        ("perdure-aws", "perdure_bench:crash", {}),
        ("dbos-default", "rivals.dbos_bench:crash", {"wal": False}),
        ("dbos-wal", "rivals.dbos_bench:crash", {"wal": True}),
    ]
    for number in range(sizes.crashes):
        for key, target, kwargs in alternate(systems, number):
            say(f"(d) round {number + 1}/{sizes.crashes}: {key}")
            attempt(results, f"(d) {key}",
                    lambda key=key, target=target, kwargs=kwargs: results.crash.setdefault(key, []).append(run(target, **kwargs)))


def run_timers(run: Runner, sizes: Sizes, results: Results) -> None:
    say(f"(f) Perdure: {sizes.timers} timers")
    attempt(results, "(f) perdure-aws", lambda: results.timers.__setitem__(
        "perdure-aws", run("perdure_bench:timers", style="aws", count=sizes.timers)))
    say(f"(f) DBOS: {sizes.timers_dbos} sleeping workflows")
    attempt(results, "(f) dbos-default", lambda: results.timers.__setitem__(
        "dbos-default", run("rivals.dbos_bench:timers", wal=False, count=sizes.timers_dbos, lead=10.0 + sizes.timers_dbos * 0.04)))


def run_suspended(run: Runner, sizes: Sizes, results: Results) -> None:
    say(f"(e) Perdure: 10 and {sizes.suspended} suspended executions")
    attempt(results, "(e) perdure", lambda: results.suspended.__setitem__(
        "perdure", run("perdure_bench:suspended", few=10, many=sizes.suspended, settle=3.0)))


CONCURRENT_SYSTEMS = [
    ("perdure-aws", "perdure_bench:concurrent", {"style": "aws"}, True, False),
    ("perdure-seed", "perdure_bench:concurrent", {"style": "seed"}, True, False),
    ("dbos-default", "rivals.dbos_bench:concurrent", {"wal": False}, True, False),
    ("dbos-wal", "rivals.dbos_bench:concurrent", {"wal": True}, True, False),
    ("aws-testing", "rivals.aws_testing:concurrent", {}, False, True),
]


def run_concurrent(run: Runner, sizes: Sizes, results: Results) -> None:
    for key, target, kwargs, folder, slow in CONCURRENT_SYSTEMS:
        count = sizes.concurrent_slow if slow else sizes.concurrent
        say(f"(b) {key}: {count} workflows at once")
        attempt(results, f"(b) {key}", lambda key=key, target=target, kwargs=kwargs, folder=folder, count=count:
                results.concurrent.__setitem__(key, run(target, folder=folder, workflows=count, steps=STEPS, **kwargs)))


IO_SYSTEMS = [
    ("perdure-seed", "compare_io:perdure_io", {}),
    ("dbos-wal", "rivals.dbos_io:io", {"wal": True}),
]


def run_io(run: Runner, sizes: Sizes, results: Results) -> None:
    for number, count in enumerate(sizes.io):
        for key, target, kwargs in alternate(IO_SYSTEMS, number):
            say(f"(h) {key}: {count} executions of a 1 s step at once (cap {IO_CAP:.0f} s)")

            def one(key: str = key, target: str = target, kwargs: dict[str, Any] = kwargs, count: int = count) -> None:
                got = run(target, executions=count, seconds=IO_SECONDS, cap=IO_CAP, **kwargs)
                results.io.setdefault(key, {})[count] = got
                if "shutdown_error" in got:
                    results.notes.append(f"(h) {key}, {count:,} executions: measured, then stopping the runtime raised "
                                         f"{got['shutdown_error']}")

            attempt(results, f"(h) {key}, {count:,} executions", one)


# ---------------------------------------------------------------- the report

LABELS = {s.key: s.label for s in SEQ_SYSTEMS}
PERDURE_SEQ = ["perdure-aws", "perdure-seed", "perdure-seed-local", "perdure-seed-local-full"]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


@dataclass(frozen=True)
class SeqSummary:
    workflows: int
    median: float
    p90: float
    steps_per_s: float
    us_per_step: float


def seq_summary(times: list[float]) -> SeqSummary:
    median = statistics.median(times)
    return SeqSummary(len(times), median, pct(times, 0.9), len(times) * STEPS / sum(times), median / STEPS * 1e6)


@dataclass
class Targets:
    rows: list[str] = field(default_factory=list)

    def add(self, name: str, figure: str, passed: bool | None, ratio: str) -> None:
        verdict = "info" if passed is None else ("PASS" if passed else "**MISS**")
        self.rows.append(f"| {name} | {figure} | {verdict} | {ratio} |")


def report_seq(r: Results, lines: list[str], targets: Targets) -> dict[str, SeqSummary]:
    sums = {key: seq_summary(times) for key, times in r.seq.items() if times}
    floors = {mode: statistics.median(v) for mode, v in r.floors.items() if v}
    lines += [
        "### (a) 10-step workflows, one at a time",
        "",
        "A workflow's time runs from its start call to its end as the system reports it (Perdure's runtime: "
        "the worker's invocation ended; DBOS: the workflow call returned; the testing runner: `run()` returned). "
        "Steps/s = workflows × 10 / the sum of their times; µs per step = median workflow / 10.",
        "",
        "| System | Durability (journal, synchronous) | Workflows | Median workflow | p90 workflow | Steps/s "
        "| µs per step | × DBOS default | × DBOS WAL |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base, wal = sums.get("dbos-default"), sums.get("dbos-wal")
    for key in LABELS:
        s = sums.get(key)
        if s is None:
            lines.append(f"| {LABELS[key]} | – | – | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {LABELS[key]} | {r.durability.get(key, '?')} | {s.workflows} | {ms(s.median)} | {ms(s.p90)} "
            f"| {s.steps_per_s:,.0f} | {s.us_per_step:,.0f} "
            f"| {f'{s.steps_per_s / base.steps_per_s:.2f}×' if base else '–'} "
            f"| {f'{s.steps_per_s / wal.steps_per_s:.2f}×' if wal else '–'} |"
        )
    lines += [
        "",
        "| Floor: one SQLite WAL write transaction (BEGIN IMMEDIATE, small INSERT, COMMIT), median of 2000, "
        "median over the rounds | |",
        "|---|---:|",
        *(f"| WAL, synchronous={mode} | {us:.1f} µs |" for mode, us in floors.items()),
        "",
    ]
    for key in ("perdure-aws", "perdure-seed", "perdure-seed-local", "perdure-seed-local-full"):
        s = sums.get(key)
        if s is None:
            continue
        for rival, need in (("dbos-default", 10.0), ("dbos-wal", 3.0)):
            other = sums.get(rival)
            if other is not None:
                ratio = s.steps_per_s / other.steps_per_s
                targets.add(f"(a) {LABELS[key]}: ≥{need:.0f}× {LABELS[rival]} in steps/s",
                            f"{s.steps_per_s:,.0f} vs {other.steps_per_s:,.0f} steps/s", ratio >= need, f"{ratio:.2f}×")
        mode = "FULL" if "synchronous=FULL" in r.durability.get(key, "") else "NORMAL"
        if mode in floors:
            ratio = s.us_per_step / floors[mode]
            targets.add(f"(a) {LABELS[key]}: within 4× of the commit floor ({mode})",
                        f"{s.us_per_step:,.0f} µs per step vs {floors[mode]:.1f} µs", ratio <= 4.0, f"{ratio:.1f}×")
    aws, testing, base = sums.get("perdure-aws"), sums.get("aws-testing"), sums.get("dbos-default")
    if aws and testing:
        ratio = aws.steps_per_s / testing.steps_per_s
        targets.add("(g) AWS-SDK handler on Perdure: ≥5× the testing runner on (a)",
                    f"{aws.steps_per_s:,.0f} vs {testing.steps_per_s:,.0f} steps/s", ratio >= 5.0, f"{ratio:.2f}×")
    if aws and base:
        ratio = aws.steps_per_s / base.steps_per_s
        targets.add("(g) AWS-SDK handler on Perdure: no slower than DBOS default on (a)",
                    f"{aws.steps_per_s:,.0f} vs {base.steps_per_s:,.0f} steps/s", ratio >= 1.0, f"{ratio:.2f}×")
    return sums


def report_concurrent(r: Results, sums: dict[str, SeqSummary], lines: list[str], targets: Targets) -> None:
    lines += [
        "### (b) 10-step workflows started at once",
        "",
        "All started as fast as the caller can (Perdure: `start_execution`; DBOS: `DBOS.start_workflow`, a thread "
        "each; the testing runner: `run_async`), timed from the first start to the last end.",
        "",
        "| System | Workflows | First start → last end | Steps/s | × its own (a) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, *_ in CONCURRENT_SYSTEMS:
        got = r.concurrent.get(key)
        if got is None:
            lines.append(f"| {LABELS[key]} | – | – | – | – |")
            continue
        rate = got["workflows"] * got["steps"] / got["seconds"]
        alone = sums.get(key)
        ratio = rate / alone.steps_per_s if alone else float("nan")
        lines.append(f"| {LABELS[key]} | {got['workflows']:,} | {ms(got['seconds'])} | {rate:,.0f} | {ratio:.2f}× |")
        if key.startswith("perdure"):
            targets.add(f"(b) {LABELS[key]}: ≥3× its (a) steps/s", f"{rate:,.0f} vs {alone.steps_per_s if alone else 0:,.0f} steps/s",
                        ratio >= 3.0, f"{ratio:.2f}×")
    lines.append("")


CALLBACK_HOW = {
    "perdure-aws": "`service.succeed_callback` + runtime poke (what the API's callback route does)",
    "perdure-seed": "`service.succeed_callback` + runtime poke (what the API's callback route does)",
    "dbos-default": "`DBOS.send` → `DBOS.recv` (its closest equivalent)",
    "dbos-wal": "`DBOS.send` → `DBOS.recv` (its closest equivalent)",
    "aws-testing": "`send_callback_success`",
}
CALLBACK_LABELS = {**LABELS, "perdure-seed": "Perdure, seed style (runtime, 2 workers)"}


def report_callbacks(r: Results, lines: list[str], targets: Targets) -> None:
    lines += [
        "### (c) Callback completed → handler running again",
        "",
        "From the completing call to the handler's next step running (a step that returns `time.time()`; same "
        "machine, so the clocks agree), and to the end of that invocation as the caller sees it. One execution at a time.",
        "",
        "| System | Completed by | Callbacks | p50 → handler running | p99 → handler running | p50 → invocation end | p99 → invocation end |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, *_ in CALLBACK_SYSTEMS:
        got = r.callback.get(key)
        if not got or not got["resumed"]:
            lines.append(f"| {CALLBACK_LABELS[key]} | {CALLBACK_HOW[key]} | – | – | – | – | – |")
            continue
        res, end = got["resumed"], got["ended"]
        lines.append(
            f"| {CALLBACK_LABELS[key]} | {CALLBACK_HOW[key]} | {len(res)} | {ms(pct(res, .5))} | {ms(pct(res, .99))} "
            f"| {ms(pct(end, .5))} | {ms(pct(end, .99))} |"
        )
        if key.startswith("perdure"):
            targets.add(f"(c) {CALLBACK_LABELS[key]}: p50 < 5 ms", ms(pct(res, .5)), pct(res, .5) < 0.005, f"{pct(res, .5) / 0.005:.2f}× the bound")
            targets.add(f"(c) {CALLBACK_LABELS[key]}: p99 < 50 ms", ms(pct(res, .99)), pct(res, .99) < 0.050, f"{pct(res, .99) / 0.050:.2f}× the bound")
    lines.append("")


def since_ready(seconds: float) -> str:
    """A time from readiness; at or below zero the execution was running again before the process said it was ready."""
    return ms(seconds) if seconds > 0 else f"{ms(seconds)} (running before ready)"


def report_crashes(r: Results, lines: list[str], targets: Targets) -> None:
    lines += [
        "### (d) Killed (SIGKILL) → started again → execution running again",
        "",
        "A handler (a workflow) is inside a step that appends `time.time()` to a file and then hangs; the process is "
        "SIGKILLed and started again. Measured to the step's second start, from the new process being ready (Perdure: "
        "`perdure serve` first answering `GET /health`, polled every 2 ms; DBOS: `DBOS.launch()` returned, which "
        "starts its recovery of pending workflows) and from its spawn. The testing runner keeps nothing across "
        "a process: n/a.",
        "",
        "| System | Rounds | Median from ready | Worst from ready | Median from spawn | Median spawn → ready |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {"perdure-aws": "Perdure (`perdure serve`, AWS-SDK handler)", **LABELS}
    for key in ("perdure-aws", "dbos-default", "dbos-wal"):
        got = r.crash.get(key)
        if not got:
            lines.append(f"| {names[key]} | – | – | – | – | – |")
            continue
        ready = [g["from_ready"] for g in got]
        spawn = [g["from_spawn"] for g in got]
        startup = [g["from_spawn"] - g["from_ready"] for g in got]
        lines.append(f"| {names[key]} | {len(got)} | {since_ready(statistics.median(ready))} | {since_ready(max(ready))} "
                     f"| {ms(statistics.median(spawn))} | {ms(statistics.median(startup))} |")
        if key == "perdure-aws":
            worst = max(ready)
            targets.add("(d) Perdure: running again ≤ 200 ms after the new process is ready (worst round)", since_ready(worst),
                        worst <= 0.2, f"{worst / 0.2:.2f}× the bound")
    lines += ["", "The testing runner: n/a (its store is in memory; nothing survives its process).", ""]


def _tenths(tenths: list[float]) -> str:
    return f"{tenths[0] * 1e3:.1f} / {tenths[-1] * 1e3:.1f}" if tenths else "–"


def report_suspended(r: Results, lines: list[str], targets: Targets) -> None:
    got = r.suspended.get("perdure")
    lines += [
        "### (e) Suspended executions: server memory and listing",
        "",
        "Seed-style executions each waiting for a callback that never comes (made in-process on the database "
        "first), then `perdure serve` (2 workers) started on it. RSS is the server's plus its workers' (none "
        "is started until there is work), 3 s after `/health` first answers and again after the listing. Listing "
        "= every page (1,000 a page) of `ListDurableExecutionsByFunction` with `Statuses=RUNNING`, over HTTP.",
        "",
    ]
    if not got:
        lines += ["Not measured in this run (see the notes).", ""]
        return
    lines += [
        "| Suspended executions | Made in (ms each: first / last tenth) | RSS at start | Time to list all | RSS after listing |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {got[f'{p}_count']:,} | {got[f'{p}_setup_seconds']:.1f} s ({_tenths(got[f'{p}_tenths'])}) "
            f"| {got[f'{p}_rss_kib'] / 1024:.1f} MiB "
            f"| {ms(got[f'{p}_list_seconds'])} | {got[f'{p}_rss_after_list_kib'] / 1024:.1f} MiB |"
            for p in ("few", "many")
        ),
        "",
        "DBOS: n/a here: a DBOS workflow waiting in `DBOS.recv` is a thread blocked in the application process "
        "(recovered as one at every launch), so 100,000 of them are 100,000 threads; its figure would be the cost "
        "of threads, not of its store. The testing runner keeps executions in memory by design.",
        "",
    ]
    ratio = got["many_rss_kib"] / got["few_rss_kib"]
    targets.add(f"(e) Perdure: server memory flat from {got['few_count']:,} to {got['many_count']:,} suspended (≤ 10 % growth, at start)",
                f"{got['few_rss_kib'] / 1024:.1f} → {got['many_rss_kib'] / 1024:.1f} MiB", ratio <= 1.10, f"{ratio:.2f}×")
    ratio = got["many_rss_after_list_kib"] / got["few_rss_after_list_kib"]
    targets.add("(e) Perdure: the same after listing them all (memory the listing itself left; not the target)",
                f"{got['few_rss_after_list_kib'] / 1024:.1f} → {got['many_rss_after_list_kib'] / 1024:.1f} MiB", None, f"{ratio:.2f}×")


def report_timers(r: Results, lines: list[str], targets: Targets) -> None:
    lines += [
        "### (f) Timers falling due together",
        "",
        "Perdure: executions of an AWS-SDK handler started under the runtime (2 workers), each waiting until the "
        "same moment; Lambda's waits are whole seconds, so their scheduled ends fall within one second (spread "
        "below). Lateness to the timer firing in the store = its `WaitSucceeded` event time − its "
        "`ScheduledEndTimestamp`; to the handler running again = the stamp of the step after the wait − the same. "
        "DBOS: workflows in `DBOS.sleep` until one shared moment (it takes fractions of a second), each a thread; "
        "lateness of the step after the sleep. The testing runner skips waits (no real clock): n/a.",
        "",
        "| System | Timers | Spread of due times | p50 / p99 / max → fired in the store | p50 / p99 / max → handler running again | Set up in | Margin before due |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    names = {"perdure-aws": "Perdure, AWS-SDK handler (runtime, 2 workers)", "dbos-default": LABELS["dbos-default"]}
    for key in ("perdure-aws", "dbos-default"):
        got = r.timers.get(key)
        if not got:
            lines.append(f"| {names[key]} | – | – | – | – | – | – |")
            continue
        res = got["resumed"]
        fired = got.get("fired")
        fired_text = f"{ms(pct(fired, .5))} / {ms(pct(fired, .99))} / {ms(max(fired))}" if fired else "n/a (not recorded apart)"
        spread = ms(got["scheduled_spread"]) if "scheduled_spread" in got else "0 (one moment)"
        lines.append(
            f"| {names[key]} | {len(res):,} | {spread} | {fired_text} "
            f"| {ms(pct(res, .5))} / {ms(pct(res, .99))} / {ms(max(res))} | {got['setup_seconds']:.1f} s "
            f"| {got['seconds_left_after_setup']:.1f} s |"
        )
        if key == "perdure-aws":
            if fired:
                targets.add(f"(f) Perdure: p99 lateness < 100 ms, {len(fired):,} timers firing in the store", ms(pct(fired, .99)),
                            pct(fired, .99) < 0.1, f"{pct(fired, .99) / 0.1:.2f}× the bound")
            targets.add(f"(f) Perdure: p99 lateness < 100 ms, {len(res):,} handlers running again", ms(pct(res, .99)),
                        pct(res, .99) < 0.1, f"{pct(res, .99) / 0.1:.2f}× the bound")
    lines.append("")


def report_io(r: Results, sizes: Sizes, lines: list[str], targets: Targets) -> None:
    lines += [
        "### (h) Executions of one 1 s step (an LLM or HTTP call's stand-in) started at once",
        "",
        f"Each execution runs one step that sleeps {IO_SECONDS:.0f} s. All started as fast as the caller can (Perdure: "
        "one `Runtime.start_executions` call for all of them (100 to a transaction, each handed to a free worker place "
        "as its transaction commits) of a seed-style function, `@durable.function` + `ctx.step`, under the runtime with 2 worker "
        "processes and their default concurrency; DBOS: `DBOS.start_workflow` of a workflow with one `@DBOS.step`, a "
        "thread each), after a few warm-up runs, timed from the first start to the last end (Perdure: the worker's "
        "invocation ended; DBOS: the workflow's future resolved). × ideal = that time / 1 s. Peak RSS: the highest sum, "
        "sampled every 50 ms from the first start to the last end, of the resident memory of the process running the "
        "system and its children (Perdure: the runtime and its worker processes; DBOS: its one process); before = the "
        "same just before the first start; processes = how many that sum was over at the peak (Perdure's count "
        "includes the resource tracker `multiprocessing` starts beside the workers). A run not ended "
        f"{IO_CAP:.0f} s after its first start is stopped there and reported as not finished.",
        "",
        "| System | Durability (journal, synchronous) | Executions | Started in | First start → last end | × ideal "
        "| Peak RSS | RSS before | Processes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count in sizes.io:
        for key, *_ in IO_SYSTEMS:
            got = r.io.get(key, {}).get(count)
            if got is None:
                lines.append(f"| {LABELS[key]} | – | {count:,} | – | failed (see the notes) | – | – | – | – |")
                continue
            if got["finished"]:
                wall, ideal = ms(got["seconds"]), f"{got['seconds'] / IO_SECONDS:.2f}×"
            else:
                wall, ideal = f"did not finish in {got['cap']:.0f} s ({got['ended']:,} of {count:,} ended)", "–"
            lines.append(
                f"| {LABELS[key]} | {got['durability']} | {count:,} | {ms(got['start_seconds'])} | {wall} | {ideal} "
                f"| {got['peak_rss_kib'] / 1024:.1f} MiB | {got['idle_rss_kib'] / 1024:.1f} MiB | {got['processes']} |"
            )
    lines.append("")
    mine = r.io.get("perdure-seed", {})
    got = mine.get(1_000)
    if got is not None:
        ratio = got["seconds"] / IO_SECONDS if got["finished"] else float("inf")
        targets.add("(h) Perdure, seed style (runtime, 2 workers): 1,000 one-step executions within 1.5× of the ideal 1 s",
                    ms(got["seconds"]) if got["finished"] else f"not finished in {got['cap']:.0f} s", ratio <= 1.5, f"{ratio:.2f}×")
    for count in sizes.io:
        got, other = mine.get(count), r.io.get("dbos-wal", {}).get(count)
        if got is None or other is None:
            continue
        theirs = other["seconds"] if other["finished"] else float("inf")
        ours = got["seconds"] if got["finished"] else float("inf")
        cap = f"not finished in {other['cap']:.0f} s"
        figure = f"{ms(ours) if got['finished'] else 'not finished'} vs {ms(theirs) if other['finished'] else cap}"
        versus = f"{ours / theirs:.2f}× its time" if other["finished"] and got["finished"] else "–"
        targets.add(f"(h) Perdure, seed style (runtime, 2 workers): {count:,} at once ahead of {LABELS['dbos-wal']}",
                    figure, ours < theirs, versus)


def versions() -> list[tuple[str, str]]:
    from importlib import metadata

    return [(name, metadata.version(name)) for name in ("dbos", "SQLAlchemy", "aws-durable-execution-sdk-python-testing")]


def report(
    args: argparse.Namespace, sizes: Sizes, r: Results, pg: compare_pg.PgResults, rows: list[tuple[str, str]], seconds: float
) -> str:
    targets = Targets()
    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()} with `benchmarks/compare{' --quick' if args.quick else ''}`, "
        f"which took {seconds / 60:.1f} min. (a) and (c) ran in {sizes.rounds} alternating rounds; every figure is "
        "from this one run on this machine, which other people's tests shared (see the load average).",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    sums: dict[str, SeqSummary] = {}
    if "a" in args.only:
        sums = report_seq(r, lines, targets)
    if "b" in args.only:
        report_concurrent(r, sums, lines, targets)
    if "c" in args.only:
        report_callbacks(r, lines, targets)
    if "d" in args.only:
        report_crashes(r, lines, targets)
    if "e" in args.only:
        report_suspended(r, lines, targets)
    if "f" in args.only:
        report_timers(r, lines, targets)
    if "h" in args.only:
        report_io(r, sizes, lines, targets)
    if "p" in args.only:
        import compare_pg

        compare_pg.report_pg(pg, lines, targets, seq_summary, ms, STEPS)
    lines += [
        "### Targets",
        "",
        "| Target | Figure | Result | Ratio |",
        "|---|---|---|---:|",
        *targets.rows,
        "",
    ]
    if r.notes:
        lines += ["Failures in this run:", "", *(f"- {note}" for note in r.notes), ""]
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a run of a minute or two")
    parser.add_argument("--only", default="a,b,c,d,e,f,h,p", help="workloads to run, comma-separated (default all; g comes with a)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds of (a) and (c) (full: 3, quick: 2)")
    parser.add_argument("--timers", type=int, default=None, help="timers falling due together in (f) (full: 10,000)")
    parser.add_argument("--suspended", type=int, default=None, help="suspended executions in (e) (full: 100,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary folder (default: the system's)")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file whose compare block to replace")
    parser.add_argument("--base", type=Path, default=None,
                        help="(p) also runs the Perdure in this src folder (e.g. of a copy of main), beside this one")
    parser.add_argument("--child", nargs=3, metavar=("TARGET", "KWARGS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    ensure_venv()
    sys.path.insert(0, str(HERE))
    import compare_pg
    from seed_style import source
    from sequential_steps import machine

    args.only = set(args.only.split(","))
    sizes = QUICK if args.quick else FULL
    overrides = {"rounds": args.rounds, "timers": args.timers, "suspended": args.suspended}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="perdure-compare-", dir=args.dir))
    results = Results()
    pg = compare_pg.PgResults()
    run = Runner(base)
    try:
        if "a" in args.only:
            run_seq(run, sizes, results)
        if "c" in args.only:
            run_callbacks(run, sizes, results)
        if "d" in args.only:
            run_crashes(run, sizes, results)
        if "f" in args.only:
            run_timers(run, sizes, results)
        if "e" in args.only:
            run_suspended(run, sizes, results)
        if "b" in args.only:
            run_concurrent(run, sizes, results)
        if "h" in args.only:
            run_io(run, sizes, results)
        if "p" in args.only:
            compare_pg.run_pg(run, sizes, pg, lambda what, action: attempt(results, what, action), say, rounds_of,
                              alternate, STEPS, WARMUP, args.base)
        rows = [row for row in machine(base, load_before) if row[0] != "SQLite durability"]
        rows += [source(), *versions()]
        block = report(args, sizes, results, pg, rows, time.monotonic() - began)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(block)
    if args.write:
        from sequential_steps import write

        write(args.write, block, START_MARK, END_MARK)


if __name__ == "__main__":
    main()
