"""The commands that work on a database with no server: `perdure keys`, `perdure purge`,
`perdure run`, and `perdure callback --db`; each run as the installed command, then the database
itself is read to see what it did."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import wait_for
from store_backends import execution, insert

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import Execution, ExecutionStatus
from perdure.store.sqlite import SQLiteStore

Perdure = Callable[..., subprocess.CompletedProcess[str]]
DAY = 86400.0

FLOWS = '''
import perdure as durable


@durable.function
def double(ctx, event):
    return {"n": ctx.step(lambda: event["n"] * 2, name="double")}


@durable.function
def refuse(ctx, event):
    ctx.step(lambda: None, name="look")
    raise ValueError(f"order {event['order']} is refused")


@durable.function
def approve(ctx, event):
    answer = ctx.wait_for_callback(lambda callback_id: None, name="approval")
    return {"order": event["order"], "answer": answer}
'''


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(FLOWS)
    return path


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "perdure.db"


@pytest.fixture
def db_url(database: Path) -> str:
    return f"sqlite:///{database}"


def executions_in(database: Path) -> dict[str, Execution]:
    """The executions in the database, by name, read through a store of the test's own."""
    store = SQLiteStore(database)
    try:
        with store.snapshot() as tx:
            return {e.name: e for e in tx.list_executions(ExecutionQuery(limit=1000)).executions}
    finally:
        store.close()


def printed(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- keys --------------------------------------------------------------------------------------


def test_keys_create_list_and_revoke_change_the_database_a_server_reads(perdure: Perdure, database: Path, db_url: str) -> None:
    created = printed(perdure("keys", "create", "--name", "ci", "--db", db_url))
    assert set(created) == {"Name", "AccessKeyId", "SecretAccessKey", "Token", "CreatedTimestamp"}
    assert created["Name"] == "ci" and created["Token"].startswith("pdt_")

    listed = printed(perdure("keys", "list", "--db", db_url))
    assert [(k["Name"], k["AccessKeyId"], k["Status"]) for k in listed] == [("ci", created["AccessKeyId"], "ACTIVE")]
    assert "SecretAccessKey" not in listed[0] and "Token" not in listed[0]
    store = SQLiteStore(database)
    try:
        (stored,) = store.list_api_keys()
        assert stored.access_key_id == created["AccessKeyId"] and stored.active
        # The database keeps what verifies the credentials, never the credentials.
        assert created["SecretAccessKey"] not in repr(stored) and created["Token"] not in repr(stored)
    finally:
        store.close()

    revoked = printed(perdure("keys", "revoke", "ci", "--db", db_url))
    assert revoked["Status"] == "REVOKED" and revoked["RevokedTimestamp"] is not None
    assert [k["Status"] for k in printed(perdure("keys", "list", "--db", db_url))] == ["REVOKED"]


def test_a_second_active_key_of_the_same_name_is_refused_with_the_fix(perdure: Perdure, db_url: str) -> None:
    printed(perdure("keys", "create", "--name", "ci", "--db", db_url))
    again = perdure("keys", "create", "--name", "ci", "--db", db_url)
    assert again.returncode == 1 and again.stdout == ""
    assert "An active API key is already named 'ci'. Revoke it first with `perdure keys revoke ci`" in again.stderr
    assert len(printed(perdure("keys", "list", "--db", db_url))) == 1


def test_revoking_a_key_that_is_not_there_names_it_and_how_to_see_the_keys(perdure: Perdure, db_url: str) -> None:
    result = perdure("keys", "revoke", "nobody", "--db", db_url)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: No active API key has the ID or name 'nobody'. `perdure keys list` shows the keys."


def test_db_env_names_the_database_without_putting_its_url_on_the_command_line(
    perdure: Perdure, db_url: str
) -> None:
    printed(perdure("keys", "create", "--name", "deploy", "--db", db_url))
    listed = printed(perdure("keys", "list", "--db-env", "KEYS_DB", env={"KEYS_DB": db_url}))
    assert [k["Name"] for k in listed] == ["deploy"]


# -- purge -------------------------------------------------------------------------------------


@pytest.fixture
def aged(database: Path) -> Iterator[None]:
    """Three executions: one ended ten days ago, one ended yesterday, one still running."""
    now = time.time()
    store = SQLiteStore(database)
    try:
        insert(
            store,
            execution("old", start_time=now - 11 * DAY, end_time=now - 10 * DAY, status=ExecutionStatus.SUCCEEDED),
            execution("recent", start_time=now - 2 * DAY, end_time=now - DAY, status=ExecutionStatus.FAILED),
            execution("running", start_time=now - 30 * DAY),
        )
    finally:
        store.close()
    yield


@pytest.mark.usefixtures("aged")
def test_purge_dry_run_reports_the_expired_executions_and_removes_nothing(
    perdure: Perdure, database: Path, db_url: str
) -> None:
    report = printed(perdure("purge", "--db", db_url, "--retention-days", "3", "--dry-run"))
    assert report["DryRun"] is True and report["PurgedExecutions"] == 1
    assert [e["DurableExecutionArn"] for e in report["Executions"]] == [execution("old").arn]
    assert set(executions_in(database)) == {"old", "recent", "running"}


@pytest.mark.usefixtures("aged")
def test_purge_removes_what_ended_before_the_retention_and_keeps_the_rest(
    perdure: Perdure, database: Path, db_url: str
) -> None:
    report = printed(perdure("purge", "--db", db_url, "--retention-days", "3"))
    assert report["DryRun"] is False and report["PurgedExecutions"] == 1
    assert set(executions_in(database)) == {"recent", "running"}
    assert printed(perdure("purge", "--db", db_url, "--retention-days", "3"))["PurgedExecutions"] == 0
    # With a retention under a day, yesterday's execution goes too; the running one never does.
    printed(perdure("purge", "--db", db_url, "--retention-days", "1"))
    assert set(executions_in(database)) == {"running"}


# -- run and callback --db -----------------------------------------------------------------------


def test_run_prints_the_result_as_json_and_keeps_the_execution_in_the_default_database(
    perdure: Perdure, flows: Path, tmp_path: Path
) -> None:
    result = perdure("run", f"{flows.name}:double", "--payload", '{"n": 21}', "--name", "d-1")
    shown = printed(result)
    assert shown["Status"] == "SUCCEEDED" and shown["Result"] == {"n": 42}
    # No --db: the database is .perdure/perdure.db in the folder the command runs in.
    stored = executions_in(tmp_path / ".perdure" / "perdure.db")["d-1"]
    assert stored.status is ExecutionStatus.SUCCEEDED and json.loads(stored.result or "") == {"n": 42}


def test_run_of_a_failing_function_prints_the_failed_execution_and_exits_1(
    perdure: Perdure, flows: Path, database: Path, db_url: str
) -> None:
    result = perdure("run", f"{flows}:refuse", "--payload", '{"order": 7}', "--name", "r-7", "--db", db_url)
    assert result.returncode == 1
    shown = json.loads(result.stdout)
    assert shown["Status"] == "FAILED" and "order 7 is refused" in shown["Error"]["ErrorMessage"]
    assert executions_in(database)["r-7"].status is ExecutionStatus.FAILED


def test_run_waits_at_a_callback_until_the_command_it_prints_completes_it(
    perdure: Perdure, perdure_started: Callable[..., subprocess.Popen[str]], flows: Path, database: Path, db_url: str, tmp_path: Path
) -> None:
    stderr = tmp_path / "run.err"
    running = perdure_started("run", f"{flows}:approve", "--payload", '{"order": 9}', "--name", "a-9", "--db", db_url, stderr=stderr)
    wait_for(lambda: "perdure callback succeed" in stderr.read_text())
    (hint,) = [line.strip() for line in stderr.read_text().splitlines() if line.strip().startswith("perdure callback succeed")]
    args = shlex.split(hint)  # the command as printed, run as a user would paste it
    assert args[:3] == ["perdure", "callback", "succeed"] and args[-2:] == ["--db", db_url]
    assert running.poll() is None  # still waiting for the callback
    assert printed(perdure(*args[1:])) == {"CallbackId": args[3], "Status": "SUCCEEDED"}
    out, _ = running.communicate(timeout=60)
    assert running.returncode == 0, stderr.read_text()
    assert json.loads(out)["Result"] == {"order": 9, "answer": {"approved": True}}
    assert executions_in(database)["a-9"].status is ExecutionStatus.SUCCEEDED


def test_completing_an_unknown_callback_in_a_database_is_an_error_naming_it(perdure: Perdure, db_url: str) -> None:
    result = perdure("callback", "succeed", "no-such-callback", "--db", db_url)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: Callback not found: 'no-such-callback'. Use the CallbackId exactly as the execution issued it")
