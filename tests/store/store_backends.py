"""A throwaway PostgreSQL server for the store tests (the fixtures are in conftest.py).

The server is started once per session from the PostgreSQL binaries on this machine (found
with ``pg_config --bindir``, in ``/usr/lib/postgresql/*/bin``, or on PATH; ``PERDURE_PG_BINDIR``
overrides), in a temporary folder, listening on 127.0.0.1 only, and stopped at the end. As
root, it runs as an unprivileged user, since PostgreSQL refuses to run as root. Without the
binaries, the PostgreSQL tests skip, or fail when ``CI=true``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from perdure.service.model import (
    Event,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from perdure.store.base import Store

# Small, so that blob offloading is exercised with small payloads.
INLINE_LIMIT = 1024
SERVER_USER = "perdure"
TEST_DB = "perdure_test"
UNPRIVILEGED_USERS = ("postgres", "perdure-pg")


def find_pg_bindir() -> Path | None:
    """Returns the folder of ``initdb`` and ``pg_ctl``, or None if PostgreSQL is not installed."""
    candidates: list[str] = []
    if os.environ.get("PERDURE_PG_BINDIR"):
        # Named on purpose: no falling back to another installation if it is wrong.
        candidates.append(os.environ["PERDURE_PG_BINDIR"])
    else:
        candidates.extend(_installed_bindirs())
    for candidate in candidates:
        folder = Path(candidate)
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _installed_bindirs() -> list[str]:
    candidates: list[str] = []
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(result.stdout.strip())
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates.extend(versions)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb") or "").resolve().parent))
    return candidates


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root (created if need be)."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    name = UNPRIVILEGED_USERS[-1]
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "PostgreSQL refuses to run as root, and no unprivileged user could be found or created "
            f"(tried {', '.join(UNPRIVILEGED_USERS)}; useradd said: {result.stderr.strip()}). "
            "Create a user named postgres, or run the tests as an ordinary user."
        )
    return pwd.getpwnam(name)


@dataclass
class PostgresServer:
    """A running PostgreSQL server in a temporary folder."""

    bindir: Path
    root: Path
    port: int
    account: pwd.struct_passwd | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = TEST_DB) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs a PostgreSQL program as the server's user."""
        extra: dict[str, Any] = {}
        if self.account is not None:
            extra = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            **extra,
        )

    def check(self, *args: str) -> None:
        result = self.run(*args)
        if result.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                + (f"\nServer log:\n{log.read_text()}" if log.exists() else "")
            )

    def create_database(self, name: str) -> str:
        """Creates an empty database and returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_server(bindir: Path) -> PostgresServer:
    account = _server_account()
    root = Path(tempfile.mkdtemp(prefix="perdure-pg-"))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir, root, 0, account)
    server.check(
        "initdb", "-D", str(server.data), "-U", SERVER_USER, "--auth=trust",
        "--encoding=UTF8", "--no-locale", "--no-sync",
    )  # fmt: skip
    # Durability is of no use to a throwaway server: fsync and the like off make tests faster.
    settings = (
        "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        f"-c max_connections=200 -k {root}"
    )
    error: Exception | None = None
    for _ in range(3):  # Another process may take the free port before the server binds it.
        server.port = _free_port()
        try:
            server.check(
                "pg_ctl", "start", "-D", str(server.data), "-l", str(root / "server.log"),
                "-w", "-t", "60", "-o", f"{settings} -p {server.port}",
            )  # fmt: skip
            break
        except RuntimeError as failure:
            error = failure
    else:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"The test PostgreSQL server did not start: {error}")
    return server


StoreFactory = Callable[..., Store]

# -- records for the tests --------------------------------------------------------------------

NOW = 1_800_000_000.0


def execution(execution_id: str, function: str = "orders", **fields: object) -> Execution:
    values: dict[str, object] = {
        "id": execution_id,
        "arn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST/durable-execution/{execution_id}",
        "function_name": function,
        "qualifier": "$LATEST",
        "name": fields.pop("name", execution_id),
        "status": ExecutionStatus.RUNNING,
        "start_time": NOW,
    }
    values.update(fields)
    return Execution(**values)  # type: ignore[arg-type]


def operation(op_id: str, position: int, **fields: object) -> Operation:
    values: dict[str, object] = {
        "id": op_id,
        "type": OperationType.STEP,
        "status": OperationStatus.STARTED,
        "position": position,
        "version": 1,
    }
    values.update(fields)
    return Operation(**values)  # type: ignore[arg-type]


def event(event_id: int, event_type: str = "StepStarted") -> Event:
    return Event(event_type=event_type, timestamp=NOW + event_id, operation_id=f"s{event_id}", details={"n": event_id}, event_id=event_id)


def insert(store: Store, *executions: Execution) -> None:
    with store.transaction() as tx:
        for e in executions:
            tx.insert_execution(e)
