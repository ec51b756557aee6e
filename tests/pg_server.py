"""A throwaway PostgreSQL server for tests (and benchmarks) that need one.

The server is started from the PostgreSQL binaries on this machine (found with
``pg_config --bindir``, in ``/usr/lib/postgresql/*/bin``, or on PATH; ``PERDURE_PG_BINDIR``
overrides), in a temporary folder, listening on 127.0.0.1 only. As root, it runs as an
unprivileged user, since PostgreSQL refuses to run as root. The ``postgres_server`` fixture in
``tests/conftest.py`` starts one per test session; without the binaries, the tests that use it
skip, or fail when ``CI=true``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

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

    def restart(self) -> None:
        """Restarts the server with ``pg_ctl restart`` (fast shutdown: every session is ended at once, as in a failover).

        Returns once it accepts connections again, on the same port with the same settings.
        """
        self.check(
            "pg_ctl", "restart", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-m", "fast", "-w", "-t", "60",
        )  # fmt: skip

    def stop(self) -> None:
        """Stops the server at once and removes its folder."""
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Creates an empty database and returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_server(bindir: Path, durable: bool = False) -> PostgresServer:
    """Starts a server; ``durable`` keeps PostgreSQL's defaults (fsync, synchronous_commit on).

    Tests leave it off: durability is of no use to a throwaway server, and fsync and the like
    off make them faster. A benchmark turns it on, to measure what a real deployment costs.
    """
    account = _server_account()
    root = Path(tempfile.mkdtemp(prefix="perdure-pg-"))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir, root, 0, account)
    server.check(
        "initdb", "-D", str(server.data), "-U", SERVER_USER, "--auth=trust",
        "--encoding=UTF8", "--no-locale", "--no-sync",
    )  # fmt: skip
    settings = f"-c listen_addresses=127.0.0.1 -c max_connections=200 -k {root}"
    if not durable:
        settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
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
