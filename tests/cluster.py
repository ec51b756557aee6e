"""`perdure worker` subprocesses, and a cluster of them behind one `perdure serve --no-workers`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from servers import PERDURE, Server


class Worker:
    """A `perdure worker` subprocess writing its output to ``worker-<index>.log``."""

    def __init__(
        self, targets: list[str], db_url: str, workdir: Path, env: dict[str, str], index: int, workers: int = 2,
        own_group: bool = False,
    ) -> None:  # fmt: skip
        self.command = [*PERDURE, "worker", *targets, "--db", db_url, "--workers", str(workers)]
        self.workdir = workdir
        self.env = env
        self.log = workdir / f"worker-{index}.log"
        self.process: subprocess.Popen[bytes] | None = None
        # In a process group (and session) of its own: signals to the group reach its worker
        # processes too, and none of the test's.
        self.own_group = own_group

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=log, start_new_session=self.own_group
            )
        deadline = time.monotonic() + 30
        while "Perdure worker running" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"perdure worker did not start:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILLs the worker (its worker processes die with it)."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def signal_group(self, signum: int) -> None:
        """Sends ``signum`` to the worker's process group (started with ``own_group``): it and its worker processes."""
        os.killpg(self.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.own_group and self.process.poll() is None:
            # A stopped group would not act on SIGTERM.
            self.signal_group(signal.SIGCONT)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Cluster:
    """One API server and some workers on one database, in ``workdir``; ``stop`` ends them all."""

    def __init__(self, workdir: Path, db_url: str, log: Path) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
        self.api: Server | None = None
        self.workers: list[Worker] = []

    def serve_api(self, *targets: str) -> Server:
        self.api = Server([*targets, "--no-workers"], self.workdir, self.env, db_url=self.db_url)
        self.api.start()
        return self.api

    def add_worker(self, *targets: str, workers: int = 2, own_group: bool = False, **env: str) -> Worker:
        """Starts a worker; ``env`` adds to its environment (``PGAPPNAME`` names its database sessions)."""
        worker = Worker(list(targets), self.db_url, self.workdir, {**self.env, **env}, len(self.workers), workers, own_group)
        self.workers.append(worker)
        worker.start()
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
