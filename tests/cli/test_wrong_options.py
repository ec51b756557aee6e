"""Wrong option values: the command exits 2 before doing anything, and says what to write instead."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Perdure = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--workers", "0"], "Invalid value for '--workers': 0 is not in the range 1<=x<=256."),
        (["serve", "--request-timeout", "0"], "Invalid value for '--request-timeout': 0.0 is not in the range x>0."),
        (["worker", "--log-format", "yaml"], "Invalid value for '--log-format': 'yaml' is not one of 'text', 'json'."),
        (["purge", "--retention-days", "0"], "Invalid value for '--retention-days': 0 is not in the range x>=1."),
        (
            ["executions", "list", "--status", "DONE"],
            "Invalid value for '--status': 'DONE' is not one of 'RUNNING', 'PAUSING', 'PAUSED', 'SUCCEEDED', "
            "'FAILED', 'TIMED_OUT', 'STOPPED'.",
        ),
        (["invoke", "orders", "--payload", "{id: 1}"], "Quote it, as in '{\"id\": 1}'."),
        (["callback", "succeed", "c-1", "--result", "yes"], "Invalid value for --result: 'yes' is not valid JSON"),
        (["run", "flows.py"], "Invalid value for TARGET: write path/to/file.py:function, e.g. examples/order_processing.py:process_order"),
        (["serve"], "Nothing to serve: name at least one TARGET or a --template."),
        (["keys", "create"], "Missing option '--name'."),
    ],
    ids=[
        "workers", "request-timeout", "log-format", "retention-days", "status", "payload", "result", "run-target",
        "no-target", "key-name",
    ],  # fmt: skip
)
def test_a_wrong_value_exits_2_with_the_usage_and_how_to_fix_it(
    perdure: Perdure, tmp_path: Path, args: list[str], message: str
) -> None:
    result = perdure(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Usage: perdure " in result.stderr and f"Try 'perdure {args[0]}" in result.stderr
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is made before the input is checked"


def test_db_env_naming_an_unset_variable_says_what_to_export(perdure: Perdure) -> None:
    result = perdure("keys", "list", "--db-env", "ORDERS_DATABASE_URL")
    assert result.returncode == 2
    assert (
        "--db-env names the environment variable ORDERS_DATABASE_URL, which is not set or empty. Export it with the "
        "database URL, for example postgresql://perdure:PASSWORD@db.internal/perdure."
    ) in result.stderr


def test_db_and_db_env_together_are_refused(perdure: Perdure, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'perdure.db'}"
    result = perdure("keys", "list", "--db", url, "--db-env", "URL", env={"URL": url})
    assert result.returncode == 2
    assert "Error: Give the database as --db or as --db-env, not both." in result.stderr
    assert not (tmp_path / "perdure.db").exists()
