"""Chaos: servers and workers SIGKILLed at random while a mixed workload runs, on SQLite and PostgreSQL.

Executions of a seed-style function (checkpoints in a loop, a step, a wait, a flaky step, a
callback, map and parallel) and of an AWS-SDK handler (steps, map, parallel, a wait, a step
that fails twice and is retried, a callback) are started one after another while, at random
times, a process group is SIGKILLed and started again: on SQLite the `perdure serve` with its
worker processes; on PostgreSQL the API server (`--no-workers`) or one of two `perdure worker`
processes. A client retries each invoke with the same name until it is acknowledged, and
completes each callback as it is announced, retrying while the server is down.

Then every acknowledged execution must have SUCCEEDED with the result its input and its
callback's answer determine, every acknowledged callback must be in its history, and no unit of
work may have run after it was recorded done (the rule is in verdict.py).

The schedule (kills, victims, pauses, inputs) comes from a seed printed with any failure; run
again with PERDURE_CHAOS_SEED=<seed> to replay it (thread timing still varies).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import REQUEST_TIMEOUT, Approver, Chaos, Group, Invoker, Kill, Order, retryable, serving, working
from pg_server import PostgresServer
from servers import free_port
from verdict import judge, read_runs, reruns

from perdure.client import ApiError, Client

HANDLERS = Path(__file__).resolve().parent / "chaos_handlers.py"
TARGETS = [str(HANDLERS), f"fulfil={HANDLERS}:fulfil"]
# Executions alternate between the styles, one started every SPACING seconds until the last
# kill, but at least LEAST and at most MOST: a fast machine gets through the kills with work
# still running, a slow one is not given more than it can finish. (At 28, a PostgreSQL run that
# recovered fast finished all its work 19 s in, after 3 of its kills.)
SPACING = 0.4
LEAST, MOST = 16, 48
KILLS = (4, 8)  # how many, at random
# Worker processes in all, four a function: a full pool stops an idle worker of one function to
# start one of another, and with two a function forty of these executions (no kills) started a
# hundred worker processes, not eight, and took 55 s, not 20.
WORKERS = 8
DEADLINE = 180.0  # seconds for the whole workload to end
# 45 to 150 s per backend on two cores busy with other work (PostgreSQL's start not counted).
pytestmark = pytest.mark.timeout(DEADLINE + 90)


@dataclass
class Outcome:
    """What a chaos run did and what went wrong, with a summary for the failure message."""

    backend: str
    seed: int
    workdir: Path  # the logs of every process, the side-effect log and (SQLite) the database
    orders: dict[str, Order] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reruns: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    completed_earlier: int = 0  # callback completions refused as done already: a reply was lost
    elapsed: float = 0.0

    def summary(self) -> str:
        orders = list(self.orders.values())
        statuses = Counter(order.status for order in orders)
        acknowledged = sum(order.arn is not None for order in orders)
        callbacks = sum(order.callback_acknowledged for order in orders)
        kills = ", ".join(
            f"{kill.victim} at {kill.at} s (down {kill.down} s, up again in {kill.start} s)" for kill in self.kills
        )
        reran = ", ".join(f"{unit} +{count}" for unit, count in sorted(self.reruns.items())) or "none"
        return (
            f"Chaos on {self.backend}, seed {self.seed} (replay: PERDURE_CHAOS_SEED={self.seed}), "
            f"{self.elapsed:.1f} s: "
            f"{len(self.kills)} kills: {kills}. {len(self.orders)} executions, {acknowledged} acknowledged, "
            f"statuses {dict(statuses)}; {callbacks} callbacks acknowledged ({self.completed_earlier} found done by "
            f"a request whose reply was lost); {self.retries} client retries. "
            f"Units run more often than without crashes (allowed if each run began before the unit's record): {reran}. "
            f"Logs in {self.workdir}."
        )

    def check(self) -> None:
        print(self.summary())
        shown = "\n".join(self.problems[:40])
        assert not self.problems, f"{self.summary()}\n{len(self.problems)} problem(s):\n{shown}"


def order_maker(seed: int) -> Callable[[int], Order]:
    """The i-th execution to start: its function and input, the same for a seed whatever the timing."""

    def make(index: int) -> Order:
        rng = random.Random(f"{seed}-{index}")
        function = ("tally", "fulfil")[index % 2]
        name = f"{function}-{index:02d}"
        event: dict[str, Any] = {"name": name, "items": [rng.randint(1, 9) for _ in range(rng.randint(2, 4))]}
        if function == "tally":
            event |= {"rounds": rng.randint(3, 8), "base": rng.randint(1, 5)}
        return Order(function, name, event, answer=json.dumps(f"approved-{name}"))

    return make


def seeded() -> tuple[int, random.Random]:
    seed = int(os.environ.get("PERDURE_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    return seed, random.Random(seed)


@contextmanager
def started(groups: list[Group]) -> Iterator[None]:
    """Starts the groups in order; at the end SIGKILLs every one, whatever happened."""
    try:
        for group in groups:
            group.start()
        yield
    finally:
        # Every execution has ended (or the test failed): nothing is left to finish gracefully.
        for group in groups:
            group.kill()


def refresh(client: Client, orders: list[Order]) -> None:
    """Reads the status of acknowledged executions still running; a server that is down is asked later."""
    for order in orders:
        if order.arn is None or order.status != "RUNNING":
            continue
        try:
            order.description = client.get_execution(order.arn)
        except ApiError as error:
            if retryable(error):
                return
            raise
        order.status = order.description["Status"]


def unleash(backend: str, seed: int, rng: random.Random, endpoint: str, victims: list[Group], log: Path) -> Outcome:
    """Runs the workload through random kills of ``victims`` and judges what came of it."""
    outcome = Outcome(backend, seed, log.parent)
    began = time.monotonic()
    invoker = Invoker(endpoint, outcome.orders, order_maker(seed), SPACING, LEAST, MOST)
    approver = Approver(endpoint, outcome.orders, log)
    chaos = Chaos(rng, victims, log, began)
    kills = rng.randint(*KILLS)
    invoker.start()
    approver.start()
    with Client(endpoint, timeout=REQUEST_TIMEOUT) as client:
        try:
            while time.monotonic() - began < DEADLINE and invoker.error is None and approver.error is None:
                if len(chaos.kills) < kills and chaos.due():
                    chaos.strike()
                if len(chaos.kills) == kills:
                    invoker.enough.set()
                orders = list(outcome.orders.values())
                refresh(client, orders)
                if not invoker.is_alive() and all(order.status != "RUNNING" for order in orders):
                    break
                time.sleep(0.2)
        finally:
            invoker.enough.set()
            approver.stopping.set()
            approver.join(REQUEST_TIMEOUT * 2)
        outcome.elapsed = time.monotonic() - began
        outcome.kills = chaos.kills
        outcome.retries = invoker.retries + approver.retries
        outcome.completed_earlier = approver.earlier
        for driver in (invoker, approver):
            if driver.error is not None:
                outcome.problems.append(f"{type(driver).__name__} failed: {driver.error!r}")
        judge_all(outcome, client, log)
    return outcome


def judge_all(outcome: Outcome, client: Client, log: Path) -> None:
    """Adds to ``outcome.problems`` what went wrong with each execution, and counts its extra runs."""
    if len(outcome.kills) < KILLS[0]:
        outcome.problems.append(f"only {len(outcome.kills)} kills happened while the workload ran")
    runs = read_runs(log)
    for order in outcome.orders.values():
        if order.arn is None:
            outcome.problems.append(f"{order.name} was never acknowledged within {DEADLINE} s")
        elif order.status == "RUNNING":
            outcome.problems.append(f"{order.name} was still RUNNING after {DEADLINE} s (callback {order.callback_id})")
        else:
            outcome.problems.extend(judge(order, client.history(order.arn), runs[order.name]))
            extra = reruns(order, runs[order.name])
            outcome.reruns += Counter({f"{order.name} {unit}": count for unit, count in extra.items()})


def test_sigkilled_sqlite_server_loses_no_acknowledged_execution_and_reruns_nothing_recorded(tmp_path: Path) -> None:
    seed, rng = seeded()
    log = tmp_path / "side-effects.log"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    db = f"sqlite:///{tmp_path / 'perdure.db'}"
    serve_args = ["serve", *TARGETS, "--workers", str(WORKERS), "--dev", "--db", db, "--port", str(port)]
    server = Group("server", serve_args, tmp_path, env, serving(endpoint))
    with started([server]):
        outcome = unleash("SQLite", seed, rng, endpoint, [server], log)
    outcome.check()


def test_sigkilled_postgres_api_and_workers_lose_no_acknowledged_execution_and_rerun_nothing_recorded(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    seed, rng = seeded()
    log = tmp_path / "side-effects.log"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    db = postgres_server.create_database(f"chaos_{uuid.uuid4().hex[:8]}")
    api_args = ["serve", *TARGETS, "--no-workers", "--dev", "--db", db, "--port", str(port)]
    api = Group("api", api_args, tmp_path, env, serving(endpoint))
    worker_args = ["worker", *TARGETS, "--db", db, "--workers", str(WORKERS // 2)]
    workers = [Group(f"worker-{i}", worker_args, tmp_path, env, working) for i in range(2)]
    with started([api, *workers]):
        outcome = unleash("PostgreSQL", seed, rng, endpoint, [api, *workers], log)
    outcome.check()
