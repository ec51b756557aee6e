"""The commands that start and manage executions through a server's API (``perdure.client``).

``perdure callback`` may instead complete a callback directly in a database (``--db``), as
``perdure run`` needs when no server runs.
"""

from __future__ import annotations

import json
import math

import click

from perdure.cli.options import (
    F,
    db_options,
    decoded,
    endpoint_option,
    json_argument,
    print_json,
    reports_errors,
)
from perdure.cli.since import since_option
from perdure.client import Client


@click.command()
@click.argument("function")
@click.option("--payload", help="The execution input, as JSON.")
@click.option("--async", "run_async", is_flag=True, help="Return at once instead of waiting for the end.")
@click.option("--name", help="Execution name: starting the same name again returns the same execution.")
@endpoint_option
@reports_errors
def invoke(function: str, payload: str | None, run_async: bool, name: str | None, endpoint: str) -> None:
    """Start an execution of FUNCTION and print it as JSON."""
    value = json_argument(payload, "--payload")
    with Client(endpoint) as client:
        execution = client.invoke(function, value, wait=not run_async, name=name)
    print_json(decoded(execution))


@click.group()
def executions() -> None:
    """List, inspect, stop, pause, resume, restart, redrive and delete executions."""


@executions.command("list")
@click.option("--function", help="Only executions of this function.")
@click.option("--status", type=click.Choice(["RUNNING", "PAUSING", "PAUSED", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"]))
@since_option("Only executions started since then: how long ago (30m, 2h, 7d) or a time (2026-01-31T09:00:00Z).")
@endpoint_option
@reports_errors
def list_executions(function: str | None, status: str | None, since: float | None, endpoint: str) -> None:
    """List executions, newest first.

    The failed ones are a dead-letter queue that keeps itself: `--status FAILED --since 1h`
    lists what failed lately, and `perdure executions redrive` restarts them.
    """
    with Client(endpoint) as client:
        print_json(client.list_executions(function, status, since))


@executions.command("get")
@click.argument("arn")
@endpoint_option
@reports_errors
def get_execution(arn: str, endpoint: str) -> None:
    """Show one execution."""
    with Client(endpoint) as client:
        print_json(decoded(client.get_execution(arn)))


@executions.command("history")
@click.argument("arn")
@endpoint_option
@reports_errors
def history(arn: str, endpoint: str) -> None:
    """Show an execution's history events, oldest first."""
    with Client(endpoint) as client:
        print_json(client.history(arn))


@executions.command("logs")
@click.argument("arn")
@click.option("--text", is_flag=True, help="Print only the lines themselves, not JSON.")
@endpoint_option
@reports_errors
def logs(arn: str, text: bool, endpoint: str) -> None:
    """Show the lines an execution's invocations wrote (stdout, stderr, logging), in order.

    One JSON object a line: Seq, Invocation (which invocation wrote it), Stream (stdout, stderr
    or log), Timestamp and Message. Lines logged while an invocation replays what earlier ones
    did are not repeated (the SDK's logger and ctx.logger stay quiet on replay).
    """
    with Client(endpoint) as client:
        for line in client.logs(arn):
            click.echo(line["Message"] if text else json.dumps(line))


@executions.command("stop")
@click.argument("arn")
@click.option("--error-type", help="ErrorType recorded on the stopped execution.")
@click.option("--error-message", help="ErrorMessage recorded on the stopped execution.")
@endpoint_option
@reports_errors
def stop(arn: str, error_type: str | None, error_message: str | None, endpoint: str) -> None:
    """Stop a running execution."""
    with Client(endpoint) as client:
        client.stop(arn, error_type, error_message)
        print_json(decoded(client.get_execution(arn)))


@executions.command("pause")
@click.argument("arn")
@click.option("--reason", help="Why it is paused; recorded in its history.")
@click.option(
    "--keep-timeout-running",
    is_flag=True,
    help="Let its execution timeout run on while paused (by default the timeout stands still).",
)
@endpoint_option
@reports_errors
def pause(arn: str, reason: str | None, keep_timeout_running: bool, endpoint: str) -> None:
    """Pause an execution: it is not invoked until resumed.

    What it waits for goes on meanwhile (waits fire, callbacks can be completed). An
    invocation running now is cut short at its next checkpoint (status PAUSING until then).
    """
    with Client(endpoint) as client:
        client.pause(arn, reason, pause_timeout=not keep_timeout_running)
        print_json(decoded(client.get_execution(arn)))


@executions.command("resume")
@click.argument("arn")
@click.option("--reason", help="Why it is resumed; recorded in its history.")
@endpoint_option
@reports_errors
def resume(arn: str, reason: str | None, endpoint: str) -> None:
    """Resume a paused execution; it runs at once if anything it waited for happened meanwhile."""
    with Client(endpoint) as client:
        client.resume(arn, reason)
        print_json(decoded(client.get_execution(arn)))


@executions.command("restart")
@click.argument("arn")
@click.option(
    "--from",
    "from_checkpoint",
    required=True,
    metavar="CHECKPOINT",
    help="A checkpoint number (2 for the second) or the ID of a finished operation.",
)
@click.option("--name", help="The new execution's name (default: <old name>-restart-<n>).")
@click.option("--version", "version", help="Run it on this version of the code (a number, an alias or $LATEST).")
@endpoint_option
@reports_errors
def restart(arn: str, from_checkpoint: str, name: str | None, version: str | None, endpoint: str) -> None:
    """Start a new execution that resumes right after a checkpoint of this one.

    It runs the same function with the same input, on the version of its code the old one ran
    unless --version names another: that is how an execution moves onto new code. What was
    done up to that checkpoint is not done again. The execution ARN is left as it is; this
    prints the new one.
    """
    with Client(endpoint) as client:
        print_json(decoded(client.restart(arn, from_checkpoint, name, version)))


@executions.command("redrive")
@click.argument("function")
@since_option("Redrive the executions that started since then: how long ago (30m, 2h, 7d) or a time.", required=True)
@click.option("--version", "version", help="Run them on this version of the code (a number, an alias or $LATEST).")
@click.option("--dry-run", is_flag=True, help="Print what would be redriven, and start nothing.")
@endpoint_option
@reports_errors
def redrive(function: str, since: float, version: str | None, dry_run: bool, endpoint: str) -> None:
    """Restart every FAILED execution of FUNCTION from its last checkpoint.

    Each becomes a new execution with the same input, named redrive-<its ID>, that resumes
    right after its last checkpoint (seed style; an AWS SDK handler's after its last operation
    that succeeded; from the beginning without either). Run it again and an execution already
    redriven is not restarted twice (ALREADY_REDRIVEN). By default each runs the version of the
    code it ran: once the bug that failed them is fixed and deployed, pass --version $LATEST.
    Prints one entry per failed execution, with its Outcome and the ARN it was RestartedAs.
    """
    with Client(endpoint) as client:
        print_json(client.redrive(function, since, version, dry_run))


@executions.command("delete")
@click.argument("arn")
@endpoint_option
@reports_errors
def delete(arn: str, endpoint: str) -> None:
    """Delete an execution that has ended, with its history and payloads.

    A running or paused execution is refused: stop it first.
    """
    with Client(endpoint) as client:
        reply = client.delete(arn)
    print_json({"DurableExecutionArn": arn, **reply})


@click.group()
def callback() -> None:
    """Complete callbacks that executions wait for."""


def db_option(function: F) -> F:
    return db_options("Complete it directly in this database (as `perdure run` uses), not through a server.", None)(
        function
    )


@callback.command("succeed")
@click.argument("callback_id")
@click.option("--result", help="The callback's result, as JSON.")
@endpoint_option
@db_option
@reports_errors
def callback_succeed(callback_id: str, result: str | None, endpoint: str, db: str | None) -> None:
    """Complete a callback successfully."""
    value = json_argument(result, "--result")
    if db:
        from perdure.server import open_database_service

        open_database_service(db).succeed_callback(callback_id, json.dumps(value) if value is not None else None)
    else:
        with Client(endpoint) as client:
            client.succeed_callback(callback_id, value)
    print_json({"CallbackId": callback_id, "Status": "SUCCEEDED"})


@callback.command("fail")
@click.argument("callback_id")
@click.option("--error-type", help="ErrorType of the failure.")
@click.option("--error-message", help="ErrorMessage of the failure.")
@endpoint_option
@db_option
@reports_errors
def callback_fail(callback_id: str, error_type: str | None, error_message: str | None, endpoint: str, db: str | None) -> None:
    """Fail a callback."""
    if db:
        from perdure.protocol.records import ErrorObject
        from perdure.server import open_database_service

        open_database_service(db).fail_callback(callback_id, ErrorObject(message=error_message, type=error_type))
    else:
        with Client(endpoint) as client:
            client.fail_callback(callback_id, error_type, error_message)
    print_json({"CallbackId": callback_id, "Status": "FAILED"})


@callback.command("heartbeat")
@click.argument("callback_id")
@endpoint_option
@db_option
@reports_errors
def callback_heartbeat(callback_id: str, endpoint: str, db: str | None) -> None:
    """Tell a callback's execution that the work it waits for is still going."""
    if db:
        from perdure.server import open_database_service

        open_database_service(db).heartbeat_callback(callback_id)
    else:
        with Client(endpoint) as client:
            client.heartbeat_callback(callback_id)
    print_json({"CallbackId": callback_id, "Status": "HEARTBEAT"})


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(context: click.Context, parameter: click.Parameter, value: str | None) -> float | None:
    """``3d``, ``12h``, ``30m``, ``90s`` or plain seconds, as seconds."""
    if value is None:
        return None
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise click.BadParameter(f"{value!r} is not a duration: write 3d, 12h, 30m, 90s or seconds.")
    return seconds


@callback.command("link")
@click.argument("callback_id")
@click.option("--expires", callback=_seconds, metavar="DURATION", help="How long the link works: 3d (the default), 12h, 30m, 90s.")
@click.option("--summary", default="", help="What is being approved, shown on the link's page (up to 1,000 characters).")
@endpoint_option
@reports_errors
def callback_link(callback_id: str, expires: float | None, summary: str, endpoint: str) -> None:
    """Make a link that approves or rejects a callback in one click, to send by e-mail or chat.

    The server signs it with its secret and makes it under its --public-url; it works once, until
    it expires or the callback is completed.
    """
    with Client(endpoint) as client:
        print_json(client.callback_link(callback_id, summary, expires))
