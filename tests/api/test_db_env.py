"""A PostgreSQL password need not be on the command line, where every local user sees it in `ps`.

Against the tests' PostgreSQL server, with a role that must give its password (a scram line in
pg_hba.conf for that role alone): `perdure serve` opens the database with the password from
PGPASSWORD and a URL without one, and with `--db-env NAME` takes the whole URL from the
environment; neither the server's command line nor its workers' holds the password. Nor does
what `perdure run` prints to complete a callback.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from pg_server import PostgresServer
from servers import HANDLERS, PERDURE, free_port, handler_target, wait_for

PASSWORD = f"pw-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Role:
    """A role that logs in with ``PASSWORD`` only, and owns a database of its own."""

    name: str
    host: str
    database: str

    def url(self, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{self.name}{secret}@{self.host}/{self.database}"


@pytest.fixture(scope="module")
def role(postgres_server: PostgresServer) -> Iterator[Role]:
    name = f"pw_{uuid.uuid4().hex[:8]}"
    admin = postgres_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
    hba = postgres_server.data / "pg_hba.conf"
    rules = hba.read_text()
    # First match wins: this role must give its password; every other keeps the server's trust.
    hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{rules}")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield Role(name, f"127.0.0.1:{postgres_server.port}", name)
    finally:
        hba.write_text(rules)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def _environment(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_")) and k != "PERDURE_SECRET"}
    return {**clean, **extra}


def _serve(tmp_path: Path, db_args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Starts `perdure serve --dev` with these database options; returns it once healthy, and its endpoint."""
    port = free_port()
    command = [*PERDURE, "serve", handler_target("steps", "steps"), "--dev", "--port", str(port), *db_args]
    log = tmp_path / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"perdure serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{endpoint}/health", timeout=1).status_code == 200:
                return process, endpoint
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"perdure serve did not start:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _command_lines(pid: int) -> list[str]:
    """The command lines of a process and its descendants (the workers)."""
    lines = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            lines.extend(_command_lines(int(child)))
    return lines


def _runs_an_execution(endpoint: str) -> None:
    reply = httpx.post(f"{endpoint}/2015-03-31/functions/steps/invocations", content=b"{}", timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"total": 3}


def test_the_role_really_needs_its_password(role: Role, tmp_path: Path) -> None:
    done = subprocess.run(
        [*PERDURE, "keys", "list", "--db", role.url()],
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "password" in done.stderr


def test_serve_takes_the_password_from_pgpassword(role: Role, tmp_path: Path) -> None:
    process, endpoint = _serve(tmp_path, ["--db", role.url()], _environment(PGPASSWORD=PASSWORD))
    try:
        _runs_an_execution(endpoint)
        assert not any(PASSWORD in line for line in _command_lines(process.pid))
    finally:
        _stop(process)


def test_db_env_takes_the_whole_url_from_the_environment(role: Role, tmp_path: Path) -> None:
    env = _environment(PERDURE_DATABASE_URL=role.url(PASSWORD))
    process, endpoint = _serve(tmp_path, ["--db-env", "PERDURE_DATABASE_URL"], env)
    try:
        _runs_an_execution(endpoint)
        lines = _command_lines(process.pid)
        assert len(lines) > 1, "the workers' command lines were not found"
        assert not any(PASSWORD in line for line in lines)
    finally:
        _stop(process)
    keys = subprocess.run(
        [*PERDURE, "keys", "create", "--name", "ci", "--db-env", "PERDURE_DATABASE_URL"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert keys.returncode == 0, keys.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--db-env", "PERDURE_NO_SUCH_VARIABLE"], "PERDURE_NO_SUCH_VARIABLE"),
        (["--db-env", "PERDURE_DATABASE_URL", "--db", "sqlite:///x.db"], "not both"),
    ],
)
def test_db_env_refuses_a_missing_variable_or_a_db_beside_it(tmp_path: Path, args: list[str], says: str) -> None:
    done = subprocess.run(
        [*PERDURE, "keys", "list", *args],
        cwd=tmp_path, env=_environment(PERDURE_DATABASE_URL="sqlite:///y.db"), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert says in done.stderr
    assert not list(tmp_path.glob("*.db"))


def _hinted_command(stderr: Path) -> str | None:
    """The command `perdure run` printed to complete the callback it waits for, once it has."""
    found = re.search(r"^  (perdure callback succeed .*)$", stderr.read_text(), re.MULTILINE)
    return found.group(1) if found else None


@pytest.mark.parametrize("given_as", ["--db", "--db-env"])
def test_run_names_the_database_without_its_password_in_the_callback_hint(
    role: Role, tmp_path: Path, given_as: str
) -> None:
    env = _environment(PERDURE_TEST_LOG=str(tmp_path / "side-effects.log"), PERDURE_DATABASE_URL=role.url(PASSWORD))
    database = [given_as, role.url(PASSWORD) if given_as == "--db" else "PERDURE_DATABASE_URL"]
    target = f"{HANDLERS / 'restartable.py'}:approval_then_steps"
    stderr = tmp_path / "run.err"
    with open(stderr, "wb") as err:
        run = subprocess.Popen(
            [*PERDURE, "run", target, *database], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        hint = str(wait_for(lambda: _hinted_command(stderr)))
        assert PASSWORD not in stderr.read_text()
        # The hint, as printed (with the password put back where it is masked), completes the callback.
        completed = subprocess.run(
            [*PERDURE, *shlex.split(hint.replace("***", PASSWORD))[1:]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert run.wait(60) == 0, stderr.read_text()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
