"""What the chaos test drives: process groups it SIGKILLs, and the threads that keep a workload going.

``Group`` runs a `perdure serve` or `perdure worker` in a session of its own, so one SIGKILL to
the group takes the server with every worker process it spawned at once, as a crash of its
machine would, and leaves the test's own process group alone. ``Invoker`` starts executions and retries
each with the same name until the server acknowledges it; ``Approver`` completes the callbacks
the handlers announce. Both keep going while servers die, and say what was acknowledged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from servers import PERDURE

from perdure.client import ApiError, Client

# Per request: a killed server resets its connections at once, so only a live but stalled
# server runs into this.
REQUEST_TIMEOUT = 10.0
RETRY_PAUSE = 0.2


class Group:
    """A `perdure` command in a process group of its own; ``kill`` SIGKILLs the whole group."""

    def __init__(
        self, label: str, args: list[str], workdir: Path, env: dict[str, str], ready: Callable[[Group], bool]
    ) -> None:
        self.label = label
        self.command = [*PERDURE, *args]
        self.workdir = workdir
        self.env = env
        self.ready = ready
        self.log = workdir / f"{label}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_offset = 0

    def start(self) -> None:
        """Starts the command and returns once ``ready`` says it serves."""
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while not self.ready(self):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.label} did not start:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        """What the command wrote since it was last started."""
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILLs every process of the group and reaps the leader."""
        if self.process is None or self.process.returncode is not None:
            return
        # The leader is not reaped yet, so the group ID is still ours: no other process can hold it.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)


def serving(endpoint: str) -> Callable[[Group], bool]:
    """Ready once ``GET /health`` answers 200."""

    def ready(group: Group) -> bool:
        try:
            return httpx.get(f"{endpoint}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return ready


def working(group: Group) -> bool:
    """Ready once `perdure worker` says it runs."""
    return "Perdure worker running" in group.output()


@dataclass
class Order:
    """One execution the test starts, and what the server acknowledged of it."""

    function: str
    name: str
    event: dict[str, Any]
    arn: str | None = None  # set when an invoke of it got a 2xx reply
    answer: str = ""  # the callback's result, as sent
    callback_id: str | None = None
    callback_acknowledged: bool = False  # a completion of its callback got a 2xx reply
    status: str = "RUNNING"
    description: dict[str, Any] = field(default_factory=dict)


def retryable(error: ApiError) -> bool:
    """A refusal a client should try again: the server is down, starting, or died mid-request."""
    return error.status == 0 or error.status >= 500


class Driver(threading.Thread):
    """A thread that runs ``work`` and keeps the first unexpected error for the test to report."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.error: BaseException | None = None
        self.retries = 0

    def run(self) -> None:
        try:
            with Client(self.endpoint, timeout=REQUEST_TIMEOUT) as client:
                self.work(client)
        except BaseException as error:  # noqa: BLE001 - the test reports it
            self.error = error

    def work(self, client: Client) -> None:
        raise NotImplementedError


class Invoker(Driver):
    """Starts executions one every ``spacing`` seconds until told it has started enough.

    ``make(i)`` gives the i-th; it goes into ``orders`` before it is invoked. Each invoke is
    retried with the same name until acknowledged: the name makes a retry idempotent (same name,
    same input: the same execution), so an invoke whose reply was lost to a crash is asked again.
    It starts at least ``least`` and at most ``most``; between the two, until ``enough`` is set.
    """

    def __init__(
        self,
        endpoint: str,
        orders: dict[str, Order],
        make: Callable[[int], Order],
        spacing: float,
        least: int,
        most: int,
    ) -> None:
        super().__init__(endpoint)
        self.orders = orders
        self.make = make
        self.spacing = spacing
        self.least = least
        self.most = most
        self.enough = threading.Event()

    def work(self, client: Client) -> None:
        for index in range(self.most):
            if index >= self.least and self.enough.is_set():
                return
            order = self.make(index)
            self.orders[order.name] = order
            while order.arn is None:
                try:
                    reply = client.invoke(order.function, order.event, wait=False, name=order.name)
                except ApiError as error:
                    if not retryable(error):
                        raise
                    self.retries += 1
                    time.sleep(RETRY_PAUSE)
                    continue
                order.arn = reply["DurableExecutionArn"]
            time.sleep(self.spacing)


class Approver(Driver):
    """Completes every callback a handler announces in the side-effect log, until told to stop."""

    def __init__(self, endpoint: str, orders: dict[str, Order], log: Path) -> None:
        super().__init__(endpoint)
        self.orders = orders
        self.log = log
        self.offset = 0
        self.stopping = threading.Event()
        self.earlier = 0  # completions refused as already done: an earlier reply was lost

    def work(self, client: Client) -> None:
        pending: list[Order] = []
        while not self.stopping.is_set():
            pending.extend(self._announced())
            for order in list(pending):
                assert order.callback_id is not None
                try:
                    client.succeed_callback(order.callback_id, json.loads(order.answer))
                    order.callback_acknowledged = True
                except ApiError as error:
                    if retryable(error):
                        self.retries += 1
                        continue
                    # An earlier completion was recorded but its reply was lost to a crash.
                    if "already SUCCEEDED" not in str(error):
                        raise
                    self.earlier += 1
                pending.remove(order)
            time.sleep(RETRY_PAUSE)

    def _announced(self) -> list[Order]:
        """The orders whose callback ID was first logged since the last call."""
        if not self.log.exists():
            return []
        with open(self.log, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        announced = []
        for line in complete.decode().splitlines():
            _, _, execution, unit, *detail = line.split()
            order = self.orders[execution]
            if unit == "announce" and order.callback_id is None:
                order.callback_id = detail[0]
                announced.append(order)
        return announced


@dataclass(frozen=True)
class Kill:
    at: float  # seconds into the run
    victim: str
    down: float  # seconds before it was started again
    start: float  # seconds it then took to serve (or run) again


def lines_in(path: Path) -> int:
    """How many lines the side-effect log holds: how far the workload has come."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


class Chaos:
    """SIGKILLs a random group at random moments while work runs, and starts it again after a pause.

    A kill falls due once a random time has passed since the last restart *and* the workload
    has logged a random number of units since: on a slow or busy machine, workers that are still
    starting are not killed over and over before they run anything.
    """

    def __init__(self, rng: random.Random, groups: list[Group], log: Path, began: float) -> None:
        self.rng = rng
        self.groups = groups
        self.log = log
        self.began = began
        self.kills: list[Kill] = []
        self._plan(time.monotonic())

    def _plan(self, now: float) -> None:
        self.due_time = now + self.rng.uniform(1.0, 3.0)
        self.due_lines = lines_in(self.log) + self.rng.randint(3, 20)

    def due(self) -> bool:
        return time.monotonic() >= self.due_time and lines_in(self.log) >= self.due_lines

    def strike(self) -> None:
        """Kills a random group, waits 0 to 1.5 s, and starts it again."""
        victim = self.rng.choice(self.groups)
        pause = self.rng.uniform(0.0, 1.5)
        killed = time.monotonic()
        victim.kill()
        time.sleep(pause)
        victim.start()
        now = time.monotonic()
        start = now - killed - pause
        self.kills.append(Kill(round(killed - self.began, 1), victim.label, round(pause, 1), round(start, 1)))
        self._plan(now)
