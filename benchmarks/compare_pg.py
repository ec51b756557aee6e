"""``benchmarks/compare``'s PostgreSQL rows (workload p): Perdure and DBOS Transact on one PostgreSQL server.

One throwaway server (``tests/pg_server.py``) with PostgreSQL's durable defaults (fsync on,
synchronous_commit on) serves the whole run; every measurement gets a fresh database on it.
Systems: Perdure with AWS-SDK handlers and with seed-style functions, each under the runtime
(two worker processes, as (a) runs them), and DBOS Transact with that server as its system
database. (p1) is (a) on PostgreSQL: 10-step workflows one at a time, in alternating rounds,
with the commit floor (one small INSERT committed on its own, over TCP) timed in every round;
(p2) is (b): 1,000 10-step workflows started at once.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the throwaway server the tests use

from pg_server import PostgresServer, find_pg_bindir, start_server

# key, label, (p1) target, (p2) target, keyword arguments of both
SYSTEMS = [
    ("perdure-aws", "Perdure, AWS-SDK handler (runtime, 2 workers)", "perdure_bench:seq", "perdure_bench:concurrent", {"style": "aws"}),
    ("perdure-seed", "Perdure, seed style (runtime, 2 workers)", "perdure_bench:seq", "perdure_bench:concurrent", {"style": "seed"}),
    ("dbos", "DBOS Transact, PostgreSQL system database", "rivals.dbos_bench:seq", "rivals.dbos_bench:concurrent", {"wal": False}),
]
LABELS = {key: label for key, label, *_ in SYSTEMS}


@dataclass
class PgResults:
    seq: dict[str, list[float]] = field(default_factory=dict)
    durability: dict[str, str] = field(default_factory=dict)
    floors: list[float] = field(default_factory=list)
    concurrent: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: list[tuple[str, str]] = field(default_factory=list)
    systems: list[tuple[str, str, str, str, dict[str, Any]]] = field(default_factory=lambda: list(SYSTEMS))


def start() -> PostgresServer:
    bindir = find_pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed here (no initdb/pg_ctl found): the PostgreSQL rows need it")
    return start_server(bindir, durable=True)


def stop(server: PostgresServer) -> None:
    import shutil

    server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "fast")
    shutil.rmtree(server.root, ignore_errors=True)


def with_base(base: Path | None) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """The systems, and with ``base`` (another Perdure's ``src`` folder) its Perdure rows beside this one's."""
    if base is None:
        return SYSTEMS
    others = [
        (f"{key}-base", f"{label}, {base.parent.name}", seq, conc, {**kwargs, "source": str(base)})
        for key, label, seq, conc, kwargs in SYSTEMS
        if key.startswith("perdure")
    ]
    for key, label, *_ in others:
        LABELS[key] = label
    return [*SYSTEMS, *others]


def run_pg(run: Any, sizes: Any, results: PgResults, attempt: Any, say: Any, rounds_of: Any, alternate: Any,
           steps: int, warmup: int, base: Path | None = None) -> None:
    """Runs (p1) and (p2) with ``compare.py``'s runner, sizes and helpers; fills ``results``."""
    from scale_out import _pg_settings, commit_floor

    systems = results.systems = with_base(base)
    started: list[PostgresServer] = []
    # A missing server is reported in the notes, as any failed measurement: the other workloads' figures stand.
    attempt("(p) PostgreSQL rows", lambda: started.append(start()))
    if not started:
        return
    server = started[0]
    databases = 0

    def fresh() -> str:
        nonlocal databases
        databases += 1
        return server.create_database(f"compare_{databases}")

    try:
        results.server = _pg_settings(server.url("postgres"))
        plans = rounds_of(sizes.seq_workflows, sizes.rounds)
        for number in range(sizes.rounds):
            for key, label, seq_target, _, kwargs in alternate(systems, number):
                say(f"(p1) round {number + 1}/{sizes.rounds}: {label}")

                def one(key: str = key, target: str = seq_target, kwargs: dict[str, Any] = kwargs,
                        workflows: int = plans[number]) -> None:
                    got = run(target, workflows=workflows, steps=steps, warmup=warmup, db_url=fresh(), **kwargs)
                    results.seq.setdefault(key, []).extend(got["times"])
                    results.durability[key] = got["durability"]

                attempt(f"(p1) {label}", one)
            results.floors.append(commit_floor(server.url("postgres"), "on"))
        for key, label, _, concurrent_target, kwargs in systems:
            say(f"(p2) {label}: {sizes.concurrent} workflows at once")
            attempt(f"(p2) {label}", lambda key=key, target=concurrent_target, kwargs=kwargs: results.concurrent.__setitem__(
                key, run(target, workflows=sizes.concurrent, steps=steps, db_url=fresh(), **kwargs)))
    finally:
        stop(server)


def report_pg(r: PgResults, lines: list[str], targets: Any, summary: Any, ms: Any, steps: int) -> None:
    """Adds the (p1) and (p2) tables to ``lines`` and their targets to ``targets``."""
    sums = {key: summary(times) for key, times in r.seq.items() if times}
    floor = statistics.median(r.floors) if r.floors else None
    lines += [
        "### (p1) 10-step workflows one at a time, on PostgreSQL",
        "",
        "As (a), with every system on the same PostgreSQL server (a fresh database each run):",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in r.server),
        "",
        "| System | Durability | Workflows | Median workflow | p90 workflow | Steps/s | µs per step | × DBOS |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rival = sums.get("dbos")
    for key, label, *_ in r.systems:
        s = sums.get(key)
        if s is None:
            lines.append(f"| {label} | – | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {label} | {r.durability.get(key, '?')} | {s.workflows} | {ms(s.median)} | {ms(s.p90)} "
            f"| {s.steps_per_s:,.0f} | {s.us_per_step:,.0f} | {f'{s.steps_per_s / rival.steps_per_s:.2f}×' if rival else '–'} |"
        )
    if floor is not None:
        lines += [
            "",
            (
                "| Floor: one small INSERT committed on its own over TCP (synchronous_commit=on), median of 500, "
                "median over the rounds | |"
            ),
            "|---|---:|",
            f"| PostgreSQL | {floor:.0f} µs |",
        ]
    lines.append("")
    for key in ("perdure-seed", "perdure-aws"):
        s = sums.get(key)
        if s is None:
            continue
        if rival is not None:
            ratio = s.steps_per_s / rival.steps_per_s
            need = 3.0 if key == "perdure-seed" else 1.0
            targets.add(f"(p1) {LABELS[key]}: ≥{need:.0f}× DBOS on PostgreSQL in steps/s",
                        f"{s.steps_per_s:,.0f} vs {rival.steps_per_s:,.0f} steps/s", ratio >= need, f"{ratio:.2f}×")
        if floor is not None:
            ratio = s.us_per_step / floor
            targets.add(f"(p1) {LABELS[key]}: within 3× of the PostgreSQL commit floor",
                        f"{s.us_per_step:,.0f} µs per step vs {floor:.0f} µs", ratio <= 3.0 if key == "perdure-seed" else None,
                        f"{ratio:.1f}×")
    lines += [
        "### (p2) 10-step workflows started at once, on PostgreSQL",
        "",
        "As (b), on the same PostgreSQL server.",
        "",
        "| System | Workflows | First start → last end | Steps/s | × its own (p1) | × DBOS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    dbos = r.concurrent.get("dbos")
    dbos_rate = dbos["workflows"] * dbos["steps"] / dbos["seconds"] if dbos else None
    for key, label, *_ in r.systems:
        got = r.concurrent.get(key)
        if got is None:
            lines.append(f"| {label} | – | – | – | – | – |")
            continue
        rate = got["workflows"] * got["steps"] / got["seconds"]
        alone = sums.get(key)
        lines.append(
            f"| {label} | {got['workflows']:,} | {ms(got['seconds'])} | {rate:,.0f} "
            f"| {f'{rate / alone.steps_per_s:.2f}×' if alone else '–'} | {f'{rate / dbos_rate:.2f}×' if dbos_rate else '–'} |"
        )
        if key == "perdure-seed" and dbos_rate:
            targets.add(f"(p2) {label}: ≥3× DBOS on PostgreSQL in steps/s", f"{rate:,.0f} vs {dbos_rate:,.0f} steps/s",
                        rate / dbos_rate >= 3.0, f"{rate / dbos_rate:.2f}×")
    lines.append("")
